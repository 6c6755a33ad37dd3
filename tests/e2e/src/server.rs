//! The test server: run directories (and the sweep of earlier runs'), the check that every worker
//! is built, [`Server`] (`node tests/e2e/serve.mjs`, one Miniflare process) and the [`shared`] one
//! per test binary.

use super::*;

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
    let started = SHARED.get_or_init(|| std::panic::catch_unwind(|| Server::start(&[])).map_err(panic_message));
    match started {
        Ok(s) => s,
        Err(msg) => panic!("the shared test server failed to start: {msg}"),
    }
}
