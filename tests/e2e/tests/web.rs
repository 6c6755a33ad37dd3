//! The web app (web/, served from build/web/ by wrangler.toml's [assets]) end to end.
//!
//! - `assets_and_api_share_the_port`: the app's files are served at `/` beside the API, and every
//!   API path (`/health`, `/v1/...`, `/connect`, `/app/...`, `/dev/token`, unknown paths) still
//!   reaches the worker with its own answers.
//!   (`/index.html` and `/index` redirect to `/`: wrangler's default `html_handling`.)
//! - `two_browsers_chat`: real Chromium (Debian's `/usr/bin/chromium`, driven by `playwright-core`
//!   from npm) runs `tests/e2e/js/web.test.mjs` against this server: two users in two browser
//!   contexts sign in, create a conversation and chat both ways, see typing start and stop, send
//!   and receive across one context going offline (each message once, in order), keep their
//!   session over a reload, see a Kick chat message (through the Kick bridge, read from this
//!   server's own Pusher endpoint behind `tests/e2e/js/fake-kick.mjs`) with its platform and
//!   author, and watch a bot's live stream. Screenshots of the main views go to
//!   `target/e2e/screenshots/`.

mod bridge_common;

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use bridge_common::NodePeer;
use serde_json::{json, Value};
use switchboard_e2e::{repo_root, Server, StartOptions};

/// The Pusher app the Kick bridge reads from (the server's own endpoint, behind fake-kick.mjs).
const PUSHER_APP_ID: &str = "switchboard";
const PUSHER_KEY: &str = "switchboard-key";
const PUSHER_SECRET: &str = "web-e2e-pusher-secret";

fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| Server::start(&[]))
}

struct Answer {
    status: u16,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

async fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client");
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = http.request(m, format!("{}{path}", server().base_url()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = r.status().as_u16();
    let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let text = r.text().await.unwrap_or_default();
    Answer { status, content_type, text }
}

/// The `/assets/...` paths index.html refers to.
fn asset_paths(html: &str) -> Vec<String> {
    html.split(['"', '\''])
        .filter(|s| s.starts_with("/assets/") && !s.contains(char::is_whitespace))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_and_api_share_the_port() {
    // the app
    let index = request("GET", "/", &[]).await;
    assert_eq!(index.status, 200, "GET /: {}", index.text);
    assert!(index.content_type.starts_with("text/html"), "GET / content-type {}", index.content_type);
    assert!(index.text.contains("<div id=\"app\">"), "GET / is not the app: {}", index.text);
    let assets = asset_paths(&index.text);
    assert_eq!(assets.len(), 2, "index.html names one script and one stylesheet: {assets:?}");
    for path in &assets {
        let a = request("GET", path, &[]).await;
        assert_eq!(a.status, 200, "GET {path}");
        let want = if path.ends_with(".js") { "javascript" } else { "text/css" };
        assert!(a.content_type.contains(want), "GET {path} content-type {}", a.content_type);
        assert!(!a.text.is_empty(), "GET {path} is empty");
        // no external requests: nothing absolute to another host in the bundle
        assert!(!a.text.contains("https://fonts.") && !a.text.contains("//cdn."), "{path} refers to another host");
    }
    let icon = request("GET", "/favicon.svg", &[]).await;
    assert_eq!(icon.status, 200);
    assert!(icon.content_type.starts_with("image/svg+xml"), "{}", icon.content_type);

    // the API, unchanged
    let health = request("GET", "/health", &[]).await;
    assert_eq!(health.status, 200, "{}", health.text);
    let list = request("GET", "/v1/conversations", &[]).await;
    assert_eq!((list.status, list.json()["error"]["code"].as_str()), (401, Some("unauthorized")), "{}", list.text);
    for path in ["/nope", "/v1/nope", "/assets/nope.js", "/favicon.ico"] {
        let a = request("GET", path, &[]).await;
        assert_eq!((a.status, a.json()["error"]["code"].as_str()), (404, Some("not_found")), "GET {path}: {}", a.text);
    }
    // a file's path takes only GET and HEAD (the asset router's 405, as on Cloudflare); other
    // methods on other paths are the worker's
    let post = request("POST", "/", &[("content-type", "application/json")]).await;
    assert_eq!(post.status, 405, "POST /: {}", post.text);
    let post = request("POST", "/nope", &[("content-type", "application/json")]).await;
    assert_eq!(
        (post.status, post.json()["error"]["code"].as_str()),
        (404, Some("not_found")),
        "POST /nope: {}",
        post.text
    );
    // socket routes: a plain GET is the worker's 426 (or its 401 before that)
    let connect = request("GET", "/connect", &[]).await;
    assert!(matches!(connect.status, 401 | 426), "GET /connect: {} {}", connect.status, connect.text);
    assert!(connect.json()["error"]["code"].is_string(), "GET /connect: {}", connect.text);
    let pusher = request("GET", "/app/switchboard-key?protocol=7", &[]).await;
    assert_eq!(pusher.status, 426, "GET /app/...: {}", pusher.text);
    let token = request("POST", "/dev/token", &[("content-type", "application/json")]).await;
    assert_eq!(token.status, 400, "POST /dev/token without a body: {}", token.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_browsers_chat() {
    let root = repo_root();
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run `bash scripts/setup` (it installs Debian's chromium)"
    );
    assert!(
        root.join("node_modules/playwright-core").exists(),
        "node_modules/playwright-core missing: run `bash scripts/setup`"
    );
    let shots = root.join("target/e2e/screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    // Kick, for a bridged message: the server's own Pusher endpoint behind tests/e2e/js/fake-kick.mjs
    // (as in bridge_kick.rs); the browser test links the bridge and publishes Kick's chat events.
    let fake = NodePeer::start("fake-kick.mjs", &[]);
    let kp = fake.port("kickPort");
    let pusher_url = format!("ws://127.0.0.1:{kp}/app/{PUSHER_KEY}?protocol=7&client=js&version=8.4.0&flash=false");
    let server = Server::start_with(&StartOptions::with_vars(&[
        ("PUSHER_APP_ID", PUSHER_APP_ID),
        ("PUSHER_APP_KEY", PUSHER_KEY),
        ("PUSHER_APP_SECRET", PUSHER_SECRET),
        ("KICK_PUSHER_URL", &pusher_url),
        ("KICK_API_URL", &format!("http://127.0.0.1:{kp}")),
    ]));
    let upstream =
        json!({"base": server.ws_base(), "appId": PUSHER_APP_ID, "key": PUSHER_KEY, "secret": PUSHER_SECRET});
    fake.control("POST", "/upstream", upstream).await;
    let base = server.base_url();
    let control = format!("http://127.0.0.1:{}", fake.port("controlPort"));
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("--test")
            .arg("--test-reporter=spec")
            .arg("tests/e2e/js/web.test.mjs")
            .current_dir(&root)
            .env("SWITCHBOARD_URL", base)
            .env("SCREENSHOT_DIR", &shots)
            .env("KICK_CONTROL_URL", control)
            .output()
            .expect("run node (Node 20 is required)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "browser tests failed ({}):\n{stdout}\n{stderr}\nserver log tail:\n{}",
        out.status,
        server.log_tail(40)
    );
}
