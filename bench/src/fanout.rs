//! Fan-out: one server, one N, one send mode. The sweep over members (closed loop at the highest
//! sustainable rate, then open-loop latency at half that rate), with a repeat of runs the host made noisy.

use crate::net::{self, Conv, Res, Send, Sender, Serve, Sockets, Tracker};
use crate::scenarios::{agg, latency, latency_set, saturate, say, Ctx};
use crate::Config;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use switchboard_bench::pace;
use switchboard_bench::report::{FanoutRow, LatRun, COMMON, HALF_OWN};

pub(crate) struct Fanout<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) serve: &'a Serve,
    pub(crate) http: &'a reqwest::Client,
    pub(crate) toks: &'a [String],
    pub(crate) convs: HashMap<(String, usize), Conv>,
    /// Size of our `message.created` frame; the ceiling's frames are padded to it.
    pub(crate) pad_to: usize,
    /// Half the JS room's max msgs/s at N, for the common-rate latency runs.
    pub(crate) room_half: HashMap<usize, f64>,
    /// Repeats of noisy runs left for the whole suite (so a busy machine cannot stretch it forever).
    pub(crate) retry_budget: usize,
    /// The last run was of our worker (its alarm may still fire: wait longer before the next run).
    pub(crate) after_ours: bool,
}

impl Fanout<'_> {
    async fn conv(&mut self, server: &str, m: usize) -> Res<Conv> {
        let key = (server.to_string(), m);
        if let Some(c) = self.convs.get(&key) {
            return Ok(c.clone());
        }
        let t = Instant::now();
        let c = net::create_conversation(self.http, server, self.serve.base(server), self.toks, m).await?;
        say(format!("{server}: conversation of {m} members ready in {:.1} s", t.elapsed().as_secs_f64()));
        self.convs.insert(key, c.clone());
        Ok(c)
    }

    /// One N and one send mode for every server. The servers' sockets are all open at once and
    /// the runs are interleaved (run 1 of each server, then run 2 of each...), so a burst of load
    /// from elsewhere on the machine does not land on one server's runs only; a run during which
    /// other processes used more than `cfg.noisy` of a core is repeated (at most `cfg.retries`
    /// times, then kept and counted in `noisy_runs`).
    pub(crate) async fn sweep(&mut self, servers: &[&str], n: usize, mode: &str) -> Vec<FanoutRow> {
        let cfg = self.cfg;
        let m = n.min(cfg.max_members);
        let window = cfg.window.unwrap_or_else(|| pace::window(n, cfg.window_deliveries, 2, 64));
        struct Live {
            row: FanoutRow,
            conv: Conv,
            sockets: Sockets,
            tracker: Rc<Tracker>,
            http: Option<reqwest::Client>,
        }
        let mut live: Vec<Live> = Vec::new();
        let mut rows: Vec<FanoutRow> = Vec::new();
        // Set up every server: conversation, N sockets, one probe message (also measures the frame).
        for &server in servers {
            let mut row =
                FanoutRow { server: server.into(), mode: mode.into(), n, members: m, window, ..Default::default() };
            let setup = async {
                let conv = self.conv(server, m).await?;
                let t_open = Instant::now();
                let tracker = Tracker::new();
                let mut sockets = Sockets::open_many(&conv, self.toks, 0..n, tracker.clone()).await?;
                say(format!("{server} N={n}: {n} sockets open in {:.1} s", t_open.elapsed().as_secs_f64()));
                let http = (mode == "http").then(|| net::http_client(window * 2));
                let send = self.sender(&conv, &http);
                let run = tracker.begin(n);
                let k = tracker.sent();
                send.send(&mut sockets, run, k).await?;
                if !tracker.drain(Duration::from_secs(20)).await {
                    let st = tracker.st.borrow();
                    return Err(format!(
                        "{server} N={n}: probe message reached {} of {n} sockets ({:?})",
                        st.delivered, st.last_error
                    ));
                }
                let frame_bytes = tracker.st.borrow().frame_bytes;
                Ok::<_, String>((conv, sockets, tracker, http, frame_bytes))
            }
            .await;
            match setup {
                Ok((conv, sockets, tracker, http, frame_bytes)) => {
                    row.frame_bytes = frame_bytes;
                    if net::is_ours(server) && mode == "socket" {
                        self.pad_to = frame_bytes;
                    }
                    live.push(Live { row, conv, sockets, tracker, http });
                }
                Err(e) => {
                    say(format!("{server} N={n} {mode}: FAILED: {e}"));
                    row.errors.push(e);
                    rows.push(row);
                }
            }
        }
        self.serve.quiesce().await;

        // Warm-up runs, discarded.
        for l in live.iter_mut() {
            let send = self.sender(&l.conv, &l.http);
            let c = Ctx { serve: self.serve, tracker: l.tracker.clone(), n, window, burst: cfg.burst.unwrap_or(0) };
            self.settle(&l.row.server).await;
            match saturate(&c, &send, &mut l.sockets, Duration::ZERO, cfg.sat.max(Duration::from_secs(1))).await {
                Ok(w) => say(format!(
                    "{} N={n} {mode}: warm-up {:.0} deliveries/s (discarded)",
                    l.row.server, w.deliveries_per_s
                )),
                Err(e) => l.row.errors.push(format!("warm-up: {e}")),
            }
        }
        // Saturation runs, interleaved.
        let runs = if n == 1000 && mode == "socket" { cfg.target_runs.max(cfg.runs) } else { cfg.runs };
        for i in 0..runs {
            for l in live.iter_mut() {
                let send = self.sender(&l.conv, &l.http);
                let c = Ctx { serve: self.serve, tracker: l.tracker.clone(), n, window, burst: cfg.burst.unwrap_or(0) };
                let mut attempt = 0;
                loop {
                    self.settle(&l.row.server).await;
                    match saturate(&c, &send, &mut l.sockets, cfg.warm, cfg.sat).await {
                        Ok(r) => {
                            let noisy = r.other_cpu > cfg.noisy;
                            say(format!(
                                "{} N={n} {mode}: run {}: {:.0} deliveries/s ({:.1} msg/s), p50 {:.1} p99 {:.1} ms, workerd {:.0}% ({:.1} us CPU per delivery), generator {:.0}%, serve.mjs {:.0}%, other {:.0}%{}{}{}",
                                l.row.server,
                                i + 1,
                                r.deliveries_per_s,
                                r.msgs_per_s,
                                r.p50_ms.unwrap_or(f64::NAN),
                                r.p99_ms.unwrap_or(f64::NAN),
                                r.workerd_cpu * 100.0,
                                r.cpu_us_per_delivery().unwrap_or(f64::NAN),
                                r.generator_cpu * 100.0,
                                r.serve_cpu * 100.0,
                                r.other_cpu * 100.0,
                                match (r.instructions_per_delivery, r.cycles_per_delivery) {
                                    (Some(i), Some(c)) => format!(
                                        ", {:.0}k instructions and {:.0}k cycles per delivery{}",
                                        i / 1e3,
                                        c / 1e3,
                                        r.cache_misses_per_delivery.map(|m| format!(", {m:.0} cache misses")).unwrap_or_default()
                                    ),
                                    _ => String::new(),
                                },
                                if r.stalled { " STALLED" } else { "" },
                                if noisy { " (machine busy)" } else { "" },
                            ));
                            if self.repeat_if_noisy(noisy, &mut attempt, &mut l.row).await {
                                continue;
                            }
                            if r.stalled {
                                l.row.errors.push(format!("saturation run {} did not drain", i + 1));
                            }
                            l.row.saturation.push(r);
                        }
                        Err(e) => l.row.errors.push(format!("saturation run {}: {e}", i + 1)),
                    }
                    break;
                }
            }
        }
        for l in live.iter_mut() {
            let row = &mut l.row;
            row.deliveries_per_s = agg(row.saturation.iter().map(|r| r.deliveries_per_s));
            row.msgs_per_s = agg(row.saturation.iter().map(|r| r.msgs_per_s));
            row.workerd_cpu = agg(row.saturation.iter().map(|r| r.workerd_cpu));
            row.generator_cpu = agg(row.saturation.iter().map(|r| r.generator_cpu));
            row.other_cpu = agg(row.saturation.iter().map(|r| r.other_cpu));
            row.instructions_per_delivery = agg(row.saturation.iter().filter_map(|r| r.instructions_per_delivery));
            row.cycles_per_delivery = agg(row.saturation.iter().filter_map(|r| r.cycles_per_delivery));
            row.cache_misses_per_delivery = agg(row.saturation.iter().filter_map(|r| r.cache_misses_per_delivery));
            row.sat_p50_ms = agg(row.saturation.iter().filter_map(|r| r.p50_ms));
            row.sat_p99_ms = agg(row.saturation.iter().filter_map(|r| r.p99_ms));
            row.cpu_us_per_delivery = agg(row.saturation.iter().filter_map(|r| r.cpu_us_per_delivery()));
            if row.server == "room" && mode == "socket" {
                if let Some(a) = row.msgs_per_s {
                    self.room_half.insert(n, pace::half_rate(a.median, 0.5));
                }
            }
        }
        // Latency runs: at half of each server's own max, then (at some N) at one common rate.
        let mut bases: Vec<(&str, Option<f64>)> = vec![(HALF_OWN, None)];
        if mode == "socket" && cfg_common_ns(cfg).contains(&n) {
            if let Some(&r) = self.room_half.get(&n) {
                bases.push((COMMON, Some(r)));
            }
        }
        for (basis, common) in bases {
            let mut runs: Vec<Vec<LatRun>> = live.iter().map(|_| Vec::new()).collect();
            let rates: Vec<f64> = live
                .iter()
                .map(|l| {
                    common.unwrap_or_else(|| {
                        cfg.fixed_rate
                            .unwrap_or_else(|| pace::half_rate(l.row.msgs_per_s.map(|a| a.median).unwrap_or(1.0), 0.5))
                    })
                })
                .collect();
            // Each server's latency runs back to back, ours last: our worker leaves background
            // work behind (list-flush passes to members' objects) that must not land in another
            // server's latency runs; its own runs carry it, as they should.
            let mut order: Vec<usize> = (0..live.len()).collect();
            order.sort_by_key(|&j| net::is_ours(&live[j].row.server));
            for &j in &order {
                for i in 0..cfg.runs {
                    let l = &mut live[j];
                    let send = self.sender(&l.conv, &l.http);
                    let c =
                        Ctx { serve: self.serve, tracker: l.tracker.clone(), n, window, burst: cfg.burst.unwrap_or(0) };
                    let mut attempt = 0;
                    loop {
                        self.settle(&l.row.server).await;
                        match latency(&c, &send, &mut l.sockets, rates[j], cfg.warm, cfg.lat).await {
                            Ok(r) => {
                                let noisy = r.other_cpu > cfg.noisy;
                                say(format!(
                                    "{} N={n} {mode}: latency ({basis}) run {} at {:.1} msg/s: p50 {:.1} p95 {:.1} p99 {:.1} max {:.1} ms, delivered {:.3}, workerd {:.0}%, generator {:.0}%, other {:.0}%{}",
                                    l.row.server,
                                    i + 1,
                                    rates[j],
                                    r.p50_ms,
                                    r.p95_ms,
                                    r.p99_ms,
                                    r.max_ms,
                                    r.delivered_ratio,
                                    r.workerd_cpu * 100.0,
                                    r.generator_cpu * 100.0,
                                    r.other_cpu * 100.0,
                                    if noisy { " (machine busy)" } else { "" },
                                ));
                                if self.repeat_if_noisy(noisy, &mut attempt, &mut l.row).await {
                                    continue;
                                }
                                if r.delivered_ratio < 0.999 {
                                    l.row.errors.push(format!(
                                        "latency run {} ({basis}) delivered {:.3} of expected",
                                        i + 1,
                                        r.delivered_ratio
                                    ));
                                }
                                runs[j].push(r);
                            }
                            Err(e) => l.row.errors.push(format!("latency run {} ({basis}): {e}", i + 1)),
                        }
                        break;
                    }
                }
            }
            for (j, l) in live.iter_mut().enumerate() {
                l.row.latency.push(latency_set(basis, rates[j], std::mem::take(&mut runs[j])));
            }
        }
        for l in live {
            let (errs, last) = {
                let st = l.tracker.st.borrow();
                (st.http_errors, st.last_error.clone())
            };
            let mut row = l.row;
            if errs > 0 {
                row.errors.push(format!("{errs} HTTP send errors, last: {last:?}"));
            }
            l.sockets.close().await;
            rows.push(row);
        }
        self.serve.quiesce().await;
        rows
    }

    /// Before a run of `next`: wait until workerd is idle, longer after a run of our worker.
    /// After a run: when other processes kept the machine busy and retries are left (per run and for
    /// the suite), counts a repeat, pauses and answers true; otherwise counts a kept noisy run.
    async fn repeat_if_noisy(&mut self, noisy: bool, attempt: &mut usize, row: &mut FanoutRow) -> bool {
        if noisy && *attempt < self.cfg.retries && self.retry_budget > 0 {
            self.retry_budget -= 1;
            *attempt += 1;
            row.retried_runs += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
            return true;
        }
        if noisy {
            row.noisy_runs += 1;
        }
        false
    }

    async fn settle(&mut self, next: &str) {
        let t = Instant::now();
        self.serve.quiesce_for(if self.after_ours { 8 } else { 2 }).await;
        let waited = t.elapsed().as_secs_f64();
        if waited > 3.0 {
            say(format!("waited {waited:.1} s for workerd to be idle before a run of {next}"));
        }
        self.after_ours = net::is_ours(next);
    }

    fn sender<'c>(&self, conv: &'c Conv, http: &Option<reqwest::Client>) -> Send<'c> {
        let sender = match http {
            Some(h) => Sender::Http { http: h.clone(), token: self.toks[0].clone() },
            None => Sender::Socket,
        };
        Send { conv, sender, text: self.cfg.text.clone(), pad_to: self.pad_to }
    }
}

fn cfg_common_ns(_cfg: &Config) -> Vec<usize> {
    vec![1000]
}
