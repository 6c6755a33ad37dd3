//! The scenarios and the results files.

use crate::counters::ProcessCounters;
use crate::cpu::{self, Snap, Usage};
use crate::fanout::Fanout;
use crate::memory::memory;
use crate::net::{self, Res, Send, Sender, Serve, Sockets, Tracker};
use crate::Config;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};
use switchboard_bench::pace::{self, Schedule};
use switchboard_bench::report::{self, LatRun, LatencySet, Results, SatRun};
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
