//! The HTTP client of the tests: [`Api`] speaks the chat worker's HTTP API, [`Resp`] is one answer.

use super::*;

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
