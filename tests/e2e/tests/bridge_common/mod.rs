//! What the bridge tests share: a Node fake peer started from tests/e2e/js (killed when dropped), its JSON control
//! API, and reading a conversation's bridges.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchboard_e2e::*;

/// A Node script of tests/e2e/js that prints one JSON line of ports when it is ready.
pub struct NodePeer {
    child: Child,
    pub ports: Value,
    http: reqwest::Client,
}

impl NodePeer {
    pub fn start(script: &str, env: &[(&str, String)]) -> NodePeer {
        let mut cmd = Command::new("node");
        cmd.arg(format!("tests/e2e/js/{script}"))
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start node {script} (Node 20 is required): {e}"));
        let stdout = child.stdout.take().expect("node stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the peer's ports");
        let ports: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{script} said {line:?}: {e}"));
        NodePeer { child, ports, http: reqwest::Client::new() }
    }

    pub fn port(&self, name: &str) -> u16 {
        self.ports[name].as_u64().unwrap_or_else(|| panic!("no {name} in {}", self.ports)) as u16
    }

    /// A control call on the peer's `controlPort`.
    pub async fn control(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("http://127.0.0.1:{}{path}", self.port("controlPort"));
        let req = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url).json(&body),
        };
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    pub async fn state(&self) -> Value {
        self.control("GET", "/state", json!({})).await
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The conversation's bridges, as a member sees them.
pub async fn bridges(api: &Api, who: &Who, conv: &str) -> Vec<Value> {
    let r = api.get(&format!("/v1/conversations/{conv}/bridges"), who).await;
    r.expect(200)["bridges"].as_array().cloned().unwrap_or_default()
}

/// Waits until bridge `id` reports `state`; answers the bridge.
pub async fn wait_state(api: &Api, who: &Who, conv: &str, id: &str, state: &str, deadline: Duration) -> Value {
    poll_until(&format!("bridge {id} {state}"), deadline, Duration::from_millis(200), || async {
        bridges(api, who, conv).await.into_iter().find(|b| b["id"] == id && b["state"] == state)
    })
    .await
}

/// Waits for a message.created event matching `pred` on `ws`, skipping other events; answers the
/// message (the event's `message` with the `content` the event carries beside it).
pub async fn next_message(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "no message {what} in time");
        let f = ws.next_json(left).await;
        if f["type"] == "event" && f["event"] == "message.created" {
            let mut message = f["payload"]["message"].clone();
            message["content"] = f["payload"]["content"].clone();
            if pred(&message) {
                return message;
            }
        }
    }
}

/// The plain text of a message's first block.
pub fn text_of(m: &Value) -> &str {
    m["content"][0]["text"].as_str().unwrap_or_default()
}

/// The texts of the conversation's bridged messages, oldest first.
pub async fn bridged_texts(api: &Api, who: &Who, conv: &str) -> Vec<String> {
    let mut messages: Vec<Value> =
        api.messages(who, conv).await.into_iter().filter(|m| !m["source"].is_null() && m["deleted"] != true).collect();
    messages.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    messages.iter().map(|m| text_of(m).to_string()).collect()
}
