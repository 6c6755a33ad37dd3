//! The scenarios and the results files.

use crate::counters::ProcessCounters;
use crate::cpu::{self, Snap, Usage};
use crate::net::{self, Conv, Res, Send, Sender, Serve, Sockets, Tracker};
use crate::Config;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use switchboard_bench::pace::{self, Schedule};
use switchboard_bench::report::{self, FanoutRow, LatRun, LatencySet, MemoryRow, Results, SatRun, COMMON, HALF_OWN};
use switchboard_bench::stats::{Agg, Latency};

pub(crate) fn say(msg: impl AsRef<str>) {
    eprintln!("[bench {}] {}", chrono_like(), msg.as_ref());
}

fn chrono_like() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{:02}:{:02}:{:02}", (t / 3600) % 24, (t / 60) % 60, t % 60)
}

fn sh(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub(crate) fn agg(v: impl Iterator<Item = f64>) -> Option<Agg> {
    Agg::of(&v.collect::<Vec<_>>())
}

// -------------------------------------------------------------------------------------------------
// Saturation and latency runs
// -------------------------------------------------------------------------------------------------

pub(crate) struct Ctx<'a> {
    pub serve: &'a Serve,
    pub tracker: Rc<Tracker>,
    pub n: usize,
    pub window: usize,
    /// Send this many at once, the next burst when all are delivered (0: keep `window` in flight).
    pub burst: usize,
}

/// Closed loop: `window` messages in flight for `warm + dur`; deliveries/s counted over `dur`.
pub(crate) async fn saturate(
    c: &Ctx<'_>,
    send: &Send<'_>,
    sockets: &mut Sockets,
    warm: Duration,
    dur: Duration,
) -> Res<SatRun> {
    let t = &c.tracker;
    let run = t.begin(c.n);
    let t0 = Instant::now();
    {
        let start = t.now_ns();
        let mut st = t.st.borrow_mut();
        st.win_from = start + warm.as_nanos() as u64;
        st.win_to = start + (warm + dur).as_nanos() as u64;
        // Latency at saturation: every delivery of the messages sent in the measured window.
        st.lat_from = st.win_from;
        st.lat_to = st.win_to;
    }
    let (measure_at, end) = (t0 + warm, t0 + warm + dur);
    let mut snap0: Option<Snap> = None;
    let mut hw = ProcessCounters::open(c.serve.workerd);
    let (frames0, lines0) = (t.frames.get(), t.lines.get());
    loop {
        let now = Instant::now();
        if snap0.is_none() && now >= measure_at {
            snap0 = Some(Snap::take(c.serve.workerd, c.serve.node));
            if let Some(h) = hw.as_mut() {
                h.start();
            }
        }
        if now >= end {
            break;
        }
        if c.burst > 0 {
            if t.in_flight() == 0 {
                for _ in 0..c.burst {
                    let k = t.sent();
                    send.send(sockets, run, k).await?;
                }
            }
        } else {
            while t.in_flight() < c.window as u64 {
                let k = t.sent();
                send.send(sockets, run, k).await?;
            }
        }
        let wake = if snap0.is_none() { measure_at } else { end };
        tokio::select! {
            _ = t.progress.notified() => {}
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    let snap1 = Snap::take(c.serve.workerd, c.serve.node);
    let counted = hw.as_mut().and_then(|h| h.stop());
    let usage = snap0.map(|s| snap1.since(&s)).unwrap_or_default();
    let win = t.st.borrow().win_delivered;
    let drained = t.drain(Duration::from_secs(20)).await;
    let (frames, lines) = (t.frames.get() - frames0, t.lines.get() - lines0);
    if frames < lines {
        say(format!(
            "N={}: {lines} lines came in {frames} text frames ({:.2} per frame)",
            c.n,
            lines as f64 / frames.max(1) as f64
        ));
    }
    let d = win as f64 / dur.as_secs_f64();
    let per = counted.and_then(|h| h.per(win));
    let lat = Latency::of(&mut t.st.borrow_mut().lat);
    let ms = |us: u32| us as f64 / 1000.0;
    Ok(SatRun {
        p50_ms: lat.map(|l| ms(l.p50_us)),
        p99_ms: lat.map(|l| ms(l.p99_us)),
        deliveries_per_s: d,
        msgs_per_s: d / c.n as f64,
        workerd_cpu: usage.workerd,
        generator_cpu: usage.generator,
        serve_cpu: usage.serve,
        other_cpu: usage.other,
        stalled: !drained,
        instructions_per_delivery: per.map(|p| p.instructions),
        cycles_per_delivery: per.map(|p| p.cycles),
        cache_misses_per_delivery: per.and_then(|p| p.cache_misses),
    })
}

/// Open loop: messages at `rate`/s for `warm + dur`; latency of deliveries of messages sent in `dur`.
pub(crate) async fn latency(
    c: &Ctx<'_>,
    send: &Send<'_>,
    sockets: &mut Sockets,
    rate: f64,
    warm: Duration,
    dur: Duration,
) -> Res<LatRun> {
    let t = &c.tracker;
    let run = t.begin(c.n);
    let sched = Schedule::new(rate, 64);
    let t0 = Instant::now();
    {
        let start = t.now_ns();
        let mut st = t.st.borrow_mut();
        st.lat_from = start + warm.as_nanos() as u64;
        st.lat_to = start + (warm + dur).as_nanos() as u64;
    }
    let (mut taken, mut skipped) = (0u64, 0u64);
    let mut snap0: Option<Snap> = None;
    loop {
        let el = t0.elapsed();
        if snap0.is_none() && el >= warm {
            snap0 = Some(Snap::take(c.serve.workerd, c.serve.node));
        }
        if el >= warm + dur {
            break;
        }
        let due = sched.due(taken, el);
        for _ in 0..due.send {
            let k = t.sent();
            send.send(sockets, run, k).await?;
        }
        taken += due.send + due.skipped;
        if el >= warm {
            skipped += due.skipped;
        }
        tokio::time::sleep_until((t0 + sched.due_at(taken)).into()).await;
    }
    let snap1 = Snap::take(c.serve.workerd, c.serve.node);
    let usage: Usage = snap0.map(|s| snap1.since(&s)).unwrap_or_default();
    t.drain(Duration::from_secs(20)).await;
    let mut st = t.st.borrow_mut();
    let (from, to) = (st.lat_from, st.lat_to);
    let measured: Vec<usize> =
        st.sent.iter().enumerate().filter(|(_, s)| **s >= from && **s < to).map(|(k, _)| k).collect();
    let got: u64 = measured.iter().map(|&k| u64::from(st.counts[k])).sum();
    let expected = (measured.len() * c.n) as u64;
    let l = Latency::of(&mut st.lat);
    let ms = |us: u32| us as f64 / 1000.0;
    Ok(LatRun {
        rate_msgs_per_s: rate,
        samples: l.map(|l| l.samples).unwrap_or(0),
        p50_ms: l.map(|l| ms(l.p50_us)).unwrap_or(f64::NAN),
        p95_ms: l.map(|l| ms(l.p95_us)).unwrap_or(f64::NAN),
        p99_ms: l.map(|l| ms(l.p99_us)).unwrap_or(f64::NAN),
        max_ms: l.map(|l| ms(l.max_us)).unwrap_or(f64::NAN),
        delivered_ratio: if expected > 0 { got as f64 / expected as f64 } else { f64::NAN },
        skipped_slots: skipped,
        workerd_cpu: usage.workerd,
        generator_cpu: usage.generator,
        other_cpu: usage.other,
    })
}

pub(crate) fn latency_set(basis: &str, rate: f64, runs: Vec<LatRun>) -> LatencySet {
    LatencySet {
        basis: basis.into(),
        rate_msgs_per_s: rate,
        p50_ms: agg(runs.iter().map(|r| r.p50_ms)),
        p95_ms: agg(runs.iter().map(|r| r.p95_ms)),
        p99_ms: agg(runs.iter().map(|r| r.p99_ms)),
        max_ms: agg(runs.iter().map(|r| r.max_ms)),
        delivered_ratio: agg(runs.iter().map(|r| r.delivered_ratio)),
        runs,
    }
}

// -------------------------------------------------------------------------------------------------
// Fan-out: one server, one N, one send mode
// -------------------------------------------------------------------------------------------------

struct Fanout<'a> {
    cfg: &'a Config,
    serve: &'a Serve,
    http: &'a reqwest::Client,
    toks: &'a [String],
    convs: HashMap<(String, usize), Conv>,
    /// Size of our `message.created` frame; the ceiling's frames are padded to it.
    pad_to: usize,
    /// Half the JS room's max msgs/s at N, for the common-rate latency runs.
    room_half: HashMap<usize, f64>,
    /// Repeats of noisy runs left for the whole suite (so a busy machine cannot stretch it forever).
    retry_budget: usize,
    /// The last run was of our worker (its alarm may still fire: wait longer before the next run).
    after_ours: bool,
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
    async fn sweep(&mut self, servers: &[&str], n: usize, mode: &str) -> Vec<FanoutRow> {
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

// -------------------------------------------------------------------------------------------------
// Memory per idle hibernated socket
// -------------------------------------------------------------------------------------------------

async fn memory(cfg: &Config, toks: &[String]) -> Res<Vec<MemoryRow>> {
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

// -------------------------------------------------------------------------------------------------
// The whole suite
// -------------------------------------------------------------------------------------------------

pub async fn run_all(cfg: &Config) -> Res<()> {
    let started = Instant::now();
    let load_start = cpu::loadavg();
    std::fs::create_dir_all(&cfg.out).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&cfg.work);
    std::fs::create_dir_all(&cfg.work).map_err(|e| e.to_string())?;
    let build_src = std::env::var("BENCH_BUILD_SOURCE").map(PathBuf::from).unwrap_or_else(|_| cfg.root.join("build"));
    let wants = |s: &str| cfg.scenarios.iter().any(|x| x == s);
    let mut results = Results::default();
    say(format!(
        "load average at start: {load_start}; generator affinity: {}",
        sh("taskset", &["-cp", &std::process::id().to_string()])
    ));
    if wants("sizes") {
        results.sizes = crate::sizes::sizes(cfg, &build_src);
    }

    let main_state = cfg.work.join("main");
    let serve = Serve::start(cfg, &main_state, &cfg.serve_core, None).await?;
    say(format!("serving: {:?} (workerd pid {}, pinned to core {})", serve.urls, serve.workerd, cfg.serve_core));
    let http = net::http_client(32);
    let toks = net::tokens(&http, &serve.ours).await?;
    say("1000 tokens issued");

    let mut fan = Fanout {
        cfg,
        serve: &serve,
        http: &http,
        toks: &toks,
        convs: HashMap::new(),
        pad_to: 600,
        room_half: HashMap::new(),
        retry_budget: cfg.retry_budget,
        after_ours: false,
    };
    if wants("fanout") {
        for &n in &cfg.ns {
            let rows = fan.sweep(&ordered(&cfg.servers), n, "socket").await;
            results.fanout.extend(rows);
        }
    }
    if wants("http") {
        let rows = fan.sweep(&ordered(&cfg.servers), cfg.http_n, "http").await;
        results.fanout.extend(rows);
    }
    if wants("pusher") {
        let n = cfg.http_n;
        let native = results.fanout.iter().find(|r| r.server == "ours" && r.mode == "socket" && r.n == n).cloned();
        match crate::pusher::scenario(cfg, &serve, fan.pad_to, native.as_ref(), n).await {
            Ok(row) => results.fanout.push(row),
            Err(e) => say(format!("pusher: FAILED: {e}")),
        }
    }
    serve.stop().await;
    let log_lines = std::fs::read_to_string(main_state.join("workerd.log")).map(|s| s.lines().count()).unwrap_or(0);
    // Keep workerd's output (the first 2 MB) beside the results, for errors the runs reported.
    let _ = std::fs::copy(main_state.join("workerd.log"), cfg.out.join("workerd.log"));

    if wants("first") {
        match crate::first::first_answer(cfg, &toks).await {
            Ok(r) => results.first_answer = r,
            Err(e) => say(format!("first answer: FAILED: {e}")),
        }
    }
    if wants("memory") {
        match memory(cfg, &toks).await {
            Ok(r) => results.memory = r,
            Err(e) => say(format!("memory: FAILED: {e}")),
        }
    }

    results.targets = report::targets(&results);
    let max_other = results
        .fanout
        .iter()
        .flat_map(|f| {
            f.saturation
                .iter()
                .map(|r| r.other_cpu)
                .chain(f.latency.iter().flat_map(|l| l.runs.iter().map(|r| r.other_cpu)))
        })
        .fold(0.0, f64::max);
    let max_gen = results.fanout.iter().flat_map(|f| f.saturation.iter().map(|r| r.generator_cpu)).fold(0.0, f64::max);
    let load_end = cpu::loadavg();
    let retried: usize = results.fanout.iter().map(|f| f.retried_runs).sum();
    let noisy: usize = results.fanout.iter().map(|f| f.noisy_runs).sum();
    results.meta = json!({
        "date": sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "git_commit": sh("git", &["-C", &cfg.root.display().to_string(), "rev-parse", "--short", "HEAD"]),
        "git_dirty_src": !sh("git", &["-C", &cfg.root.display().to_string(), "status", "--porcelain", "--", "src", "packages", "Cargo.toml", "wrangler.toml"]).is_empty(),
        "wasm_sha256": sh("sha256sum", &[&cfg.build.join("index_bg.wasm").display().to_string()]).split_whitespace().next().unwrap_or_default(),
        "workerd": sh("node", &["-p", "require('./node_modules/workerd/package.json').version"]),
        "miniflare": sh("node", &["-p", "require('./node_modules/miniflare/package.json').version"]),
        "cpu": sh("sh", &["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]),
        "cores": sh("nproc", &["--all"]),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "max_other_cpu_during_runs": max_other,
        "max_generator_cpu": max_gen,
        "quiet": noisy == 0,
        "retried_runs": retried,
        "noisy_runs_kept": noisy,
        "noisy_threshold": cfg.noisy,
        "workerd_core": cfg.serve_core,
        "notifications_binding": cfg.notifications,
        "serve_vars": cfg.serve_vars,
        "workerd_log_lines_main": log_lines,
        "duration_s": started.elapsed().as_secs_f64().round(),
        "config": {
            "ns": cfg.ns, "runs": cfg.runs, "target_runs": cfg.target_runs.max(cfg.runs), "sat_s": cfg.sat.as_secs_f64(), "lat_s": cfg.lat.as_secs_f64(),
            "warm_s": cfg.warm.as_secs_f64(), "memory_runs": cfg.memory_runs, "hibernate_wait_s": cfg.hibernate_wait.as_secs_f64(),
            "first_cycles": cfg.first_cycles, "max_members": cfg.max_members, "window_deliveries": cfg.window_deliveries,
            "text": cfg.text,
        },
    });
    write_results(cfg, &results)?;
    let _ = std::fs::remove_dir_all(&cfg.work);
    say(format!("done in {:.0} s; wrote {}", started.elapsed().as_secs_f64(), cfg.out.join("latest.json").display()));
    Ok(())
}

/// The JS room first (its max sets the common rate), then ours (its frame size sets the ceiling's
/// padding), then the variants of ours, then the ceilings (the JS one, then `ceiling-rs`).
fn ordered(servers: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = ["room", "ours"].into_iter().filter(|s| servers.iter().any(|x| x == s)).collect();
    v.extend(servers.iter().map(|s| s.as_str()).filter(|s| !["room", "ours"].contains(s) && !net::is_ceiling(s)));
    if servers.iter().any(|x| x == "ceiling") {
        v.push("ceiling");
    }
    v.extend(servers.iter().map(|s| s.as_str()).filter(|s| *s != "ceiling" && net::is_ceiling(s)));
    v
}

fn write_results(cfg: &Config, r: &Results) -> Res<()> {
    let json = serde_json::to_string_pretty(r).map_err(|e| e.to_string())?;
    std::fs::write(cfg.out.join("latest.json"), json).map_err(|e| e.to_string())?;
    let m = &r.meta;
    let header = format!(
        "## Benchmark results ({})\n\ncommit `{}`{}, workerd {}, {} × {}; workerd pinned to core {}, generator on the other. \
         Load average {} at start, {} at end. A run during which other processes used more than {:.0}% of a core was \
         repeated ({} repeated, {} kept after {} retries: {}); the highest share of a core used by other processes in a kept run was {:.0}%. \
         Generator CPU at most {:.0}% of a core. {} runs per figure ({} saturation runs at N = 1000, socket sends), servers interleaved run by run, after a discarded warm-up; suite took {} s.\n\n",
        m["date"].as_str().unwrap_or(""),
        m["git_commit"].as_str().unwrap_or(""),
        if m["git_dirty_src"].as_bool().unwrap_or(false) { " (with uncommitted changes in src/)" } else { "" },
        m["workerd"].as_str().unwrap_or(""),
        m["cores"].as_str().unwrap_or(""),
        m["cpu"].as_str().unwrap_or("").trim(),
        m["workerd_core"].as_str().unwrap_or(""),
        m["loadavg_start"].as_str().unwrap_or(""),
        m["loadavg_end"].as_str().unwrap_or(""),
        cfg.noisy * 100.0,
        m["retried_runs"],
        m["noisy_runs_kept"],
        cfg.retries,
        if m["quiet"].as_bool().unwrap_or(false) { "all kept runs were quiet" } else { "some runs were NOT quiet: treat those figures as indicative" },
        m["max_other_cpu_during_runs"].as_f64().unwrap_or(0.0) * 100.0,
        m["max_generator_cpu"].as_f64().unwrap_or(0.0) * 100.0,
        cfg.runs,
        cfg.target_runs.max(cfg.runs),
        m["duration_s"],
    );
    let md = header + &report::markdown(r) + &crate::pusher::summary(r);
    std::fs::write(cfg.out.join("latest.md"), md).map_err(|e| e.to_string())?;
    std::fs::write(cfg.out.join("latest.svg"), report::svg(r)).map_err(|e| e.to_string())?;
    Ok(())
}

// -------------------------------------------------------------------------------------------------
// `load`: hold one server at saturation (for profiling)
// -------------------------------------------------------------------------------------------------

pub async fn load(cfg: &Config) -> Res<()> {
    use tokio::io::AsyncBufReadExt;
    let (server, n, secs, mode) = cfg.load.clone().ok_or("no load")?;
    let _ = std::fs::remove_dir_all(&cfg.work);
    let serve = Serve::start(cfg, &cfg.work.join("load"), &cfg.serve_core, cfg.inspector).await?;
    let http = net::http_client(32);
    let toks = net::tokens(&http, &serve.ours).await?;
    let conv = match net::create_conversation(&http, &server, serve.base(&server), &toks, n.min(cfg.max_members)).await
    {
        Ok(c) => c,
        Err(e) => {
            serve.stop().await;
            let _ = std::fs::create_dir_all(&cfg.out);
            let _ = std::fs::copy(cfg.work.join("load/workerd.log"), cfg.out.join("workerd-load.log"));
            return Err(e);
        }
    };
    let tracker = Tracker::new();
    let mut sockets = Sockets::open_many(&conv, &toks, 0..n, tracker.clone()).await?;
    serve.quiesce().await;
    let window = cfg.window.unwrap_or_else(|| pace::window(n, cfg.window_deliveries, 2, 64));
    let sender = if mode == "http" {
        Sender::Http { http: net::http_client(window * 2), token: toks[0].clone() }
    } else {
        Sender::Socket
    };
    let send = Send { conv: &conv, sender, text: cfg.text.clone(), pad_to: 620 };
    let c = Ctx { serve: &serve, tracker: tracker.clone(), n, window, burst: cfg.burst.unwrap_or(0) };
    // A first message outside the measurement (auto-title and the like).
    let run = tracker.begin(n);
    let k = tracker.sent();
    send.send(&mut sockets, run, k).await?;
    tracker.drain(Duration::from_secs(20)).await;
    // The profiler attaches while workerd is idle (its inspector does not answer under saturation),
    // then says "go" on stdin.
    println!("{}", json!({"ready": true, "workerd_pid": serve.workerd, "inspector": cfg.inspector}));
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let _ = stdin.next_line().await;
    if let Some(rate) = cfg.fixed_rate {
        // Open loop at a fixed rate instead of saturation (to profile the latency runs).
        let l = latency(&c, &send, &mut sockets, rate, Duration::from_millis(500), secs).await?;
        println!("{}", serde_json::to_string(&json!({"done": true, "latency": l})).unwrap_or_default());
        let _ = stdin.next_line().await;
        sockets.close().await;
        serve.stop().await;
        let _ = std::fs::remove_dir_all(&cfg.work);
        return Ok(());
    }
    let w = saturate(&c, &send, &mut sockets, Duration::ZERO, Duration::from_secs(2)).await?;
    let r = saturate(&c, &send, &mut sockets, Duration::ZERO, secs).await?;
    let series: Vec<u32> = tracker.st.borrow().buckets.iter().map(|b| b * 4).collect();
    println!(
        "{}",
        json!({"done": true, "warmup_deliveries_per_s": w.deliveries_per_s, "deliveries_per_s": r.deliveries_per_s, "msgs_per_s": r.msgs_per_s,
               "workerd_cpu": r.workerd_cpu, "generator_cpu": r.generator_cpu, "other_cpu": r.other_cpu,
               "deliveries_per_s_by_250ms": series})
    );
    let _ = stdin.next_line().await;
    sockets.close().await;
    serve.stop().await;
    let _ = std::fs::create_dir_all(&cfg.out);
    let _ = std::fs::copy(cfg.work.join("load/workerd.log"), cfg.out.join("workerd-load.log"));
    let _ = std::fs::remove_dir_all(&cfg.work);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ordered;

    #[test]
    fn order_is_room_ours_others_then_the_ceilings() {
        let servers: Vec<String> = ["ceiling-rs", "ceiling", "room-min", "ours-batched", "ours", "room"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(ordered(&servers), ["room", "ours", "room-min", "ours-batched", "ceiling", "ceiling-rs"]);
    }
}
