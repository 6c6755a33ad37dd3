//! End-to-end test harness for Switchboard.
//!
//! [`Server`] serves the built workers on 127.0.0.1 from one Miniflare (workerd) process started
//! by `tests/e2e/serve.mjs` (fresh persistence directory, a free port, a known `JWT_SECRET`),
//! [`Api`] speaks its HTTP API and [`Ws`] its WebSocket protocol. Most tests share one server per
//! test binary ([`shared`]); tests that need special variables or a restart start their own.
//!
//! Process hygiene: serve.mjs exits when its stdin closes, i.e. when its `Server` is stopped or
//! dropped, and when the test binary exits in any way (the kernel closes the pipe), taking its
//! workerd with it. There are no process groups to reap.
//!
//! Each server keeps its state and its log in `target/e2e/run-<pid>-<n>/`; logs stay there after
//! the run (state is removed by the next run, logs after six hours).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

pub use serde_json;

/// The fake Expo push service of the notifications tests.
pub mod expo;
/// The objects' databases under a server's state directory, from outside the runtime.
pub mod storage;

/// A TCP forwarder whose connections can vanish without a trace (no close frame, FIN or RST).
pub mod blackhole;
/// Node tests of the TypeScript client library (`tests/e2e/js/client.test.mjs`, `frames.test.mjs`).
pub mod node;

/// The `JWT_SECRET` used when the repository has no `.dev.vars` (see [`jwt_secret`]).
pub const FALLBACK_JWT_SECRET: &str = "switchboard-e2e-secret-6f1d0c9a4b7e2f3a8d5c1b0e9f7a6d4c";

/// The `JWT_SECRET` every test server's workers run with, so tests can mint their own tokens: the
/// one in the repository's `.dev.vars` (written by scripts/setup; the same as `scripts/dev` uses),
/// or without `.dev.vars`, [`FALLBACK_JWT_SECRET`].
pub fn jwt_secret() -> &'static str {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET.get_or_init(|| {
        let text = fs::read_to_string(repo_root().join(".dev.vars")).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("JWT_SECRET="))
            .map(|v| v.trim().trim_matches('"').to_string())
            .find(|v| !v.is_empty())
            .unwrap_or_else(|| FALLBACK_JWT_SECRET.to_string())
    })
}
/// The audience the worker expects (`JWT_AUDIENCE` in wrangler.toml).
pub const AUDIENCE: &str = "switchboard";
/// A syntactically valid ULID no test ever creates.
pub const UNKNOWN_ULID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Default wait for a frame that must arrive.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Paths and small utilities
// ---------------------------------------------------------------------------------------------

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

/// Where servers keep their state and logs: `<repo>/target/e2e/`.
fn runs_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { repo_root().join(p) })
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("e2e")
}

/// A process-unique, run-unique id with a prefix: `alice-1a2b3c4d5e-7`.
pub fn uid(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mix = nanos ^ ((std::process::id() as u64) << 40) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{prefix}-{:010x}-{n}", mix & 0xff_ffff_ffff)
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// True for a 26-character upper-case Crockford base32 ULID.
pub fn is_ulid(s: &str) -> bool {
    s.len() == 26
        && s.chars().all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c)))
        && s.as_bytes()[0] <= b'7'
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff][Z|+00:00]` to milliseconds since the epoch.
pub fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{:0<3}", &digits[..digits.len().min(3)]);
        millis = padded.parse().ok()?;
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) && &r[3..4] == ":" => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            sign * (r[1..3].parse::<i64>().ok()? * 60 + r[4..6].parse::<i64>().ok()?)
        }
        _ => return None,
    };
    // days from civil (Howard Hinnant)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(((days * 86400 + h * 3600 + mi * 60 + se) - offset_min * 60) * 1000 + millis)
}

/// A one-block text content array.
pub fn text(s: &str) -> Value {
    json!([{ "type": "text", "text": s }])
}

/// Polls `f` every `every` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn poll_until<T, F, Fut>(what: &str, deadline: Duration, every: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(every).await;
    }
}

// ---------------------------------------------------------------------------------------------
// JWTs (HS256), for forged/expired/wrong-audience tokens and tokens with chosen claims
// ---------------------------------------------------------------------------------------------

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `claims` as an HS256 JWT with `secret`.
pub fn sign_jwt(secret: &[u8], claims: &Value) -> String {
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("hmac key");
    mac.update(signing_input.as_bytes());
    let sig = b64url(&mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Claims of a human token: `kiloUserId`, `tokenSource`, `version`, `aud`, `iat`, `exp`.
pub fn human_claims(user: &str, iat: Option<i64>, exp: Option<i64>, aud: &str) -> Value {
    let mut c = json!({ "kiloUserId": user, "tokenSource": "e2e", "version": 1, "aud": aud });
    if let Some(iat) = iat {
        c["iat"] = json!(iat);
    }
    if let Some(exp) = exp {
        c["exp"] = json!(exp);
    }
    c
}

/// Claims of a bot (sandbox) token.
pub fn bot_claims(sandbox: &str, iat: i64, exp: i64) -> Value {
    json!({ "kiloclawSandboxId": sandbox, "tokenSource": "e2e", "version": 1, "aud": AUDIENCE, "iat": iat, "exp": exp })
}

/// A valid human token signed with the test servers' secret (lifetime 30 min).
pub fn mint_user_token(user: &str) -> String {
    let now = now_secs();
    sign_jwt(jwt_secret().as_bytes(), &human_claims(user, Some(now), Some(now + 1800), AUDIENCE))
}

// ---------------------------------------------------------------------------------------------
// Run directories
// ---------------------------------------------------------------------------------------------

fn pid_alive(pid: i32) -> bool {
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Removes the state left behind by earlier test binaries (their servers ended with them: see
/// [`Server`]), and their logs after six hours.
fn clean_old_runs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(dir) = fs::read_dir(runs_dir()) else { return };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("run-") else { continue };
            let owner: i32 = rest.split('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
            if owner == std::process::id() as i32 || pid_alive(owner) {
                continue;
            }
            // keep the logs for a while (the previous test binary's may be of interest), drop state
            let _ = fs::remove_dir_all(entry.path().join("state"));
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(6 * 3600));
            if old {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Build check
// ---------------------------------------------------------------------------------------------

fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    let mut newest = None;
    for e in fs::read_dir(path).ok()?.flatten() {
        let p = e.path();
        let name = e.file_name();
        // client-ts is not part of the workers (tests that use it build it: `node::run_client_test`)
        if name == "target"
            || name == "node_modules"
            || name == "build"
            || name == "dist"
            || name == ".wrangler"
            || name == "client-ts"
        {
            continue;
        }
        if let Some(t) = newest_mtime(&p) {
            newest = Some(newest.map_or(t, |n: SystemTime| n.max(t)));
        }
    }
    newest
}

/// The build outputs of every worker: `build/index.js` and `services/*/build/index.js` (for each
/// service with a Cargo.toml and a wrangler.toml, as scripts/build builds them), and the web app's
/// `build/web/index.html`.
fn build_outputs(root: &Path) -> Vec<PathBuf> {
    let mut outs = vec![root.join("build/index.js"), root.join("build/web/index.html")];
    if let Ok(entries) = fs::read_dir(root.join("services")) {
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for d in dirs {
            if d.join("Cargo.toml").is_file() && d.join("wrangler.toml").is_file() {
                outs.push(d.join("build/index.js"));
            }
        }
    }
    outs
}

/// Makes sure every worker's build exists. With SWITCHBOARD_PREBUILT=1 the caller vouches for it
/// being current; otherwise this runs `scripts/build` once per process when a build is missing
/// or older than the sources.
fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = repo_root();
        let outs = build_outputs(&root);
        if std::env::var("SWITCHBOARD_PREBUILT").as_deref() == Ok("1") {
            for out in &outs {
                assert!(
                    out.exists(),
                    "SWITCHBOARD_PREBUILT=1 but {} does not exist: run `bash scripts/build`",
                    out.display()
                );
            }
            return;
        }
        let built = outs
            .iter()
            .map(|o| fs::metadata(o).and_then(|m| m.modified()).ok())
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().min());
        let sources = ["src", "packages", "services", "web", "Cargo.toml", "Cargo.lock", "wrangler.toml"]
            .iter()
            .filter_map(|p| newest_mtime(&root.join(p)))
            .max();
        let fresh = matches!((built, sources), (Some(b), Some(s)) if b >= s);
        if fresh {
            return;
        }
        eprintln!("e2e: a worker build is missing or stale: running scripts/build");
        let status = Command::new("bash")
            .arg("scripts/build")
            .current_dir(&root)
            .env_remove("SWITCHBOARD_PREBUILT")
            .stdin(Stdio::null())
            .status()
            .expect("run scripts/build");
        assert!(status.success(), "scripts/build failed ({status})");
    });
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// The worker name of the notifications worker (`name` in services/notifications/wrangler.toml).
pub const NOTIFICATIONS_WORKER: &str = "switchboard-notifications";

/// What a test server runs, and with which vars.
///
/// Every worker gets its wrangler.toml `[vars]` overridden by `LOCAL_MODE=true` and the test
/// `JWT_SECRET`; the primary (first) worker then by `vars`, the notifications worker by
/// `notifications_vars`. (`.dev.vars` files are not read: the values come from here.)
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Vars of the primary worker, over `LOCAL_MODE=true` and `JWT_SECRET`.
    pub vars: Vec<(String, String)>,
    /// Vars of the notifications worker (e.g. `EXPO_PUSH_URL`, `IDEM_TTL_MS`).
    pub notifications_vars: Vec<(String, String)>,
    /// Run the notifications worker alone, as the primary worker (its local-mode `/dev/...`
    /// routes then answer on the server's port).
    pub notifications_only: bool,
}

impl StartOptions {
    pub fn with_vars(vars: &[(&str, &str)]) -> StartOptions {
        StartOptions { vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() }
    }
}

/// A running `node tests/e2e/serve.mjs`. It ends when its stdin closes: when [`Server::stop`]
/// drops `stdin`, or when this process exits in any way (the kernel closes the pipe).
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    workerd_pid: Option<i32>,
}

/// The workers on 127.0.0.1, served by `tests/e2e/serve.mjs` (Miniflare: one workerd process,
/// direct sockets) with their own persistence directory.
pub struct Server {
    /// The primary worker's port; the same after [`Server::restart`].
    pub port: u16,
    /// Arguments of serve.mjs but `--port`.
    args: Vec<String>,
    persist_dir: PathBuf,
    log_path: PathBuf,
    proc: Mutex<Option<Proc>>,
}

/// The ready line of serve.mjs.
struct Ready {
    port: u16,
    workerd_pid: Option<i32>,
}

impl Server {
    /// Starts a server with `JWT_SECRET`=[`jwt_secret`], `LOCAL_MODE`=true and `extra_vars`.
    /// Blocks until it is ready; panics (printing the log tail) if it is not within 60 s.
    pub fn start(extra_vars: &[(&str, &str)]) -> Server {
        Server::start_with(&StartOptions::with_vars(extra_vars))
    }

    /// Starts a server as `opts` says (see [`StartOptions`]).
    pub fn start_with(opts: &StartOptions) -> Server {
        clean_old_runs();
        ensure_built();
        static N: AtomicU64 = AtomicU64::new(0);
        let run_dir = runs_dir().join(format!("run-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = fs::remove_dir_all(&run_dir);
        fs::create_dir_all(&run_dir).expect("create run dir");
        let persist_dir = run_dir.join("state");
        fs::create_dir_all(&persist_dir).expect("create persist dir");
        let log_path = run_dir.join("server.log");

        let base = [("LOCAL_MODE", "true"), ("JWT_SECRET", jwt_secret())];
        let mut args: Vec<String> = vec![
            "--state".into(),
            persist_dir.display().to_string(),
            "--log".into(),
            log_path.display().to_string(),
            "--no-dev-vars".into(),
        ];
        if opts.notifications_only {
            args.extend(["--only".into(), NOTIFICATIONS_WORKER.into()]);
        }
        let mut var = |worker: Option<&str>, k: &str, v: &str| {
            args.push("--var".into());
            args.push(match worker {
                Some(w) => format!("{w}:{k}={v}"),
                None => format!("{k}={v}"),
            });
        };
        for (k, v) in base {
            var(None, k, v);
        }
        for (k, v) in &opts.vars {
            var(None, k, v);
        }
        if opts.notifications_only || serves_notifications() {
            for (k, v) in base {
                var(Some(NOTIFICATIONS_WORKER), k, v);
            }
            for (k, v) in &opts.notifications_vars {
                var(Some(NOTIFICATIONS_WORKER), k, v);
            }
        }
        let mut server = Server { port: 0, args, persist_dir, log_path, proc: Mutex::new(None) };
        server.port = server.launch(0);
        server
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn ws_base(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The persistence directory (the objects' databases: [`storage`]).
    pub fn persist_dir(&self) -> &Path {
        &self.persist_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `n` lines of the server's log (workerd's output and serve.mjs's own lines).
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn log_file(&self) -> File {
        OpenOptions::new().create(true).append(true).open(&self.log_path).expect("open log")
    }

    /// Starts serve.mjs on `port` (0: any free port) and waits for its ready line; returns the
    /// port. A start that fails (e.g. the port of a restart was taken meanwhile) is tried again
    /// twice.
    fn launch(&self, port: u16) -> u16 {
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            match self.launch_once(port) {
                Ok(port) => return port,
                Err(e) => {
                    let _ = writeln!(
                        self.log_file(),
                        "=== e2e: start attempt {attempt} failed: {}",
                        e.lines().next().unwrap_or("")
                    );
                    failures.push(e);
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        panic!("the test server failed to start 3 times; last failure: {}", failures.pop().unwrap_or_default());
    }

    fn launch_once(&self, port: u16) -> Result<u16, String> {
        let root = repo_root();
        let script = root.join("tests/e2e/serve.mjs");
        assert!(
            root.join("node_modules/miniflare").exists(),
            "node_modules/miniflare missing: run `bash scripts/setup`"
        );
        let _ = writeln!(self.log_file(), "=== e2e: node {} --port {port} ({})", script.display(), now_ms());
        let mut child = Command::new("node")
            .arg(&script)
            .args(&self.args)
            .arg("--port")
            .arg(port.to_string())
            .current_dir(&root)
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(self.log_file())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node (Node 20 must be on PATH): {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout pipe");
        // The first line is the ready line; anything after it goes to the log.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let mut log = self.log_file();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
            }
        });
        let mut proc_ = Proc { child, stdin, workerd_pid: None };
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let timed_out = matches!(e, std::sync::mpsc::RecvTimeoutError::Timeout);
                end_proc(&mut proc_, Duration::from_secs(5));
                let what = if timed_out { format!("was not ready within {START_TIMEOUT:?}") } else { "exited".into() };
                return Err(format!(
                    "serve.mjs {what} (port {port}); log {}:\n{}",
                    self.log_path.display(),
                    self.log_tail(60)
                ));
            }
        };
        let ready = parse_ready(&line).unwrap_or_else(|| {
            end_proc(&mut proc_, Duration::from_secs(5));
            panic!("serve.mjs: unexpected first line {line:?}; log {}:\n{}", self.log_path.display(), self.log_tail(40))
        });
        proc_.workerd_pid = ready.workerd_pid;
        *self.lock_proc() = Some(proc_);
        Ok(ready.port)
    }

    fn lock_proc(&self) -> std::sync::MutexGuard<'_, Option<Proc>> {
        self.proc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the server: closes serve.mjs's stdin (it disposes of Miniflare and exits), kills it
    /// and its workerd if they have not exited after 10 s, and waits until the port is free.
    pub fn stop(&self) {
        let Some(mut p) = self.lock_proc().take() else { return };
        end_proc(&mut p, Duration::from_secs(10));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server and starts it again on the same port and persistence directory.
    pub fn restart(&self) {
        self.stop();
        let _ = writeln!(self.log_file(), "=== e2e: restart");
        let port = self.launch(self.port);
        assert_eq!(port, self.port, "the restarted server is on another port");
    }

    /// Stops the server, runs `between` on its persistence directory (e.g. to change an object's
    /// database with [`storage::write`]), and starts it again on the same port and directory.
    pub fn restart_after(&self, between: impl FnOnce(&Path)) {
        self.stop();
        between(&self.persist_dir);
        let _ = writeln!(self.log_file(), "=== e2e: restart (storage changed while stopped)");
        let port = self.launch(self.port);
        assert_eq!(port, self.port, "the restarted server is on another port");
    }

    /// A crash: SIGKILL to workerd (the runtime), then to serve.mjs, with no graceful shutdown; then
    /// starts the server again on the same port and persistence directory. Returns false (and only
    /// stops the server gracefully) when serve.mjs did not report workerd's pid.
    pub fn crash_and_restart(&self) -> bool {
        let killed = match self.lock_proc().take() {
            Some(mut p) => match p.workerd_pid {
                Some(pid) => {
                    // SAFETY: a plain kill(2) of the workerd this server started.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while is_live_workerd(pid) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    true
                }
                None => {
                    end_proc(&mut p, Duration::from_secs(10));
                    false
                }
            },
            None => false,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = writeln!(self.log_file(), "=== e2e: crash (SIGKILL: {killed}) and restart");
        let port = self.launch(self.port);
        assert_eq!(port, self.port, "the restarted server is on another port");
        killed
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.persist_dir);
        }
    }
}

/// Whether scripts/wrangler-configs lists the notifications worker.
fn serves_notifications() -> bool {
    let text = fs::read_to_string(repo_root().join("scripts/wrangler-configs")).unwrap_or_default();
    text.lines().any(|l| l.split('#').next().unwrap_or("").trim() == "services/notifications/wrangler.toml")
}

/// `{"port": N, "workerd_pid": N|null, ...}`
fn parse_ready(line: &str) -> Option<Ready> {
    let v: Value = serde_json::from_str(line).ok()?;
    let port = u16::try_from(v["port"].as_u64()?).ok()?;
    Some(Ready { port, workerd_pid: v["workerd_pid"].as_i64().and_then(|p| i32::try_from(p).ok()) })
}

/// True while `pid` is a running (not zombie) workerd.
fn is_live_workerd(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let comm = stat.find('(').zip(stat.rfind(')')).map(|(a, b)| &stat[a + 1..b]).unwrap_or("");
    let zombie = stat.rfind(')').is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
    comm.starts_with("workerd") && !zombie
}

/// Closes serve.mjs's stdin and waits up to `grace` for it to exit; then kills it (and its
/// workerd, which it would otherwise leave behind) and reaps it.
fn end_proc(p: &mut Proc, grace: Duration) {
    drop(p.stdin.take());
    let deadline = Instant::now() + grace;
    let mut exited = false;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = p.child.try_wait() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !exited {
        let _ = p.child.kill();
    }
    let _ = p.child.wait();
    if let Some(pid) = p.workerd_pid {
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_live_workerd(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if is_live_workerd(pid) {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// The server shared by the tests of one test binary, started on first use. It lives until the
/// binary exits (serve.mjs then sees its stdin close and exits too).
/// If it failed to start, every later call fails at once with the same message.
pub fn shared() -> &'static Server {
    static SHARED: OnceLock<Result<Server, String>> = OnceLock::new();
    let started = SHARED.get_or_init(|| {
        std::panic::catch_unwind(|| Server::start(&[])).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into())
        })
    });
    match started {
        Ok(s) => s,
        Err(msg) => panic!("the shared test server failed to start: {msg}"),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------

/// An HTTP answer: status, parsed JSON body (`Null` when empty or not JSON), raw text.
#[derive(Debug, Clone)]
pub struct Resp {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "{} {}: expected status {status}, got {} with body {}",
            self.method, self.path, self.status, self.text
        );
        &self.body
    }

    /// Asserts an error answer `{"error":{"code","message"}}` with this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{} {}: expected {status} {code}, got {} with body {}",
            self.method,
            self.path,
            self.status,
            self.text
        );
        assert!(
            self.body["error"]["message"].is_string(),
            "{} {}: error without a message string: {}",
            self.method,
            self.path,
            self.text
        );
        &self.body
    }

    pub fn error_message(&self) -> String {
        self.body["error"]["message"].as_str().unwrap_or_default().to_string()
    }
}

/// A user or bot with a bearer token.
#[derive(Debug, Clone)]
pub struct Who {
    /// member id: the user id, or `bot:kiloclaw:{sandbox}`
    pub id: String,
    pub token: String,
}

/// HTTP client for one server. Create one per test (a reqwest client is bound to the runtime
/// that made its connections, and each `#[tokio::test]` has its own runtime).
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub ws_base: String,
}

impl Api {
    /// Each request on a new connection (no idle pool): workerd closes a connection whose request
    /// body the worker did not read (e.g. after a 413) without saying `Connection: close`, and a
    /// pooled client would send its next request into that closing connection.
    pub fn new(server: &Server) -> Api {
        Api {
            http: reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            base: server.base_url(),
            ws_base: server.ws_base(),
        }
    }

    /// Sends a request with an optional bearer token and a raw body (sent as JSON content).
    pub async fn send_raw(&self, method: &str, path: &str, token: Option<&str>, body: Option<String>) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: request failed: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_else(|e| panic!("{method} {path}: reading body failed: {e}"));
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { method: method.to_string(), path: path.to_string(), status, body, text }
    }

    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
        self.send_raw(method, path, token, body.map(|b| b.to_string())).await
    }

    /// Like `send_raw` but with arbitrary headers (e.g. a non-Bearer Authorization).
    pub async fn send_with_headers(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: request failed: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { method: method.to_string(), path: path.to_string(), status, body, text }
    }

    /// Sends a body with an explicit content type.
    pub async fn send_typed(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(m, format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: request failed: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { method: method.to_string(), path: path.to_string(), status, body, text }
    }

    pub async fn get(&self, path: &str, who: &Who) -> Resp {
        self.send("GET", path, Some(&who.token), None).await
    }
    pub async fn post(&self, path: &str, who: &Who, body: &Value) -> Resp {
        self.send("POST", path, Some(&who.token), Some(body)).await
    }
    pub async fn post_empty(&self, path: &str, who: &Who) -> Resp {
        self.send("POST", path, Some(&who.token), None).await
    }
    pub async fn patch(&self, path: &str, who: &Who, body: &Value) -> Resp {
        self.send("PATCH", path, Some(&who.token), Some(body)).await
    }
    pub async fn put(&self, path: &str, who: &Who, body: &Value) -> Resp {
        self.send("PUT", path, Some(&who.token), Some(body)).await
    }
    pub async fn delete(&self, path: &str, who: &Who) -> Resp {
        self.send("DELETE", path, Some(&who.token), None).await
    }

    /// `POST /dev/token` for a user; asserts 200 and the answer's shape.
    pub async fn dev_token(&self, user: &str) -> Who {
        let r = self.send("POST", "/dev/token", None, Some(&json!({ "userId": user }))).await;
        let b = r.expect(200);
        assert_eq!(b["userId"], json!(user), "dev token userId: {}", r.text);
        Who { id: user.to_string(), token: b["token"].as_str().expect("token string").to_string() }
    }

    /// `POST /dev/token` for a sandbox's bot; asserts 200 and the member id.
    pub async fn bot_token(&self, sandbox: &str) -> Who {
        let r = self.send("POST", "/dev/token", None, Some(&json!({ "sandboxId": sandbox }))).await;
        let b = r.expect(200);
        let id = format!("bot:kiloclaw:{sandbox}");
        assert_eq!(b["userId"], json!(id), "bot dev token userId: {}", r.text);
        Who { id, token: b["token"].as_str().expect("token string").to_string() }
    }

    /// A fresh user with a unique id.
    pub async fn user(&self, prefix: &str) -> Who {
        self.dev_token(&uid(prefix)).await
    }

    /// Creates a conversation; asserts 201 and returns its id.
    pub async fn create_conversation(&self, who: &Who, sandbox: &str, title: Option<&str>, members: &[&str]) -> String {
        let mut body = json!({ "sandboxId": sandbox });
        if let Some(t) = title {
            body["title"] = json!(t);
        }
        if !members.is_empty() {
            body["additionalMembers"] = json!(members);
        }
        let r = self.post("/v1/conversations", who, &body).await;
        let b = r.expect(201);
        let id = b["conversationId"].as_str().unwrap_or_else(|| panic!("no conversationId: {}", r.text));
        assert!(is_ulid(id), "conversationId is not a ULID: {id}");
        id.to_string()
    }

    /// Sends a text message over HTTP; asserts 201 and returns the `message`.
    pub async fn send_text(&self, who: &Who, conv: &str, text_: &str) -> Value {
        let r = self.post("/v1/messages", who, &json!({ "conversationId": conv, "content": text(text_) })).await;
        r.expect(201)["message"].clone()
    }

    /// The newest messages of a conversation (first page, limit 100); asserts 200.
    pub async fn messages(&self, who: &Who, conv: &str) -> Vec<Value> {
        let r = self.get(&format!("/v1/conversations/{conv}/messages?limit=100"), who).await;
        r.expect(200)["messages"].as_array().unwrap_or_else(|| panic!("no messages array: {}", r.text)).clone()
    }

    /// Every conversation list item of a user (follows cursors); asserts 200 on each page.
    pub async fn all_conversations(&self, who: &Who, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let mut path = format!("/v1/conversations?limit=100{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let r = self.get(&path, who).await;
            let b = r.expect(200);
            out.extend(
                b["conversations"].as_array().unwrap_or_else(|| panic!("no conversations: {}", r.text)).iter().cloned(),
            );
            if b["hasMore"] != json!(true) {
                return out;
            }
            cursor = Some(
                b["nextCursor"]
                    .as_str()
                    .unwrap_or_else(|| panic!("hasMore without nextCursor: {}", r.text))
                    .to_string(),
            );
        }
        panic!("more than 100 pages of conversations");
    }

    /// Polls a user's conversation list (all pages, `query` like `&sandboxId=x`) until `pred`
    /// holds, for up to 15 s (list updates may lag by ACTIVITY_FLUSH_MS); returns that list.
    pub async fn wait_for_list(
        &self,
        who: &Who,
        query: &str,
        what: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let list = self.all_conversations(who, query).await;
            if pred(&list) {
                return list;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let ids: Vec<&Value> = list.iter().map(|i| &i["conversationId"]).collect();
                panic!("{}: timed out waiting until {what}; list is now {ids:?}", who.id);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Waits until `conv` is (or is not) in `who`'s list.
    pub async fn wait_listed(&self, who: &Who, conv: &str, present: bool) -> Vec<Value> {
        let what = format!("{conv} is {}listed", if present { "" } else { "not " });
        self.wait_for_list(who, "", &what, |l| l.iter().any(|i| i["conversationId"] == json!(conv)) == present).await
    }

    /// Mints a connect ticket; asserts 200.
    pub async fn ticket(&self, who: &Who) -> String {
        let r = self.post_empty("/connect-ticket", who).await;
        r.expect(200)["ticket"].as_str().unwrap_or_else(|| panic!("no ticket: {}", r.text)).to_string()
    }
}

/// Runs the Node test file `script` (relative to the repository, `node --test`, spec reporter,
/// one test at a time, each within 120 s) with `env`; prints its output and fails when node exits
/// non-zero.
pub async fn run_node_tests(script: &str, env: Vec<(&'static str, String)>) {
    let (status, output) = node_test(script, env).await;
    assert!(status.success(), "node tests of {script} failed ({status}):\n{output}");
}

/// `node --test` on `script` with `env`: its exit status and output (also printed).
pub(crate) async fn node_test(script: &str, env: Vec<(&'static str, String)>) -> (std::process::ExitStatus, String) {
    let (root, script_owned) = (repo_root(), script.to_string());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", "--test-concurrency=1", "--test-timeout=120000", &script_owned])
            .current_dir(&root)
            .envs(env)
            .output()
            .expect("run node (Node 20 is required)")
    })
    .await
    .expect("node runner");
    let output = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{output}");
    (out.status, output)
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------------------------

fn with_query(path: &str, auth: WsAuth<'_>, since: Option<&str>) -> String {
    let mut q = Vec::new();
    if let WsAuth::Ticket(t) = auth {
        q.push(format!("ticket={}", urlencode(t)));
    }
    if let Some(s) = since {
        q.push(format!("since={}", urlencode(s)));
    }
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}{}{}", if path.contains('?') { "&" } else { "?" }, q.join("&"))
    }
}

/// Reads one HTTP/1.1 response: (status, head, body). A 101 answer returns without a body.
pub async fn read_http_response(s: &mut tokio::net::TcpStream) -> (u16, String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before response headers: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head.get(9..12).and_then(|x| x.parse().ok()).unwrap_or_else(|| panic!("bad status line: {head}"));
    if status == 101 {
        return (status, head, Vec::new());
    }
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let mut body = buf[head_end..].to_vec();
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < len {
            let n = s.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            // need a complete size line
            let line_end = loop {
                if let Some(i) = body[pos..].windows(2).position(|w| w == b"\r\n") {
                    break pos + i;
                }
                let n = s.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed inside a chunked body");
                body.extend_from_slice(&chunk[..n]);
            };
            let size_text = String::from_utf8_lossy(&body[pos..line_end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size line: {size_text:?}"));
            if size == 0 {
                break;
            }
            let data_start = line_end + 2;
            while body.len() < data_start + size + 2 {
                let n = s.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed inside a chunk");
                body.extend_from_slice(&chunk[..n]);
            }
            out.extend_from_slice(&body[data_start..data_start + size]);
            pos = data_start + size + 2;
        }
        body = out;
    } else {
        let _ = s.read_to_end(&mut body).await;
    }
    (status, head, body)
}

/// A request whose body is streamed in chunks (`Transfer-Encoding: chunked`) as the test decides,
/// e.g. a live-channel publish that sends lines one at a time.
pub struct StreamingRequest {
    stream: tokio::net::TcpStream,
    method: String,
    path: String,
}

impl StreamingRequest {
    /// Sends the request head; the body follows with [`StreamingRequest::send`].
    pub async fn start(
        api: &Api,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
    ) -> StreamingRequest {
        use tokio::io::AsyncWriteExt;
        let host = api.base.trim_start_matches("http://").to_string();
        let mut stream = tokio::net::TcpStream::connect(&host).await.expect("connect");
        stream.set_nodelay(true).ok();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write request head");
        StreamingRequest { stream, method: method.to_string(), path: path.to_string() }
    }

    /// Sends one chunk of the body.
    pub async fn send(&mut self, data: &[u8]) {
        assert!(self.try_send(data).await, "{} {}: writing a body chunk failed", self.method, self.path);
    }

    /// Sends one chunk; false if the connection refused it.
    pub async fn try_send(&mut self, data: &[u8]) -> bool {
        use tokio::io::AsyncWriteExt;
        if data.is_empty() {
            return true;
        }
        let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
        frame.extend_from_slice(data);
        frame.extend_from_slice(b"\r\n");
        self.stream.write_all(&frame).await.is_ok() && self.stream.flush().await.is_ok()
    }

    /// Ends the body and reads the answer. (A server that already answered may have stopped
    /// reading: a failed write is ignored and the answer read anyway.)
    pub async fn finish(mut self) -> Resp {
        use tokio::io::AsyncWriteExt;
        let _ = self.stream.write_all(b"0\r\n\r\n").await;
        self.response().await
    }

    /// Reads the answer without ending the body (e.g. after an idle timeout).
    pub async fn response(mut self) -> Resp {
        let (status, _head, body) = tokio::time::timeout(Duration::from_secs(60), read_http_response(&mut self.stream))
            .await
            .unwrap_or_else(|_| panic!("{} {}: no answer within 60 s", self.method, self.path));
        let text = String::from_utf8_lossy(&body).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { method: self.method, path: self.path, status, body, text }
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A frame as the application sees it (protocol ping/pong frames are handled by tungstenite).
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// close frame: code and reason (code 1005 when the frame had none)
    Close(u16, String),
    /// the connection ended without a close frame (or with an error)
    Ended(String),
}

/// A refused upgrade: the HTTP status and body.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

pub struct Ws {
    pub label: String,
    stream: WsStream,
    closed: bool,
}

#[derive(Clone, Copy)]
pub enum WsAuth<'a> {
    Bearer(&'a str),
    Ticket(&'a str),
    None,
}

impl Ws {
    /// Opens `/v1/conversations/{conv}/ws` with the given auth and `since`. `Err` on a refused
    /// upgrade (its body is not available here: use [`Ws::refused`] to check a refusal's body).
    pub async fn open(
        api: &Api,
        conv: &str,
        auth: WsAuth<'_>,
        since: Option<&str>,
        label: &str,
    ) -> Result<Ws, Refused> {
        Ws::open_path(api, &format!("/v1/conversations/{conv}/ws"), auth, since, label).await
    }

    /// Opens a WebSocket on `path` (e.g. `/v1/conversations/{id}/live`).
    pub async fn open_path(
        api: &Api,
        path: &str,
        auth: WsAuth<'_>,
        since: Option<&str>,
        label: &str,
    ) -> Result<Ws, Refused> {
        let url = format!("{}{}", api.ws_base, with_query(path, auth, since));
        let mut req = url.as_str().into_client_request().expect("ws request");
        if let WsAuth::Bearer(t) = auth {
            req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let fut = tokio_tungstenite::connect_async(req);
        match tokio::time::timeout(Duration::from_secs(20), fut).await {
            Err(_) => panic!("{label}: websocket upgrade to {url} timed out"),
            Ok(Ok((stream, _resp))) => Ok(Ws { label: label.to_string(), stream, closed: false }),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                let status = resp.status().as_u16();
                let bytes = resp.body().clone().unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                Err(Refused { status, body, text })
            }
            Ok(Err(e)) => panic!("{label}: websocket upgrade to {url} failed: {e}"),
        }
    }

    /// Opens the per-user event hub `/connect` (`kilo.events.v1`). `session` and `since` go in the
    /// query; with `subprotocol` the client asks for `kilo.events.v1` and the echoed protocol is
    /// returned.
    pub async fn open_hub(
        api: &Api,
        auth: WsAuth<'_>,
        session: Option<&str>,
        since: Option<i64>,
        subprotocol: bool,
        label: &str,
    ) -> Result<(Ws, Option<String>), Refused> {
        let mut path = "/connect".to_string();
        if let Some(sid) = session {
            path.push_str(&format!("?session={}", urlencode(sid)));
        }
        let since = since.map(|s| s.to_string());
        let url = format!("{}{}", api.ws_base, with_query(&path, auth, since.as_deref()));
        let mut req = url.as_str().into_client_request().expect("ws request");
        if let WsAuth::Bearer(t) = auth {
            req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        if subprotocol {
            req.headers_mut().insert("sec-websocket-protocol", "kilo.events.v1".parse().unwrap());
        }
        match tokio::time::timeout(Duration::from_secs(20), tokio_tungstenite::connect_async(req)).await {
            Err(_) => panic!("{label}: hub upgrade timed out"),
            Ok(Ok((stream, resp))) => {
                let proto =
                    resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).map(str::to_string);
                Ok((Ws { label: label.to_string(), stream, closed: false }, proto))
            }
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                let status = resp.status().as_u16();
                let bytes = resp.body().clone().unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                Err(Refused { status, body, text })
            }
            Ok(Err(e)) => panic!("{label}: hub upgrade failed: {e}"),
        }
    }

    /// Attempts an upgrade of a conversation's event socket that must be refused, over a raw
    /// HTTP/1.1 connection so that the refusal's body can be read (tungstenite drops it).
    /// Panics if the server upgrades.
    pub async fn refused(api: &Api, conv: &str, auth: WsAuth<'_>, since: Option<&str>) -> Refused {
        Ws::refused_path(api, &format!("/v1/conversations/{conv}/ws"), auth, since).await
    }

    pub async fn refused_path(api: &Api, path: &str, auth: WsAuth<'_>, since: Option<&str>) -> Refused {
        use tokio::io::AsyncWriteExt;
        let host = api.base.trim_start_matches("http://").to_string();
        let target = with_query(path, auth, since);
        let mut req = format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        );
        if let WsAuth::Bearer(t) = auth {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        req.push_str("\r\n");
        let io = async {
            let mut s = tokio::net::TcpStream::connect(&host).await.expect("connect");
            s.write_all(req.as_bytes()).await.expect("write upgrade request");
            read_http_response(&mut s).await
        };
        let (status, head, body) =
            tokio::time::timeout(Duration::from_secs(20), io).await.expect("upgrade attempt timed out");
        if status == 101 {
            panic!("the upgrade to {target} was accepted, expected a refusal ({head})");
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Refused { status, body, text }
    }

    /// Asserts the upgrade is refused with this status and error code.
    pub async fn expect_refused(api: &Api, conv: &str, auth: WsAuth<'_>, since: Option<&str>, status: u16, code: &str) {
        let r = Ws::refused(api, conv, auth, since).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (status, Some(code)),
            "upgrade of {conv} (since {since:?}): expected {status} {code}, got {} {}",
            r.status,
            r.text
        );
    }

    /// Connects with a bearer token; panics if refused.
    pub async fn connect(api: &Api, conv: &str, who: &Who, since: Option<i64>) -> Ws {
        let since = since.map(|s| s.to_string());
        match Ws::open(api, conv, WsAuth::Bearer(&who.token), since.as_deref(), &who.id).await {
            Ok(ws) => ws,
            Err(r) => panic!("{}: websocket upgrade refused: {} {}", who.id, r.status, r.text),
        }
    }

    /// Connects with a fresh connect ticket; panics if refused.
    pub async fn connect_ticket(api: &Api, conv: &str, who: &Who, since: Option<i64>) -> Ws {
        let ticket = api.ticket(who).await;
        let since = since.map(|s| s.to_string());
        match Ws::open(api, conv, WsAuth::Ticket(&ticket), since.as_deref(), &who.id).await {
            Ok(ws) => ws,
            Err(r) => panic!("{}: websocket upgrade (ticket) refused: {} {}", who.id, r.status, r.text),
        }
    }

    /// Connects with a bearer token and reads up to `ready`; asserts there was no replay and
    /// returns the ready seq.
    pub async fn connect_ready(api: &Api, conv: &str, who: &Who) -> (Ws, i64) {
        let mut ws = Ws::connect(api, conv, who, None).await;
        let ready = ws.next_json(FRAME_TIMEOUT).await;
        assert_eq!(ready["type"], json!("ready"), "{}: first frame without since must be ready: {ready}", ws.label);
        let seq = ready["seq"].as_i64().unwrap_or_else(|| panic!("ready without integer seq: {ready}"));
        (ws, seq)
    }

    /// The next application frame, or `None` after `timeout`.
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        if self.closed {
            return Some(Frame::Ended("already closed".into()));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?;
            let frame = match next {
                None => Frame::Ended("stream ended".into()),
                Some(Err(e)) => Frame::Ended(e.to_string()),
                Some(Ok(Message::Text(t))) => Frame::Text(t.to_string()),
                Some(Ok(Message::Binary(b))) => Frame::Binary(b.to_vec()),
                Some(Ok(Message::Close(c))) => match c {
                    Some(c) => Frame::Close(u16::from(c.code), c.reason.to_string()),
                    None => Frame::Close(1005, String::new()),
                },
                Some(Ok(Message::Ping(_))) | Some(Ok(Message::Pong(_))) | Some(Ok(Message::Frame(_))) => continue,
            };
            if matches!(frame, Frame::Close(..) | Frame::Ended(_)) {
                self.closed = true;
            }
            return Some(frame);
        }
    }

    /// The next frame, which must be a JSON text frame arriving within `timeout`.
    pub async fn next_json(&mut self, timeout: Duration) -> Value {
        match self.next_frame(timeout).await {
            None => panic!("{}: no frame within {timeout:?}", self.label),
            Some(Frame::Text(t)) => {
                serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: text frame is not JSON ({e}): {t}", self.label))
            }
            Some(other) => panic!("{}: expected a JSON text frame, got {other:?}", self.label),
        }
    }

    /// The next frame must be an event; returns it.
    pub async fn next_event(&mut self) -> Value {
        let f = self.next_json(FRAME_TIMEOUT).await;
        assert_eq!(f["type"], json!("event"), "{}: expected an event frame, got {f}", self.label);
        assert!(f["seq"].is_i64(), "{}: event without integer seq: {f}", self.label);
        f
    }

    /// The next frame must be the event `name`; returns the whole frame.
    pub async fn expect_event(&mut self, name: &str) -> Value {
        let f = self.next_event().await;
        assert_eq!(f["event"], json!(name), "{}: expected event {name}, got {f}", self.label);
        f
    }

    /// Asserts that no frame arrives within `dur`.
    pub async fn expect_no_frame(&mut self, dur: Duration) {
        if let Some(f) = self.next_frame(dur).await {
            panic!("{}: expected no frame for {dur:?}, got {f:?}", self.label);
        }
    }

    /// Reads frames up to and including `ready`; returns (replayed events, resync frame if any,
    /// ready seq). Panics on any other frame.
    pub async fn read_until_ready(&mut self) -> (Vec<Value>, Option<Value>, i64) {
        let mut events = Vec::new();
        let mut resync = None;
        loop {
            let f = self.next_json(FRAME_TIMEOUT).await;
            match f["type"].as_str() {
                Some("event") => events.push(f),
                Some("resync") if resync.is_none() => resync = Some(f),
                Some("ready") => {
                    let seq = f["seq"].as_i64().unwrap_or_else(|| panic!("ready without integer seq: {f}"));
                    return (events, resync, seq);
                }
                _ => panic!("{}: unexpected frame before ready: {f}", self.label),
            }
        }
    }

    /// Waits for a close frame (within `timeout`), allowing only event frames before it; returns
    /// the close code and the events seen.
    pub async fn expect_close(&mut self, timeout: Duration) -> (u16, Vec<Value>) {
        let mut events = Vec::new();
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left).await {
                None => panic!("{}: no close within {timeout:?} (events seen: {events:?})", self.label),
                Some(Frame::Close(code, _)) => return (code, events),
                Some(Frame::Text(t)) => {
                    let v: Value = serde_json::from_str(&t)
                        .unwrap_or_else(|_| panic!("{}: non-JSON frame before close: {t}", self.label));
                    assert_eq!(v["type"], json!("event"), "{}: unexpected frame before close: {v}", self.label);
                    events.push(v);
                }
                Some(other) => panic!("{}: expected a close frame, got {other:?}", self.label),
            }
        }
    }

    pub async fn send_text(&mut self, s: &str) {
        self.stream
            .send(Message::Text(s.to_string().into()))
            .await
            .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.label));
    }

    pub async fn send_json(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await
    }

    pub async fn send_binary(&mut self, b: Vec<u8>) {
        self.stream
            .send(Message::Binary(b.into()))
            .await
            .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.label));
    }

    /// Drops the connection without a close frame, as a client whose process died: the TCP
    /// connection is reset (`SO_LINGER` 0, so the kernel sends RST, not FIN) and nothing is sent
    /// on the WebSocket. (For a client that vanishes without even a reset, see
    /// [`blackhole::Blackhole`].)
    pub fn abort(self) {
        if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = self.stream.get_ref() {
            tcp.set_zero_linger().unwrap_or_else(|e| panic!("{}: SO_LINGER 0 failed: {e}", self.label));
        }
        drop(self);
    }

    /// Sends a normal close and waits briefly for the server's answer.
    pub async fn close(mut self) {
        let _ = self
            .stream
            .send(Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            })))
            .await;
        let _ =
            tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = self.stream.next().await {} })
                .await;
    }
}
