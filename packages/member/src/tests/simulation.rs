//! Seeded random runs of the hub against a model: sockets open, subscribe, unsubscribe, close and
//! resume while events arrive. Every event must reach exactly the open sockets whose session
//! subscribes to its context, with the next seq, and a resumed session must get exactly the logged
//! events of its contexts after the seq it last saw, in order. A failing seed is replayable.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

#[derive(Default)]
struct Session {
    subs: BTreeSet<String>,
    socket: Option<usize>,
    last_seen: u64,
}

fn run(seed: u64, steps: usize) {
    let contexts = [instance(), conv_ctx(C1), presence_ctx(C1), conv_ctx(C2)];
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut sim = Sim::new();
    sim.join(C1, None, T0);
    sim.join(C2, None, T0);
    let mut log: Vec<(u64, String)> = Vec::new();
    let mut seq = 2;
    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    for step in 0..steps {
        sim.now += 1_000;
        let open: Vec<String> = sessions.iter().filter(|(_, s)| s.socket.is_some()).map(|(k, _)| k.clone()).collect();
        let closed: Vec<String> = sessions.iter().filter(|(_, s)| s.socket.is_none()).map(|(k, _)| k.clone()).collect();
        let what = format!("seed {seed} step {step}");
        match rng.below(6) {
            0 => {
                let i = sim.open();
                sessions.insert(sim.session(i), Session { socket: Some(i), last_seen: seq, ..Default::default() });
            }
            1 | 2 if !open.is_empty() => {
                let s = &open[rng.below(open.len())];
                let ctx = contexts[rng.below(contexts.len())].clone();
                let session = sessions.get_mut(s).unwrap();
                let i = session.socket.unwrap();
                if rng.below(3) > 0 {
                    sim.subscribe(i, std::slice::from_ref(&ctx));
                    session.subs.insert(ctx);
                } else {
                    sim.frame(i, &json!({"type": "context.unsubscribe", "contexts": [ctx]}).to_string());
                    session.subs.remove(&ctx);
                }
            }
            3 if !open.is_empty() => {
                let s = &open[rng.below(open.len())];
                let i = sessions[s].socket.unwrap();
                sim.close(i);
                sessions.get_mut(s).unwrap().socket = None;
            }
            4 if !closed.is_empty() => {
                let s = &closed[rng.below(closed.len())];
                let since = sessions[s].last_seen;
                let (i, c, _) = sim.connect(Some(&since.to_string()), Some(s)).unwrap();
                let session = sessions.get_mut(s).unwrap();
                let want: Vec<u64> =
                    log.iter().filter(|(q, ctx)| *q > since && session.subs.contains(ctx)).map(|(q, _)| *q).collect();
                let got: Vec<u64> = c
                    .frames
                    .iter()
                    .filter_map(|f| frame(f)["seq"].as_u64().filter(|_| f.contains("\"event\"")))
                    .collect();
                assert_eq!(got, want, "{what}: replay");
                assert_eq!(frame(&c.frames[0])["contexts"], json!(session.subs), "{what}: restored contexts");
                session.socket = Some(i);
                session.last_seen = seq;
            }
            _ => {
                let ctx = contexts[rng.below(contexts.len())].clone();
                let e = sim.deliver(&ctx, "x", false);
                seq += 1;
                log.push((seq, ctx.clone()));
                let want: BTreeSet<usize> =
                    sessions.values().filter(|s| s.subs.contains(&ctx)).filter_map(|s| s.socket).collect();
                let got = received(&e);
                assert!(got.iter().all(|(_, f)| f["seq"] == json!(seq)), "{what}: seq");
                assert_eq!(got.iter().map(|(i, _)| *i).collect::<BTreeSet<_>>(), want, "{what}: recipients");
                for s in sessions.values_mut().filter(|s| s.socket.is_some() && s.subs.contains(&ctx)) {
                    s.last_seen = seq;
                }
            }
        }
    }
}

#[test]
fn random_runs_match_the_model() {
    for seed in 0..40 {
        run(seed, 200);
    }
}
