//! What the two notifications test binaries share (`notifications.rs`, through the chat worker;
//! `notifications_direct.rs`, the notifications worker alone): a server and its fake Expo started
//! once per binary, and the helpers both use.

#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;
use switchboard_e2e::expo::FakeExpo;
use switchboard_e2e::serde_json::{json, Value};
use switchboard_e2e::*;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Setup {
    pub fake: FakeExpo,
    pub server: Server,
}

pub fn start_once(cell: &'static OnceLock<Result<Setup, String>>, start: fn() -> Setup) -> &'static Setup {
    let started = cell.get_or_init(|| std::panic::catch_unwind(start).map_err(switchboard_e2e::panic_message));
    match started {
        Ok(s) => s,
        Err(msg) => panic!("the notifications test server failed to start: {msg}"),
    }
}

pub fn device(who: &Who) -> String {
    format!("ExponentPushToken[{}]", who.id)
}

pub async fn register(api: &Api, who: &Who, token: &str) {
    let r =
        api.post("/v1/push-tokens", who, &json!({ "token": token, "platform": "ios", "appVersion": "1.0.0" })).await;
    assert!(r.status == 201 || r.status == 200, "register {token}: {} {}", r.status, r.text);
}

pub fn bucket(sandbox: &str, conv: &str) -> String {
    format!("kiloclaw:{sandbox}:{conv}")
}

pub async fn badges(api: &Api, who: &Who) -> Value {
    api.get("/v1/badges", who).await.expect(200).clone()
}
