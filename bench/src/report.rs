//! The results file (`latest.json`), its markdown tables, the verdict on the issue's targets, and the
//! SVG plot (deliveries/s and p99 against N, ours against both baselines).

use crate::stats::Agg;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

pub const OURS: &str = "ours";
pub const CEILING: &str = "ceiling";
pub const ROOM: &str = "room";
/// Servers in the order tables and plots show them.
pub const SERVERS: [&str; 3] = [OURS, ROOM, CEILING];

/// The servers of a results file: ours, the JS room, the ceiling, then variants of ours.
pub fn servers_in(r: &Results) -> Vec<String> {
    let mut v: Vec<String> =
        SERVERS.iter().map(|s| s.to_string()).filter(|s| r.fanout.iter().any(|f| &f.server == s)).collect();
    for f in &r.fanout {
        if !v.contains(&f.server) {
            v.push(f.server.clone());
        }
    }
    v
}

pub fn label(server: &str) -> &str {
    match server {
        OURS => "ours (Rust/wasm)",
        ROOM => "JS room",
        CEILING => "JS ceiling",
        "ceiling-rs" => "Rust ceiling (workers-rs)",
        "room-min" => "JS room, message row only",
        other => other,
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub meta: serde_json::Value,
    pub fanout: Vec<FanoutRow>,
    pub memory: Vec<MemoryRow>,
    pub first_answer: Vec<FirstAnswerRow>,
    pub sizes: Vec<SizeRow>,
    pub targets: Vec<Target>,
}

/// One saturation run (closed loop).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SatRun {
    pub deliveries_per_s: f64,
    pub msgs_per_s: f64,
    pub workerd_cpu: f64,
    pub generator_cpu: f64,
    pub serve_cpu: f64,
    pub other_cpu: f64,
    pub stalled: bool,
    /// workerd's instructions and cycles (all threads, user + kernel) per delivery in the measured
    /// window, where hardware counters can be read (`counters`).
    #[serde(default)]
    pub instructions_per_delivery: Option<f64>,
    #[serde(default)]
    pub cycles_per_delivery: Option<f64>,
    #[serde(default)]
    pub cache_misses_per_delivery: Option<f64>,
    /// Send→delivery latency of the messages sent in the measured window (closed loop: the
    /// server's own queue at its highest rate, so `window` sets how much waits).
    #[serde(default)]
    pub p50_ms: Option<f64>,
    #[serde(default)]
    pub p99_ms: Option<f64>,
}

impl SatRun {
    /// workerd's CPU time per delivery (µs): its share of a core over the deliveries per second.
    pub fn cpu_us_per_delivery(&self) -> Option<f64> {
        (self.deliveries_per_s > 0.0 && !self.stalled).then(|| self.workerd_cpu / self.deliveries_per_s * 1e6)
    }
}

/// One latency run (open loop at a fixed rate).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatRun {
    pub rate_msgs_per_s: f64,
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Deliveries received / deliveries expected for the messages sent in the measured part.
    pub delivered_ratio: f64,
    pub skipped_slots: u64,
    pub workerd_cpu: f64,
    pub generator_cpu: f64,
    pub other_cpu: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencySet {
    /// "half of own max" or "common rate".
    pub basis: String,
    pub rate_msgs_per_s: f64,
    pub p50_ms: Option<Agg>,
    pub p95_ms: Option<Agg>,
    pub p99_ms: Option<Agg>,
    pub max_ms: Option<Agg>,
    pub delivered_ratio: Option<Agg>,
    pub runs: Vec<LatRun>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FanoutRow {
    pub server: String,
    /// "socket" (`message.create` frames on one member socket) or "http" (`POST /v1/messages`).
    pub mode: String,
    pub n: usize,
    pub members: usize,
    pub window: usize,
    pub frame_bytes: usize,
    pub deliveries_per_s: Option<Agg>,
    pub msgs_per_s: Option<Agg>,
    pub workerd_cpu: Option<Agg>,
    pub generator_cpu: Option<Agg>,
    pub other_cpu: Option<Agg>,
    pub saturation: Vec<SatRun>,
    /// workerd's instructions and cycles per delivery in the saturation runs (hardware counters).
    #[serde(default)]
    pub instructions_per_delivery: Option<Agg>,
    #[serde(default)]
    pub cycles_per_delivery: Option<Agg>,
    #[serde(default)]
    pub cache_misses_per_delivery: Option<Agg>,
    /// Latency of the saturation runs (messages sent in the measured window; `window` in flight).
    #[serde(default)]
    pub sat_p50_ms: Option<Agg>,
    #[serde(default)]
    pub sat_p99_ms: Option<Agg>,
    /// workerd's CPU time per delivery in the saturation runs (µs): without hardware counters,
    /// the figure the host's load moves least.
    #[serde(default)]
    pub cpu_us_per_delivery: Option<Agg>,
    pub latency: Vec<LatencySet>,
    /// Runs repeated because other processes were busy during them.
    pub retried_runs: usize,
    /// Runs kept although other processes were busy (after the retries ran out).
    pub noisy_runs: usize,
    pub errors: Vec<String>,
}

impl FanoutRow {
    pub fn latency_basis(&self, basis: &str) -> Option<&LatencySet> {
        self.latency.iter().find(|l| l.basis == basis)
    }
}

pub const HALF_OWN: &str = "half of own max";
pub const COMMON: &str = "common rate";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryRow {
    pub server: String,
    pub sockets: usize,
    /// workerd RSS growth per idle socket, KiB, after the object hibernated.
    pub kib_per_socket: Option<Agg>,
    pub rss_base_mib: Option<Agg>,
    pub rss_mib: Option<Agg>,
    pub hibernated_after_s: f64,
    /// Idle sockets already open (and hibernated) when the baseline was taken.
    #[serde(default)]
    pub warmup_sockets: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FirstAnswerRow {
    pub server: String,
    /// "cold process" (first request after workerd started), "fresh object" (object not in memory,
    /// isolate warm) or "warm object" (second socket to an object in memory).
    pub case: String,
    /// Time from starting the TCP connect to the 101 answer (ms).
    pub handshake_ms: Option<Agg>,
    /// Time to the first server frame (`ready`), where the server sends one (ms).
    pub first_frame_ms: Option<Agg>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SizeRow {
    pub worker: String,
    pub file: String,
    pub raw_bytes: u64,
    pub gzip_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    pub measured: String,
    pub target: String,
    /// None when it could not be measured.
    pub pass: Option<bool>,
}

fn row<'a>(r: &'a Results, server: &str, mode: &str, n: usize) -> Option<&'a FanoutRow> {
    r.fanout.iter().find(|f| f.server == server && f.mode == mode && f.n == n)
}

/// Run k of `a` over run k of `b`, for every round both completed: saturation runs are interleaved
/// server by server, so the two runs of a round are seconds apart and share the machine's state
/// (on a shared VM, the host's load moves absolute rates by tens of percent within minutes).
pub fn paired_ratios(a: &FanoutRow, b: &FanoutRow) -> Option<Agg> {
    let v: Vec<f64> = a
        .saturation
        .iter()
        .zip(b.saturation.iter())
        .filter(|(x, y)| y.deliveries_per_s > 0.0 && !x.stalled && !y.stalled)
        .map(|(x, y)| x.deliveries_per_s / y.deliveries_per_s)
        .collect();
    Agg::of(&v)
}

/// The issue's targets, judged from one run's results.
/// Workerd CPU µs per delivery at N = 2 when issue 19 was filed (bench/README.md, this VM)...
pub const N2_START_US: f64 = 233.0;
/// ...and its target: half of it.
pub const N2_TARGET_US: f64 = N2_START_US / 2.0;

pub fn targets(r: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let at1000 = |s: &str| row(r, s, "socket", 1000);
    let d = |s: &str| at1000(s).and_then(|f| f.deliveries_per_s).map(|a| a.median);
    let paired = |other: &str| match (at1000(OURS), at1000(other)) {
        (Some(o), Some(x)) => {
            let runs = paired_ratios(o, x)
                .map(|p| format!("; run by run {:.2}x [{:.2}–{:.2}]", p.median, p.min, p.max))
                .unwrap_or_default();
            // Work per delivery, the other way round (less work = more deliveries per core).
            let work = match (o.instructions_per_delivery, x.instructions_per_delivery) {
                (Some(a), Some(b)) if a.median > 0.0 => {
                    format!("; by instructions per delivery {:.2}x", b.median / a.median)
                }
                _ => String::new(),
            };
            runs + &work
        }
        _ => String::new(),
    };
    match (d(OURS), d(CEILING), d(ROOM)) {
        (Some(o), Some(c), Some(j)) => {
            out.push(Target {
                name: "deliveries/s at N=1000 vs platform ceiling".into(),
                measured: format!("{:.0} vs {:.0} = {:.2}x{}", o, c, o / c, paired(CEILING)),
                target: ">= 0.90x".into(),
                pass: Some(o / c >= 0.9),
            });
            out.push(Target {
                name: "deliveries/s at N=1000 vs JS room".into(),
                measured: format!("{:.0} vs {:.0} = {:.2}x{}", o, j, o / j, paired(ROOM)),
                target: "> 1.00x".into(),
                pass: Some(o > j),
            });
        }
        _ => out.push(Target {
            name: "deliveries/s at N=1000".into(),
            measured: "not measured".into(),
            target: String::new(),
            pass: None,
        }),
    }
    // p99 at N=1000: the same offered rate for both (common rate), and each at half its own max.
    for basis in [COMMON, HALF_OWN] {
        let p = |s: &str| {
            row(r, s, "socket", 1000)
                .and_then(|f| f.latency_basis(basis))
                .and_then(|l| l.p99_ms.map(|a| (a.median, l.rate_msgs_per_s)))
        };
        if let (Some((o, or)), Some((j, jr))) = (p(OURS), p(ROOM)) {
            out.push(Target {
                name: format!("p99 at N=1000, {basis}"),
                measured: format!("ours {o:.1} ms @ {or:.0} msg/s vs JS room {j:.1} ms @ {jr:.0} msg/s"),
                target: "ours <= JS room".into(),
                pass: Some(o <= j),
            });
        }
    }
    // Issue 19: the tail at saturation, ours against the ceiling's at the same window.
    let sat_p99 = |s: &str| at1000(s).and_then(|f| f.sat_p99_ms).map(|a| a.median);
    if let (Some(o), Some(c)) = (sat_p99(OURS), sat_p99(CEILING)) {
        out.push(Target {
            name: "p99 at saturation, N=1000 vs platform ceiling".into(),
            measured: format!("ours {o:.1} ms vs ceiling {c:.1} ms = {:.2}x", o / c.max(f64::MIN_POSITIVE)),
            target: "<= 1.10x".into(),
            pass: Some(o <= c * 1.1),
        });
    }
    if let Some(s) = r.sizes.iter().find(|s| s.worker == "chat" && s.file.ends_with(".wasm")) {
        out.push(Target {
            name: "gzipped wasm of the chat worker".into(),
            measured: format!("{} ({} raw)", kib(s.gzip_bytes), kib(s.raw_bytes)),
            target: "< 1024 KiB".into(),
            pass: Some(s.gzip_bytes < 1024 * 1024),
        });
        let floor = r
            .sizes
            .iter()
            .find(|f| f.worker == "Rust ceiling")
            .map(|f| format!("; the workers-rs ceiling {}", kib(f.gzip_bytes)))
            .unwrap_or_default();
        out.push(Target {
            name: "gzipped wasm of the chat worker (issue 19)".into(),
            measured: format!("{}{floor}", kib(s.gzip_bytes)),
            target: "<= 400 KiB".into(),
            pass: Some(s.gzip_bytes <= 400 * 1024),
        });
    }
    // Issue 19: the cold first answer against the JS room's, beside what a workers-rs worker with
    // none of our code takes (the floor any Rust worker starts from, when measured).
    let cold = |s: &str| {
        r.first_answer
            .iter()
            .find(|f| f.server == s && f.case == "cold process")
            .and_then(|f| f.handshake_ms.as_ref())
            .map(|a| a.median)
    };
    if let (Some(o), Some(j)) = (cold(OURS), cold(ROOM)) {
        let floor = cold("ceiling-rs")
            .map(|f| format!("; the workers-rs ceiling {f:.1} ms = {:.2}x the room (ours {:.2}x it)", f / j, o / f))
            .unwrap_or_default();
        out.push(Target {
            name: "first answer from a cold process vs JS room (issue 19)".into(),
            measured: format!("ours {o:.1} ms vs JS room {j:.1} ms = {:.2}x{floor}", o / j),
            target: "<= 2.00x".into(),
            pass: Some(o <= 2.0 * j),
        });
    }
    // Issue 19: CPU per delivery at N = 2 (the per-message cost), against half of the issue's
    // start on this VM, beside the JS room storing one row per message (`room-min`).
    let n2 = |s: &str| row(r, s, "socket", 2).and_then(|f| f.cpu_us_per_delivery).map(|a| a.median);
    if let Some(o) = n2(OURS) {
        let floor =
            n2("room-min").map(|f| format!("; the JS room storing one row per message {f:.0} µs")).unwrap_or_default();
        out.push(Target {
            name: "CPU per delivery at N=2 (issue 19)".into(),
            measured: format!("ours {o:.0} µs{floor}"),
            target: format!("<= {N2_TARGET_US:.0} µs (half of {N2_START_US:.0} at the issue's start)"),
            pass: Some(o <= N2_TARGET_US),
        });
    }
    for sockets in [1000, 5000] {
        let m = |s: &str| {
            r.memory
                .iter()
                .find(|m| m.server == s && m.sockets == sockets)
                .and_then(|m| m.kib_per_socket)
                .map(|a| a.median)
        };
        if let (Some(o), Some(j)) = (m(OURS), m(ROOM)) {
            out.push(Target {
                name: format!("memory per idle hibernated socket ({sockets} sockets)"),
                measured: format!("ours {o:.1} KiB vs JS room {j:.1} KiB"),
                target: "ours <= JS room (within 2%)".into(),
                pass: Some(o <= j * 1.02),
            });
        }
    }
    out
}

fn kib(b: u64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

fn agg(a: &Option<Agg>, digits: usize) -> String {
    match a {
        Some(a) => format!("{:.*} [{:.*}–{:.*}]", digits, a.median, digits, a.min, digits, a.max),
        None => "–".into(),
    }
}

fn med(a: &Option<Agg>, digits: usize) -> String {
    match a {
        Some(a) => format!("{:.*}", digits, a.median),
        None => "–".into(),
    }
}

fn pct(a: &Option<Agg>) -> String {
    match a {
        Some(a) => format!("{:.0}%", a.median * 100.0),
        None => "–".into(),
    }
}

/// The Ns of socket-send rows that `has` what a table shows, in order.
fn socket_ns(r: &Results, has: impl Fn(&FanoutRow) -> bool) -> Vec<usize> {
    let mut ns: Vec<usize> = r.fanout.iter().filter(|f| f.mode == "socket" && has(f)).map(|f| f.n).collect();
    ns.sort_unstable();
    ns.dedup();
    ns
}

/// A median as a multiple of `base` (the ceiling's), or a dash.
fn ratio(a: &Option<Agg>, base: Option<f64>) -> String {
    match (a, base) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a.median / b),
        _ => "–".into(),
    }
}

/// The saturation table: latency while each server runs at its highest rate (closed loop,
/// `window` messages in flight) and workerd's CPU time per delivery, each beside the ceiling's.
fn saturation_table(r: &Results) -> String {
    let mut s = String::new();
    let ns = socket_ns(r, |f| f.sat_p99_ms.is_some());
    if ns.is_empty() {
        return s;
    }
    let _ = writeln!(s, "\n### At saturation: latency and workerd CPU per delivery (saturation runs)\n");
    let _ = writeln!(
        s,
        "Send→delivery of the messages sent in the measured window, each server at its own highest rate with \
         the same messages in flight; CPU per delivery is workerd's share of a core over deliveries/s (time \
         waiting for a core is not in it). Ratios are to the ceiling's medians.\n"
    );
    let _ = writeln!(
        s,
        "| N | server | window | deliveries/s | p50 ms | p99 ms | p99 × ceiling | CPU µs/delivery | × ceiling |"
    );
    let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &ns {
        let c = row(r, CEILING, "socket", n);
        let cp = c.and_then(|f| f.sat_p99_ms).map(|a| a.median);
        let cu = c.and_then(|f| f.cpu_us_per_delivery).map(|a| a.median);
        for server in servers_in(r) {
            let Some(f) = row(r, &server, "socket", n) else { continue };
            let _ = writeln!(
                s,
                "| {n} | {} | {} | {} | {} | {} | {} | {} | {} |",
                label(&server),
                f.window,
                agg(&f.deliveries_per_s, 0),
                agg(&f.sat_p50_ms, 1),
                agg(&f.sat_p99_ms, 1),
                ratio(&f.sat_p99_ms, cp),
                agg(&f.cpu_us_per_delivery, 1),
                ratio(&f.cpu_us_per_delivery, cu),
            );
        }
    }
    s
}

/// The work table: workerd's instructions and cycles per delivery at saturation, and each as a share
/// of the ceiling's. Empty when no counters were read.
fn work_table(r: &Results) -> String {
    let mut s = String::new();
    let ns = socket_ns(r, |f| f.instructions_per_delivery.is_some());
    if ns.is_empty() {
        return s;
    }
    let _ = writeln!(s, "\n### Work per delivery (hardware counters of workerd, saturation runs)\n");
    let _ = writeln!(
        s,
        "Instructions do not move with the host's load; cycles include stalls and do. A ratio above 1.00 \
         is more work per delivery than the ceiling's.\n"
    );
    let _ = writeln!(s, "| N | server | instructions/delivery | × ceiling | cycles/delivery | × ceiling | cache misses/delivery | × ceiling |");
    let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|");
    for &n in &ns {
        let c = row(r, CEILING, "socket", n);
        let ci = c.and_then(|f| f.instructions_per_delivery).map(|a| a.median);
        let cc = c.and_then(|f| f.cycles_per_delivery).map(|a| a.median);
        let cm = c.and_then(|f| f.cache_misses_per_delivery).map(|a| a.median);
        for server in servers_in(r) {
            let Some(f) = row(r, &server, "socket", n) else { continue };
            let _ = writeln!(
                s,
                "| {n} | {} | {} | {} | {} | {} | {} | {} |",
                label(&server),
                agg(&f.instructions_per_delivery, 0),
                ratio(&f.instructions_per_delivery, ci),
                agg(&f.cycles_per_delivery, 0),
                ratio(&f.cycles_per_delivery, cc),
                agg(&f.cache_misses_per_delivery, 0),
                ratio(&f.cache_misses_per_delivery, cm),
            );
        }
    }
    s
}

/// The markdown report: fan-out and latency, HTTP sends, memory, first answer, sizes, targets.
pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Fan-out: `message.create` on one member socket, N sockets on one conversation\n");
    let _ = writeln!(
        s,
        "Deliveries/s at the highest sustainable rate (closed loop), then latency send→delivery at half that rate \
         (open loop). Median of runs [min–max]. CPU is the share of one core.\n"
    );
    let _ = writeln!(
        s,
        "| N | server | deliveries/s | × ceiling | p50 ms | p95 ms | p99 ms | max ms | workerd CPU | generator CPU |"
    );
    let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut ns: Vec<usize> = r.fanout.iter().filter(|f| f.mode == "socket").map(|f| f.n).collect();
    ns.sort_unstable();
    ns.dedup();
    for &n in &ns {
        let ceiling = row(r, CEILING, "socket", n).and_then(|f| f.deliveries_per_s).map(|a| a.median);
        for server in servers_in(r) {
            let server = server.as_str();
            let Some(f) = row(r, server, "socket", n) else { continue };
            let ratio = match (f.deliveries_per_s, ceiling) {
                (Some(a), Some(c)) if c > 0.0 => format!("{:.2}", a.median / c),
                _ => "–".into(),
            };
            let l = f.latency_basis(HALF_OWN);
            let g = |get: fn(&LatencySet) -> &Option<Agg>| l.map(|l| agg(get(l), 1)).unwrap_or_else(|| "–".into());
            let _ = writeln!(
                s,
                "| {n} | {} | {} | {ratio} | {} | {} | {} | {} | {} | {} |",
                label(server),
                agg(&f.deliveries_per_s, 0),
                g(|l| &l.p50_ms),
                g(|l| &l.p95_ms),
                g(|l| &l.p99_ms),
                g(|l| &l.max_ms),
                pct(&f.workerd_cpu),
                pct(&f.generator_cpu),
            );
        }
    }
    s.push_str(&work_table(r));
    s.push_str(&saturation_table(r));
    let common: Vec<&FanoutRow> =
        r.fanout.iter().filter(|f| f.mode == "socket" && f.latency_basis(COMMON).is_some()).collect();
    if !common.is_empty() {
        let _ = writeln!(s, "\n### Latency at one common rate (half the JS room's max), socket sends\n");
        let _ = writeln!(s, "| N | server | rate msg/s | deliveries/s | p50 ms | p95 ms | p99 ms | max ms |");
        let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|");
        for f in common {
            let l = f.latency_basis(COMMON).expect("filtered");
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} |",
                f.n,
                label(&f.server),
                l.rate_msgs_per_s,
                l.rate_msgs_per_s * f.n as f64,
                agg(&l.p50_ms, 1),
                agg(&l.p95_ms, 1),
                agg(&l.p99_ms, 1),
                agg(&l.max_ms, 1)
            );
        }
    }
    let http: Vec<&FanoutRow> = r.fanout.iter().filter(|f| f.mode == "http").collect();
    if !http.is_empty() {
        let _ = writeln!(s, "\n### HTTP sends (`POST /v1/messages`), N sockets\n");
        let _ = writeln!(s, "| N | server | msgs/s | deliveries/s | p50 ms | p99 ms | max ms | workerd CPU |");
        let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|---:|");
        for f in http {
            let l = f.latency_basis(HALF_OWN);
            let g = |get: fn(&LatencySet) -> &Option<Agg>| l.map(|l| agg(get(l), 1)).unwrap_or_else(|| "–".into());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                f.n,
                label(&f.server),
                agg(&f.msgs_per_s, 0),
                agg(&f.deliveries_per_s, 0),
                g(|l| &l.p50_ms),
                g(|l| &l.p99_ms),
                g(|l| &l.max_ms),
                pct(&f.workerd_cpu)
            );
        }
    }
    if !r.memory.is_empty() {
        let _ = writeln!(s, "\n### Memory per idle hibernated socket (workerd RSS delta)\n");
        let _ = writeln!(s, "RSS growth from a warm baseline (taken after {} idle sockets were open and hibernated) to that many more idle sockets, divided by their number.\n", r.memory[0].warmup_sockets);
        let _ = writeln!(s, "| sockets | server | KiB per socket | RSS before MiB | RSS after MiB |");
        let _ = writeln!(s, "|---:|---|---:|---:|---:|");
        for m in &r.memory {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                m.sockets,
                label(&m.server),
                agg(&m.kib_per_socket, 1),
                med(&m.rss_base_mib, 0),
                med(&m.rss_mib, 0)
            );
        }
    }
    if !r.first_answer.is_empty() {
        let _ = writeln!(s, "\n### Time to first answer (socket upgrade to a conversation object)\n");
        let _ = writeln!(s, "| case | server | 101 answer ms | first frame ms |");
        let _ = writeln!(s, "|---|---|---:|---:|");
        for f in &r.first_answer {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                f.case,
                label(&f.server),
                agg(&f.handshake_ms, 2),
                agg(&f.first_frame_ms, 2)
            );
        }
    }
    if !r.sizes.is_empty() {
        let _ = writeln!(s, "\n### Bundle size\n");
        let _ = writeln!(s, "| worker | file | raw | gzip -9 |");
        let _ = writeln!(s, "|---|---|---:|---:|");
        for z in &r.sizes {
            let _ = writeln!(s, "| {} | `{}` | {} | {} |", z.worker, z.file, kib(z.raw_bytes), kib(z.gzip_bytes));
        }
    }
    if !r.targets.is_empty() {
        let _ = writeln!(s, "\n### Targets (issues 6 and 19)\n");
        let _ = writeln!(s, "| target | measured | wanted | verdict |");
        let _ = writeln!(s, "|---|---|---|---|");
        for t in &r.targets {
            let v = match t.pass {
                Some(true) => "met",
                Some(false) => "**not met**",
                None => "–",
            };
            let _ = writeln!(s, "| {} | {} | {} | {v} |", t.name, t.measured, t.target);
        }
    }
    s
}

fn color(server: &str, i: usize) -> &'static str {
    match server {
        OURS => "#d9480f",
        ROOM => "#1c7ed6",
        CEILING => "#5c940d",
        _ => ["#ae3ec9", "#f59f00", "#0ca678", "#495057"][i % 4],
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Log scale helper: maps [lo, hi] (both > 0) to [a, b].
fn logmap(v: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
    let (v, lo, hi) = (v.max(lo).ln(), lo.ln(), hi.ln());
    if hi <= lo {
        return (a + b) / 2.0;
    }
    a + (v - lo) / (hi - lo) * (b - a)
}

/// Nice log-scale ticks (1, 2, 5 × 10^k) within [lo, hi].
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    if !(lo > 0.0 && hi > lo) {
        return out;
    }
    let mut p = 10f64.powf(lo.log10().floor());
    while p <= hi * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = p * m;
            if v >= lo * 0.9999 && v <= hi * 1.0001 {
                out.push(v);
            }
        }
        p *= 10.0;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else if v >= 1.0 {
        format!("{v}")
    } else {
        format!("{v:.1}")
    }
}

/// Two panels side by side: deliveries/s vs N and p99 (at half the own max) vs N, log-log, one line
/// per server, median points with min–max bars.
pub fn svg(r: &Results) -> String {
    let (w, h) = (980.0, 420.0);
    let panel_w = 430.0;
    let (top, bottom) = (50.0, 350.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let socket: Vec<&FanoutRow> = r.fanout.iter().filter(|f| f.mode == "socket").collect();
    let mut ns: Vec<usize> = socket.iter().map(|f| f.n).collect();
    ns.sort_unstable();
    ns.dedup();
    type Get = fn(&FanoutRow) -> Option<Agg>;
    let panels: [(&str, f64, Get); 2] = [
        ("deliveries/s at the highest sustainable rate", 60.0, |f| f.deliveries_per_s),
        ("p99 send→delivery (ms) at half of own max rate", 550.0, |f| {
            f.latency_basis(HALF_OWN).and_then(|l| l.p99_ms)
        }),
    ];
    for (title, x0, get) in panels {
        let x1 = x0 + panel_w - 60.0;
        let vals: Vec<f64> =
            socket.iter().filter_map(|f| get(f)).flat_map(|a| [a.min, a.max]).filter(|v| *v > 0.0).collect();
        let _ = writeln!(
            s,
            r#"<text x="{}" y="30" text-anchor="middle" font-weight="bold">{}</text>"#,
            (x0 + x1) / 2.0,
            esc(title)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{top}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            x1 - x0,
            bottom - top
        );
        if ns.is_empty() || vals.is_empty() {
            let _ = writeln!(s, r#"<text x="{}" y="200" text-anchor="middle">no data</text>"#, (x0 + x1) / 2.0);
            continue;
        }
        let (nlo, nhi) = (*ns.first().expect("non-empty") as f64, *ns.last().expect("non-empty") as f64);
        let (nlo, nhi) = if nhi > nlo { (nlo / 1.5, nhi * 1.5) } else { (nlo / 2.0, nhi * 2.0) };
        let vlo = vals.iter().copied().fold(f64::INFINITY, f64::min) / 1.5;
        let vhi = vals.iter().copied().fold(0.0, f64::max) * 1.5;
        let x = |n: f64| logmap(n, nlo, nhi, x0, x1);
        let y = |v: f64| logmap(v, vlo, vhi, bottom, top);
        for t in log_ticks(vlo, vhi) {
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" x2="{x1}" y1="{0:.1}" y2="{0:.1}" stroke="#eee"/><text x="{1}" y="{2:.1}" text-anchor="end" fill="#555">{3}</text>"##,
                y(t),
                x0 - 4.0,
                y(t) + 4.0,
                fmt_tick(t)
            );
        }
        for &n in &ns {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555">{n}</text>"##,
                x(n as f64),
                bottom + 16.0
            );
        }
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#333">N (sockets on one conversation, log scale)</text>"##,
            (x0 + x1) / 2.0,
            bottom + 34.0
        );
        for (i, server) in servers_in(r).iter().enumerate() {
            let server = server.as_str();
            let pts: Vec<(f64, Agg)> = ns
                .iter()
                .filter_map(|&n| {
                    socket.iter().find(|f| f.server == server && f.n == n).and_then(|f| get(f)).map(|a| (n as f64, a))
                })
                .filter(|(_, a)| a.median > 0.0)
                .collect();
            if pts.is_empty() {
                continue;
            }
            let c = color(server, i);
            let dash = if server.starts_with("ours-") { r#" stroke-dasharray="6 4""# } else { "" };
            let line: Vec<String> = pts.iter().map(|(n, a)| format!("{:.1},{:.1}", x(*n), y(a.median))).collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="{}"/>"#,
                line.join(" ")
            );
            for (n, a) in &pts {
                let _ = writeln!(
                    s,
                    r#"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="{c}"/>"#,
                    x(*n),
                    y(a.min),
                    y(a.max)
                );
                let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{c}"/>"#, x(*n), y(a.median));
            }
        }
    }
    for (i, server) in servers_in(r).iter().enumerate() {
        let lx = 60.0 + i as f64 * 200.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="395" width="14" height="4" fill="{}"/><text x="{}" y="401">{}</text>"#,
            color(server, i),
            lx + 20.0,
            esc(label(server))
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(m: f64) -> Option<Agg> {
        Some(Agg { median: m, min: m * 0.9, max: m * 1.1, runs: 3 })
    }

    fn sample() -> Results {
        let mut r = Results::default();
        for (server, d, p99) in [(OURS, 28000.0, 9.0), (ROOM, 25000.0, 10.0), (CEILING, 30000.0, 5.0)] {
            for n in [10, 1000] {
                r.fanout.push(FanoutRow {
                    server: server.into(),
                    mode: "socket".into(),
                    n,
                    deliveries_per_s: a(d),
                    latency: vec![
                        LatencySet {
                            basis: HALF_OWN.into(),
                            rate_msgs_per_s: d / n as f64 / 2.0,
                            p99_ms: a(p99),
                            ..Default::default()
                        },
                        LatencySet {
                            basis: COMMON.into(),
                            rate_msgs_per_s: 12.5,
                            p99_ms: a(p99),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                });
            }
        }
        r.sizes.push(SizeRow {
            worker: "chat".into(),
            file: "build/index_bg.wasm".into(),
            raw_bytes: 1_200_000,
            gzip_bytes: 400_000,
        });
        r.memory.push(MemoryRow { server: OURS.into(), sockets: 1000, kib_per_socket: a(10.0), ..Default::default() });
        r.memory.push(MemoryRow { server: ROOM.into(), sockets: 1000, kib_per_socket: a(10.1), ..Default::default() });
        r
    }

    #[test]
    fn judges_targets() {
        let t = targets(&sample());
        let find = |name: &str| t.iter().find(|t| t.name.starts_with(name)).unwrap().pass;
        // 28000 / 30000 = 0.93 >= 0.9
        assert_eq!(find("deliveries/s at N=1000 vs platform ceiling"), Some(true));
        assert_eq!(find("deliveries/s at N=1000 vs JS room"), Some(true));
        assert_eq!(find("p99 at N=1000, common rate"), Some(true));
        assert_eq!(find("gzipped wasm"), Some(true));
        assert_eq!(find("memory per idle hibernated socket (1000"), Some(true));
        let mut r = sample();
        r.fanout.iter_mut().filter(|f| f.server == OURS).for_each(|f| f.deliveries_per_s = a(20000.0));
        let t = targets(&r);
        assert_eq!(t[0].pass, Some(false));
        assert_eq!(t[1].pass, Some(false));
    }

    #[test]
    fn paired_ratios_take_runs_of_one_round_together() {
        let run = |d: f64| SatRun { deliveries_per_s: d, ..Default::default() };
        let ours = FanoutRow { saturation: vec![run(30.0), run(45.0), run(50.0)], ..Default::default() };
        // The machine got faster over the runs; each round's ratio is still 0.9.
        let ceiling = FanoutRow { saturation: vec![run(33.3333), run(50.0), run(55.5555)], ..Default::default() };
        let p = paired_ratios(&ours, &ceiling).unwrap();
        assert!((p.median - 0.9).abs() < 1e-3 && (p.min - 0.9).abs() < 1e-3 && (p.max - 0.9).abs() < 1e-3, "{p:?}");
        // A stalled run and a round one side lacks are left out.
        let stalled = SatRun { stalled: true, ..run(10.0) };
        let ours = FanoutRow { saturation: vec![stalled, run(45.0), run(50.0)], ..Default::default() };
        let short = FanoutRow { saturation: vec![run(33.3333), run(50.0)], ..Default::default() };
        assert_eq!(paired_ratios(&ours, &short).unwrap().runs, 1);
        assert!(paired_ratios(&FanoutRow::default(), &ceiling).is_none());
    }

    #[test]
    fn unmeasured_targets_are_not_passed() {
        let t = targets(&Results::default());
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].pass, None);
    }

    #[test]
    fn markdown_has_a_row_per_server_and_n() {
        let md = markdown(&sample());
        assert_eq!(md.matches("| ours (Rust/wasm) |").count(), 2 + 2 + 1); // fan-out, common-rate and memory tables
        assert!(md.contains("| 1000 | JS ceiling | 30000 [27000–33000] | 1.00 |"));
        assert!(md.contains("### Bundle size"));
    }

    #[test]
    fn svg_draws_both_panels_for_each_server() {
        let svg = svg(&sample());
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 6);
        assert!(svg.contains("JS room"));
        let empty = super::svg(&Results::default());
        assert_eq!(empty.matches("no data").count(), 2);
    }

    #[test]
    fn ticks() {
        assert_eq!(log_ticks(8.0, 120.0), vec![10.0, 20.0, 50.0, 100.0]);
        assert!(log_ticks(0.0, 10.0).is_empty());
        assert_eq!(fmt_tick(20000.0), "20k");
        assert_eq!(fmt_tick(0.5), "0.5");
    }
}

#[cfg(test)]
mod saturation_tests {
    use super::*;

    fn a(v: f64) -> Option<Agg> {
        Agg::of(&[v])
    }

    fn at_saturation(server: &str, p99: f64, cpu_us: f64) -> FanoutRow {
        FanoutRow {
            server: server.into(),
            mode: "socket".into(),
            n: 1000,
            window: 2,
            deliveries_per_s: a(20000.0),
            sat_p50_ms: a(p99 / 2.0),
            sat_p99_ms: a(p99),
            cpu_us_per_delivery: a(cpu_us),
            ..Default::default()
        }
    }

    #[test]
    fn the_tail_at_saturation_is_judged_against_the_ceiling() {
        let mut r = Results::default();
        r.fanout.push(at_saturation(OURS, 60.0, 40.0));
        r.fanout.push(at_saturation(CEILING, 50.0, 38.0));
        let t = targets(&r);
        let sat = t.iter().find(|t| t.name.starts_with("p99 at saturation")).unwrap();
        assert_eq!(sat.pass, Some(false), "60 ms is 1.2x the ceiling's 50 ms");
        r.fanout[0].sat_p99_ms = a(55.0);
        let t = targets(&r);
        assert_eq!(t.iter().find(|t| t.name.starts_with("p99 at saturation")).unwrap().pass, Some(true));
        let md = markdown(&r);
        assert!(md.contains("### At saturation"));
        assert!(md.contains("| 1000 | ours (Rust/wasm) | 2 | 20000 [20000–20000] | 30.0 [30.0–30.0] | 55.0 [55.0–55.0] | 1.10 | 40.0 [40.0–40.0] | 1.05 |"), "{md}");
    }

    #[test]
    fn issue_19s_targets_are_judged_beside_their_floors() {
        let mut r = Results::default();
        let cold = |server: &str, ms: f64| FirstAnswerRow {
            server: server.into(),
            case: "cold process".into(),
            handshake_ms: a(ms),
            first_frame_ms: None,
        };
        r.first_answer.extend([cold(OURS, 34.0), cold(ROOM, 3.4), cold("ceiling-rs", 10.2)]);
        let size = |worker: &str, kib: u64| SizeRow {
            worker: worker.into(),
            file: "x.wasm".into(),
            raw_bytes: kib * 3072,
            gzip_bytes: kib * 1024,
        };
        r.sizes.extend([size("chat", 619), size("Rust ceiling", 44)]);
        let n2 = |server: &str, cpu: f64| FanoutRow { n: 2, window: 64, ..at_saturation(server, 30.0, cpu) };
        r.fanout.extend([n2(OURS, 212.0), n2("room-min", 122.0)]);
        let t = targets(&r);
        let find = |name: &str| t.iter().find(|t| t.name.starts_with(name)).unwrap_or_else(|| panic!("{name}: {t:?}"));
        let cold = find("first answer from a cold process");
        assert_eq!(cold.pass, Some(false));
        assert_eq!(
            cold.measured,
            "ours 34.0 ms vs JS room 3.4 ms = 10.00x; the workers-rs ceiling 10.2 ms = 3.00x the room (ours 3.33x it)"
        );
        let size = find("gzipped wasm of the chat worker (issue 19)");
        assert_eq!((size.pass, size.measured.as_str()), (Some(false), "619.0 KiB; the workers-rs ceiling 44.0 KiB"));
        let n2 = find("CPU per delivery at N=2");
        assert_eq!(n2.pass, Some(false));
        assert_eq!(n2.measured, "ours 212 µs; the JS room storing one row per message 122 µs");
        r.fanout[0].cpu_us_per_delivery = a(110.0);
        r.first_answer[0].handshake_ms = a(6.8);
        let t = targets(&r);
        assert!(t.iter().filter(|t| t.name.contains("N=2") || t.name.contains("cold")).all(|t| t.pass == Some(true)));
        r.targets = t;
        assert!(markdown(&r).contains("| CPU per delivery at N=2 (issue 19) | ours 110 µs"), "{}", markdown(&r));
    }

    #[test]
    fn cpu_per_delivery_is_the_core_share_over_the_rate() {
        let run = SatRun { deliveries_per_s: 25_000.0, workerd_cpu: 1.0, ..Default::default() };
        assert_eq!(run.cpu_us_per_delivery(), Some(40.0));
        assert_eq!(SatRun { stalled: true, ..run.clone() }.cpu_us_per_delivery(), None);
        assert_eq!(SatRun::default().cpu_us_per_delivery(), None);
    }
}
