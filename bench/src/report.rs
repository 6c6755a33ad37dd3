//! The results file (`latest.json`) and its markdown tables; `targets` (the verdict on the issues'
//! targets), `svg` (the plot: deliveries/s and p99 against N, ours against both baselines).

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

/// The targets, judged from one run's results.
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

mod svg;
mod targets;
#[cfg(test)]
mod tests;
pub use svg::svg;
pub use targets::{targets, N2_START_US, N2_TARGET_US};
