//! The README's own `bash scripts/dev` (wrangler dev with both workers) starts, serves the API and
//! the web app, and shuts down cleanly. The rest of the suite runs the same builds in one Miniflare process
//! (`tests/e2e/serve.mjs`); this is the one test of the path a developer takes.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_e2e::*;

/// `bash scripts/dev` in its own process group (it starts npx, wrangler and workerd), killed with
/// its group when dropped.
struct Dev {
    child: Child,
    pgid: i32,
    log: std::path::PathBuf,
}

impl Dev {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGTERM to the group, SIGKILL after 10 s; returns whether it exited on SIGTERM alone.
    fn shut_down(&mut self) -> bool {
        unsafe {
            libc::kill(-self.pgid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut clean = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                clean = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // whatever is left of the group (workerd children outlive their parents)
        let deadline = Instant::now() + Duration::from_secs(10);
        while group_alive(self.pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if group_alive(self.pgid) {
            clean = false;
        }
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        clean
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// True while a process of group `pgid` is alive.
fn group_alive(pgid: i32) -> bool {
    unsafe { libc::kill(-pgid, 0) == 0 }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_scripts_dev_serves_the_api() {
    let root = repo_root();
    let port = free_port();
    let run_dir = root.join("target/e2e").join(format!("run-{}-dev", std::process::id()));
    std::fs::create_dir_all(&run_dir).unwrap();
    let log = run_dir.join("scripts-dev.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new("bash")
        .arg("scripts/dev")
        .arg("--port")
        .arg(port.to_string())
        .current_dir(&root)
        // its own dev registry: not the one other `wrangler dev`s on this machine share
        .env("WRANGLER_REGISTRY_PATH", run_dir.join("registry"))
        .env("CI", "true")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("spawn bash scripts/dev");
    let pgid = child.id() as i32;
    let mut dev = Dev { child, pgid, log };

    // scripts/dev runs setup (and the build unless SWITCHBOARD_PREBUILT=1) before wrangler starts.
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            if r.status().as_u16() == 200 {
                break;
            }
        }
        if let Ok(Some(status)) = dev.child.try_wait() {
            panic!("bash scripts/dev exited ({status}) before serving; log:\n{}", dev.log_tail());
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "bash scripts/dev did not answer /health within 300 s; log:\n{}",
            dev.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let api = Api { http: http.clone(), base: base.clone(), ws_base: format!("ws://127.0.0.1:{port}") };
    let health = api.send("GET", "/health", None, None).await;
    health.expect(200);
    // the web app, from wrangler.toml's [assets], on the same port
    let index = http.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(index.status().as_u16(), 200, "GET / under wrangler dev");
    let html = index.text().await.unwrap_or_default();
    assert!(html.contains("<div id=\"app\">"), "GET / is not the web app: {html}");
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let sb = uid("sb");
    let conv = api.create_conversation(&alice, &sb, Some("smoke"), &[&bob.id]).await;
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &bob).await;
    let sent = api
        .post("/v1/messages", &alice, &json!({ "conversationId": conv, "clientId": "c1", "content": text("hello") }))
        .await;
    let id = sent.expect(201)["messageId"].as_str().expect("messageId").to_string();
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 1), "{ev}");
    let list = api.messages(&bob, &conv).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], json!(id));
    assert_eq!(list[0]["content"], text("hello"));
    ws.close().await;

    assert!(dev.shut_down(), "scripts/dev did not exit on SIGTERM within 10 s; log:\n{}", dev.log_tail());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still answers after shutdown");
    let _ = std::fs::remove_dir_all(run_dir.join("registry"));
}
