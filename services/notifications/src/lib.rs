//! The Switchboard notifications worker: Expo push with exactly-once badges.
//!
//! A thin shell over `switchboard-notify-core`. The chat worker calls it over Workers RPC through
//! its service binding (`sendPushForConversation`, `clearBadgeBucketForUser`; JSON strings in and
//! out, shapes in `switchboard-notify-contract`) and forwards the public routes for push tokens,
//! preferences and badges to its `fetch` handler, which authenticates them itself.
//!
//! - `api`: the HTTP routes (`/v1/push-tokens`, `/v1/notification-preferences`, `/v1/badges`, and
//!   the local-mode `/dev/...` helpers).
//! - `push`: one `sendPushForConversation`: D1 reads, per-user claims, Expo, settles.
//! - `user`: `UserNotifications`, one Durable Object per user: idempotency records, badge buckets
//!   and total, pending receipts, and the cleanup/receipt alarm.
//! - `expo`: the Expo client (chunks, gzip, retries, tickets, receipts).
//! - `store`: push tokens, preferences and sandbox labels in D1.
//! - `rpc`: the commands the worker sends a user's object.
//! - `http`, `platform`, `config`: responses, clock/randomness/sleep, vars and secrets.
//!
//! Invariants: no `unwrap`/`expect` on a path input can reach; no object handler holds a `RefCell`
//! borrow across an `.await`; an RPC method always answers a JSON string, an error included.

mod api;
mod config;
mod expo;
mod push;
mod rpc;
mod store;
mod user;

use switchboard_notify_core::plan::RpcFailure;
use switchboard_worker_kit::{http, platform};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{event, Context, Env, Request, Response, Result};

pub use user::UserNotifications;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match api::handle(req, &env).await {
        Ok(resp) => Ok(resp),
        Err(e) => http::error_response(&e),
    }
}

#[wasm_bindgen(module = "cloudflare:workers")]
extern "C" {
    /// The worker's bindings, importable from anywhere (RPC methods get no `env` argument).
    #[wasm_bindgen(thread_local_v2, js_name = env)]
    static WORKER_ENV: JsValue;
}

fn worker_env() -> Env {
    WORKER_ENV.with(|e| e.clone().unchecked_into::<Env>())
}

/// RPC `sendPushForConversation(payload: string): Promise<string>` (see `switchboard-notify-contract`).
#[wasm_bindgen(js_name = sendPushForConversation)]
pub async fn send_push_for_conversation(payload: JsValue) -> String {
    match payload.as_string() {
        Some(p) => push::send_push_for_conversation(&worker_env(), &p).await,
        None => RpcFailure::invalid("payload must be a JSON string").to_json(),
    }
}

/// RPC `clearBadgeBucketForUser(payload: string): Promise<string>`.
#[wasm_bindgen(js_name = clearBadgeBucketForUser)]
pub async fn clear_badge_bucket_for_user(payload: JsValue) -> String {
    match payload.as_string() {
        Some(p) => push::clear_badge_bucket_for_user(&worker_env(), &p).await,
        None => RpcFailure::invalid("payload must be a JSON string").to_json(),
    }
}
