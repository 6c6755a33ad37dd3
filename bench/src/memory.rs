//! Memory per idle hibernated socket: for each server a fresh workerd (from one prepared state), its
//! resident memory before and after each configured number of sockets opened and hibernated.

use crate::cpu;
use crate::net::{self, Conv, Res, Serve, Sockets, Tracker};
use crate::scenarios::{agg, say};
use crate::Config;
use std::collections::HashMap;
use std::path::Path;
use switchboard_bench::report::{self, MemoryRow};

pub(crate) async fn memory(cfg: &Config, toks: &[String]) -> Res<Vec<MemoryRow>> {
    let servers: Vec<String> = cfg.servers.iter().filter(|s| report::SERVERS.contains(&s.as_str())).cloned().collect();
    // One prepared state (a 1000-member conversation on ours and on the JS room), copied for every
    // fresh workerd so that setup work does not show in the measured process.
    let template = cfg.work.join("memory-template");
    let _ = std::fs::remove_dir_all(&template);
    let serve = Serve::start(cfg, &template, &cfg.serve_core, None).await?;
    let http = net::http_client(16);
    let mut convs = HashMap::new();
    for s in &servers {
        convs.insert(s.clone(), net::create_conversation(&http, s, serve.base(s), toks, cfg.max_members).await?);
    }
    serve.stop().await;
    let max = cfg.memory_sockets.iter().copied().max().unwrap_or(0);
    // samples[server][sockets] = (kib per socket, base MiB, after MiB)
    type MemorySample = (f64, f64, f64);
    let mut samples: HashMap<(String, usize), Vec<MemorySample>> = HashMap::new();
    for run in 0..cfg.memory_runs {
        let jobs = servers.iter().map(|s| {
            let template = template.clone();
            let conv = convs[s].clone();
            async move { memory_one(cfg, &template, s, conv, toks, run).await }
        });
        for (s, r) in servers.iter().zip(futures_util::future::join_all(jobs).await) {
            let points = r?;
            for (sockets, v) in points {
                samples.entry((s.clone(), sockets)).or_default().push(v);
            }
        }
        say(format!("memory run {} of {} done", run + 1, cfg.memory_runs));
    }
    let mut rows = Vec::new();
    for &sockets in &cfg.memory_sockets {
        for s in report::SERVERS {
            if let Some(v) = samples.get(&(s.to_string(), sockets)) {
                rows.push(MemoryRow {
                    server: s.into(),
                    sockets,
                    kib_per_socket: agg(v.iter().map(|x| x.0)),
                    rss_base_mib: agg(v.iter().map(|x| x.1)),
                    rss_mib: agg(v.iter().map(|x| x.2)),
                    hibernated_after_s: cfg.hibernate_wait.as_secs_f64(),
                    warmup_sockets: cfg.memory_warmup.max(1),
                });
            }
        }
    }
    let _ = max;
    Ok(rows)
}

async fn memory_one(
    cfg: &Config,
    template: &Path,
    server: &str,
    mut conv: Conv,
    toks: &[String],
    run: usize,
) -> Res<Vec<(usize, (f64, f64, f64))>> {
    let dir = cfg.work.join(format!("memory-{server}-{run}"));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(template, &dir)?;
    let serve = Serve::start(cfg, &dir, &cfg.serve_core, None).await?;
    conv.base = serve.base(server).to_string();
    let tracker = Tracker::new();
    let result = async {
        // Warm-up sockets first, hibernated like the rest: the object and the isolate exist, the
        // connect path is compiled and the heaps have grown to their working size before the
        // baseline, so the delta is what more sockets cost.
        let warmup = cfg.memory_warmup.max(1);
        let mut sockets = Sockets::open_many(&conv, toks, 0..warmup, tracker.clone()).await?;
        serve.quiesce().await;
        tokio::time::sleep(cfg.hibernate_wait).await;
        let base = cpu::rss_kib(serve.workerd).ok_or("no workerd RSS")? as f64;
        let mut out = Vec::new();
        let mut open = warmup;
        let mut targets = cfg.memory_sockets.clone();
        targets.sort_unstable();
        for target in targets {
            sockets.extend(&conv, toks, open..warmup + target).await?;
            open = warmup + target;
            serve.quiesce().await;
            // The object hibernates after ~10 s without events.
            tokio::time::sleep(cfg.hibernate_wait).await;
            let rss = cpu::rss_kib(serve.workerd).ok_or("no workerd RSS")? as f64;
            let per = (rss - base) / target as f64;
            say(format!(
                "memory {server} run {}: {target} idle sockets: RSS {:.0} -> {:.0} MiB, {per:.1} KiB per socket",
                run + 1,
                base / 1024.0,
                rss / 1024.0
            ));
            out.push((target, (per, base / 1024.0, rss / 1024.0)));
        }
        Ok::<_, String>((out, sockets))
    }
    .await;
    serve.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    // The sockets die with the server; dropping them now costs no close handshakes.
    result.map(|(out, _sockets)| out)
}

fn copy_dir(from: &Path, to: &Path) -> Res<()> {
    let st = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().map_err(|e| e.to_string())?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cp -a {} {} failed", from.display(), to.display()))
    }
}
