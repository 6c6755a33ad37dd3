//! `switchboard-bench`: the load generator and orchestrator of the benchmark suite (issue 6).
//!
//! It starts `node bench/serve.mjs` (one workerd serving our worker and the two JS baselines, pinned
//! to one core), speaks each server's real protocol over real sockets on 127.0.0.1, and writes
//! `latest.json`, `latest.md` and `latest.svg`. Every phase is bounded in messages and time and
//! stops by itself. Run it through `bash bench/run`, which builds it and pins it to the other core.
//!
//! Scenarios: fan-out sweep (closed loop at the highest sustainable rate, then open-loop latency at
//! half that rate; N in --ns), HTTP sends at N = 1000, memory per idle hibernated socket, time to the
//! first answer from a fresh object, and bundle sizes.

mod counters;
mod cpu;
mod fanout;
mod first;
mod memory;
mod net;
mod pusher;
mod scenarios;
mod serve;
mod sizes;

use std::path::PathBuf;
use std::time::Duration;

/// Everything the command line can set.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: PathBuf,
    pub out: PathBuf,
    pub build: PathBuf,
    pub work: PathBuf,
    pub ns: Vec<usize>,
    pub servers: Vec<String>,
    pub scenarios: Vec<String>,
    pub runs: usize,
    /// Saturation runs (socket sends) at N = 1,000, the N of the throughput targets: more than
    /// `runs`, so that one run slowed by the host cannot move the median that decides them.
    pub target_runs: usize,
    pub sat: Duration,
    pub lat: Duration,
    pub warm: Duration,
    pub http_n: usize,
    pub memory_sockets: Vec<usize>,
    pub memory_runs: usize,
    /// Idle sockets opened (and hibernated) before the memory baseline is taken, so what is
    /// measured is the cost of more sockets, not the server's one-time warm-up (code compiled on
    /// the connect path, heaps grown to their working size).
    pub memory_warmup: usize,
    pub hibernate_wait: Duration,
    pub first_cycles: usize,
    pub serve_core: String,
    pub serve_vars: Vec<String>,
    /// Extra copies of our worker, `NAME[=BUILD_DIR][,VAR=VALUE...]` (NAME starts with `ours-`).
    pub variants: Vec<String>,
    pub notifications: String,
    pub text: String,
    pub max_members: usize,
    pub window_deliveries: usize,
    /// A run during which other processes used more than this share of a core is repeated.
    pub noisy: f64,
    pub retries: usize,
    pub retry_budget: usize,
    pub inspector: Option<u16>,
    /// Latency runs at this rate (msgs/s) instead of half the measured max (diagnostics).
    pub fixed_rate: Option<f64>,
    /// Messages in flight in saturation runs (default: about `window_deliveries` / N, 2..64).
    pub window: Option<usize>,
    /// Saturation runs send bursts of this many messages at once, the next when all are delivered
    /// (a bot's burst) instead of keeping a window full.
    pub burst: Option<usize>,
    /// `load` subcommand: hold one server at saturation this long (for profiling).
    pub load: Option<(String, usize, Duration, String)>,
}

const USAGE: &str = "usage: switchboard-bench [run] [--out DIR] [--build DIR] [--work DIR] [--ns 10,100,1000,5000]
  [--servers ours,room,ceiling] [--scenarios fanout,http,pusher,memory,first,sizes] [--runs 3] [--target-runs 7]
  [--max-members 1000 (members of the conversation: min(N, this); sockets beyond reuse members)]
  [--sat-secs 1.5] [--lat-secs 1.5] [--warm-secs 0.5] [--http-n 1000] [--memory-sockets 1000,5000]
  [--memory-runs 3] [--memory-warmup 100] [--hibernate-wait 11] [--first-cycles 3] [--serve-core 0] [--serve-var NAME=VALUE]...
  [--variant ours-NAME[=BUILD_DIR][,VAR=VALUE...]]... (another copy of our worker, measured beside ours;
   a NAME ending in -batched opens its sockets with ?batch=1 and splits each text frame into lines)
  [--window W (messages in flight at saturation; W <= 4 measures 6 s runs unless --sat-secs says)] [--burst B (send B at once, the next B when all arrived)]
  [--notifications stub|absent] [--noisy 0.2] [--retries 2] [--retry-budget 40] [--quick]
switchboard-bench load --server ours --n 1000 --secs 20 --mode socket|http [--inspector PORT] [--serve-var ..]
  (saturates one server for profiling; prints the workerd pid and the inspector port)";

fn parse_list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.trim().parse::<T>().map_err(|_| format!("bad list item {x:?}")))
        .collect()
}

/// Windows up to this size measure the tail at saturation...
const TAIL_WINDOW: usize = 4;
/// ...over runs this long (unless `--sat-secs` says otherwise).
const TAIL_SAT: Duration = Duration::from_secs(6);

fn parse_args() -> Result<Config, String> {
    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    let mut sat_given = false;
    let mut c = Config {
        out: root.join("bench/results"),
        build: root.join("build"),
        // Object storage on tmpfs: the disk's fsync latency is not what is being compared.
        work: if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() }
            .join(format!("switchboard-bench-{}", std::process::id())),
        root,
        ns: vec![10, 100, 1000, 5000],
        servers: vec!["room".into(), "ours".into(), "ceiling".into()],
        scenarios: vec![
            "sizes".into(),
            "fanout".into(),
            "http".into(),
            "pusher".into(),
            "first".into(),
            "memory".into(),
        ],
        runs: 3,
        target_runs: 7,
        sat: Duration::from_millis(1500),
        lat: Duration::from_millis(1500),
        warm: Duration::from_millis(500),
        http_n: 1000,
        memory_sockets: vec![1000, 5000],
        memory_runs: 3,
        memory_warmup: 100,
        hibernate_wait: Duration::from_secs(11),
        first_cycles: 3,
        serve_core: "0".into(),
        serve_vars: vec![],
        variants: vec![],
        notifications: "stub".into(),
        text: "Switchboard bench: one message to every member of the conversation".into(),
        max_members: 1000,
        window_deliveries: 8000,
        noisy: 0.2,
        retries: 2,
        retry_budget: 40,
        inspector: None,
        fixed_rate: None,
        window: None,
        burst: None,
        load: None,
    };
    let mut args = std::env::args().skip(1).peekable();
    let mut load_server = None;
    let mut load_n = 1000;
    let mut load_secs = 20.0;
    let mut load_mode = "socket".to_string();
    let mut is_load = false;
    if let Some(first) = args.peek() {
        if first == "load" {
            is_load = true;
            args.next();
        } else if first == "run" {
            args.next();
        }
    }
    let secs = |v: String| v.parse::<f64>().map(Duration::from_secs_f64).map_err(|_| format!("bad seconds {v:?}"));
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--out" => c.out = PathBuf::from(val()?),
            "--build" => c.build = PathBuf::from(val()?),
            "--work" => c.work = PathBuf::from(val()?),
            "--ns" => c.ns = parse_list(&val()?)?,
            "--servers" => c.servers = parse_list(&val()?)?,
            "--scenarios" => c.scenarios = parse_list(&val()?)?,
            "--runs" => c.runs = val()?.parse().map_err(|_| "bad --runs")?,
            "--target-runs" => c.target_runs = val()?.parse().map_err(|_| "bad --target-runs")?,
            "--sat-secs" => {
                c.sat = secs(val()?)?;
                sat_given = true;
            }
            "--lat-secs" => c.lat = secs(val()?)?,
            "--warm-secs" => c.warm = secs(val()?)?,
            "--max-members" => c.max_members = val()?.parse().map_err(|_| "bad --max-members")?,
            "--http-n" => c.http_n = val()?.parse().map_err(|_| "bad --http-n")?,
            "--memory-sockets" => c.memory_sockets = parse_list(&val()?)?,
            "--memory-runs" => c.memory_runs = val()?.parse().map_err(|_| "bad --memory-runs")?,
            "--memory-warmup" => c.memory_warmup = val()?.parse().map_err(|_| "bad --memory-warmup")?,
            "--hibernate-wait" => c.hibernate_wait = secs(val()?)?,
            "--first-cycles" => c.first_cycles = val()?.parse().map_err(|_| "bad --first-cycles")?,
            "--serve-core" => c.serve_core = val()?,
            "--serve-var" => c.serve_vars.push(val()?),
            "--variant" => {
                let v = val()?;
                let name = v.split([',', '=']).next().unwrap_or_default().to_string();
                if !name.starts_with("ours-") {
                    return Err(format!("--variant {v}: the name must start with ours-"));
                }
                c.servers.push(name);
                c.variants.push(v);
            }
            "--notifications" => c.notifications = val()?,
            "--noisy" => c.noisy = val()?.parse().map_err(|_| "bad --noisy")?,
            "--retries" => c.retries = val()?.parse().map_err(|_| "bad --retries")?,
            "--retry-budget" => c.retry_budget = val()?.parse().map_err(|_| "bad --retry-budget")?,
            "--window" => c.window = Some(val()?.parse().map_err(|_| "bad --window")?),
            "--burst" => c.burst = Some(val()?.parse().map_err(|_| "bad --burst")?),
            "--fixed-rate" => c.fixed_rate = Some(val()?.parse().map_err(|_| "bad --fixed-rate")?),
            "--inspector" => c.inspector = Some(val()?.parse().map_err(|_| "bad --inspector")?),
            "--server" => load_server = Some(val()?),
            "--n" => load_n = val()?.parse().map_err(|_| "bad --n")?,
            "--secs" => load_secs = val()?.parse().map_err(|_| "bad --secs")?,
            "--mode" => load_mode = val()?,
            "--quick" => {
                c.runs = 1;
                c.target_runs = 1;
                c.sat = Duration::from_secs(1);
                sat_given = true;
                c.lat = Duration::from_secs(1);
                c.memory_runs = 1;
                c.hibernate_wait = Duration::from_secs(11);
                c.first_cycles = 1;
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if is_load {
        c.load =
            Some((load_server.unwrap_or_else(|| "ours".into()), load_n, Duration::from_secs_f64(load_secs), load_mode));
    }
    if c.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    // The tail at saturation (a small window): a 1.5 s run holds ~40 messages at N = 1,000, so its
    // p99 is the slowest one or two; 6 s runs make it steady (bench/README.md, issue 19).
    if !sat_given && c.window.is_some_and(|w| w <= TAIL_WINDOW) {
        c.sat = TAIL_SAT;
    }
    // A server named twice (`--servers ...,ours-x --variant ours-x,...`) is measured once: two
    // entries would open two sets of sockets on one worker and skew both.
    let mut seen = std::collections::HashSet::new();
    c.servers.retain(|s| seen.insert(s.clone()));
    Ok(c)
}

fn main() {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    cpu::raise_fd_limit();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, async move {
        if cfg.load.is_some() {
            scenarios::load(&cfg).await
        } else {
            scenarios::run_all(&cfg).await
        }
    });
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}
