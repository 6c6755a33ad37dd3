//! What the hub test binaries share (`hub.rs`, `hub_instance.rs`, `hub_resume.rs`): the shared server, context
//! paths, opening a hub socket and reading its opening, subscribing, and reading events.

#![allow(dead_code)]

use serde_json::{json, Value};
use switchboard_e2e::*;

pub fn api() -> Api {
    Api::new(shared())
}

pub fn conv_ctx(sb: &str, conv: &str) -> String {
    format!("/kiloclaw/{sb}/{conv}")
}

pub fn instance_ctx(sb: &str) -> String {
    format!("/kiloclaw/{sb}")
}

pub fn presence_ctx(event_ctx: &str) -> String {
    format!("/presence{event_ctx}")
}

pub struct Hub {
    pub ws: Ws,
    pub hello: Value,
    pub ready: i64,
}

/// Reads `hello`, then (resume) events, then `ready`.
pub async fn read_hello_and_ready(mut ws: Ws) -> (Hub, Vec<Value>, Option<Value>) {
    let hello = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(hello["type"], json!("hello"), "{}: first hub frame: {hello}", ws.label);
    let (events, resync, ready) = ws.read_until_ready().await;
    (Hub { ws, hello, ready }, events, resync)
}

pub async fn hub(api: &Api, who: &Who) -> Hub {
    let (ws, _) = Ws::open_hub(api, WsAuth::Bearer(&who.token), None, None, false, &format!("{}-hub", who.id))
        .await
        .unwrap_or_else(|r| panic!("hub refused: {} {}", r.status, r.text));
    let (h, events, resync) = read_hello_and_ready(ws).await;
    assert!(events.is_empty() && resync.is_none(), "a fresh hub connection replays nothing: {events:?} {resync:?}");
    assert_eq!(h.hello["seq"], json!(h.ready), "hello.seq and ready.seq: {}", h.hello);
    h
}

/// Subscribes and returns the `context.subscribed` list.
pub async fn subscribe(ws: &mut Ws, contexts: &[String]) -> Vec<String> {
    ws.send_json(&json!({ "type": "context.subscribe", "contexts": contexts })).await;
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(f["type"], json!("context.subscribed"), "{}: {f}", ws.label);
    f["contexts"].as_array().unwrap_or_else(|| panic!("{f}")).iter().map(|c| c.as_str().unwrap().to_string()).collect()
}

/// Sends `ping` and returns every JSON frame that arrived before the `pong`.
pub async fn barrier(ws: &mut Ws) -> Vec<Value> {
    ws.send_text("ping").await;
    let mut seen = Vec::new();
    loop {
        match ws.next_frame(FRAME_TIMEOUT).await {
            Some(Frame::Text(t)) if t == "pong" => return seen,
            Some(Frame::Text(t)) => {
                seen.push(serde_json::from_str(&t).unwrap_or_else(|_| panic!("{}: non-JSON frame {t}", ws.label)))
            }
            other => panic!("{}: waiting for pong, got {other:?}", ws.label),
        }
    }
}

/// The next frame must be an event of `context` named `name`.
pub async fn expect_hub_event(ws: &mut Ws, context: &str, name: &str) -> Value {
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(
        (f["type"].as_str(), f["context"].as_str(), f["event"].as_str()),
        (Some("event"), Some(context), Some(name)),
        "{}: expected {name} on {context}, got {f}",
        ws.label
    );
    f
}

pub async fn room(api: &Api) -> (Who, Who, String, String) {
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let sb = uid("sb");
    let conv = api.create_conversation(&alice, &sb, Some("hub"), &[&bob.id]).await;
    (alice, bob, sb, conv)
}
