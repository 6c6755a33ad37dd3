//! Time to first answer: a socket upgrade to a conversation object from a cold process (workerd
//! restarted on the same storage), to a fresh object on a warm process, and to a warm object, for
//! every server of the run (`--scenarios first`).

use crate::net::{self, Conv, Res, Serve};
use crate::scenarios::say;
use crate::Config;
use std::collections::HashMap;
use switchboard_bench::report::{self, FirstAnswerRow};
use switchboard_bench::stats::Agg;

pub async fn first_answer(cfg: &Config, toks: &[String]) -> Res<Vec<FirstAnswerRow>> {
    const K: usize = 6;
    let mut hs: HashMap<(String, &'static str), Vec<f64>> = HashMap::new();
    let mut ff: HashMap<(String, &'static str), Vec<f64>> = HashMap::new();
    for cycle in 0..cfg.first_cycles {
        let dir = cfg.work.join(format!("first-{cycle}"));
        let _ = std::fs::remove_dir_all(&dir);
        // Prepare K conversations per server, then restart workerd on the same storage.
        let serve = Serve::start(cfg, &dir, &cfg.serve_core, None).await?;
        let http = net::http_client(8);
        let mut convs: HashMap<String, Vec<Conv>> = HashMap::new();
        // The variants of ours too (`--variant ours-before=DIR`: a cold start beside the previous build).
        let main: Vec<String> = cfg.servers.clone();
        for s in &main {
            let mut v = Vec::new();
            for _ in 0..K {
                v.push(net::create_conversation(&http, s, serve.base(s), toks, 2).await?);
            }
            convs.insert(s.clone(), v);
        }
        serve.stop().await;
        let serve = Serve::start(cfg, &dir, &cfg.serve_core, None).await?;
        let mut order = main.clone();
        let len = order.len().max(1);
        order.rotate_left(cycle % len);
        let mut keep = Vec::new();
        for s in &order {
            let list: Vec<Conv> =
                convs[s].iter().map(|c| Conv { base: serve.base(s).to_string(), ..c.clone() }).collect();
            let mut record = |case: &'static str, o: net::Opened| {
                hs.entry((s.clone(), case)).or_default().push(o.handshake.as_secs_f64() * 1000.0);
                if let Some(f) = o.first_frame {
                    ff.entry((s.clone(), case)).or_default().push(f.as_secs_f64() * 1000.0);
                }
            };
            let (ws, o) = net::open(&list[0], toks, 0).await?;
            record("cold process", o);
            keep.push(ws);
            for c in &list[1..] {
                let (ws, o) = net::open(c, toks, 0).await?;
                record("fresh object", o);
                keep.push(ws);
            }
            let (ws, o) = net::open(&list[K - 1], toks, 1).await?;
            record("warm object", o);
            keep.push(ws);
        }
        serve.stop().await;
        drop(keep);
        let _ = std::fs::remove_dir_all(&dir);
        say(format!("first answer cycle {} of {} done", cycle + 1, cfg.first_cycles));
    }
    let mut rows = Vec::new();
    let mut shown: Vec<String> = report::SERVERS.iter().map(|s| s.to_string()).collect();
    shown.extend(cfg.servers.iter().filter(|s| !report::SERVERS.contains(&s.as_str())).cloned());
    for case in ["cold process", "fresh object", "warm object"] {
        for s in &shown {
            let key = (s.clone(), case);
            if let Some(h) = hs.get(&key) {
                rows.push(FirstAnswerRow {
                    server: s.into(),
                    case: case.into(),
                    handshake_ms: Agg::of(h),
                    first_frame_ms: ff.get(&key).and_then(|v| Agg::of(v)),
                });
            }
        }
    }
    Ok(rows)
}
