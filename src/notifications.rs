//! The chat worker's side of the notifications contract: calls over Workers RPC to the notifications
//! worker (service binding `NOTIFICATIONS`), and forwarding of its public HTTP routes.
//! A failure here is logged and never fails a send.

use crate::http::internal;
use crate::rpc;
use switchboard_core::ApiError;
use switchboard_member::InstanceEvent;
use switchboard_notify_contract::badge_bucket;
use switchboard_notify_contract::{
    BadgeCount, ClearBadgeBucket, SendPushForConversation, SendPushResult, CONTRACT_VERSION,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use worker::{Env, Request, Response};

pub const BINDING: &str = "NOTIFICATIONS";

#[wasm_bindgen]
extern "C" {
    /// The notifications worker's default entrypoint, seen through its RPC methods.
    #[wasm_bindgen(extends = js_sys::Object)]
    type NotificationsRpc;

    #[wasm_bindgen(method, catch, js_name = sendPushForConversation)]
    fn send_push_for_conversation(this: &NotificationsRpc, payload: String) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = clearBadgeBucketForUser)]
    fn clear_badge_bucket_for_user(this: &NotificationsRpc, payload: String) -> Result<js_sys::Promise, JsValue>;
}

fn rpc(env: &Env) -> Result<NotificationsRpc, String> {
    env.service(BINDING).map(|f| f.into_rpc::<NotificationsRpc>()).map_err(|e| format!("no {BINDING} binding: {e}"))
}

async fn call(promise: Result<js_sys::Promise, JsValue>) -> Result<String, String> {
    let promise = promise.map_err(|e| format!("rpc call failed: {e:?}"))?;
    let value = JsFuture::from(promise).await.map_err(|e| format!("rpc rejected: {e:?}"))?;
    value.as_string().ok_or_else(|| "rpc answered a non-string".to_string())
}

/// `sendPushForConversation`; errors are logged by the caller and never reach the sender.
pub async fn send_push(env: &Env, request: &SendPushForConversation) -> Result<SendPushResult, String> {
    let payload = serde_json::to_string(request).map_err(|e| e.to_string())?;
    let answer = call(rpc(env)?.send_push_for_conversation(payload)).await?;
    serde_json::from_str(&answer).map_err(|e| format!("bad sendPushForConversation answer {answer:?}: {e}"))
}

/// `badge.updated {badgeBucket, total}` on the sandbox's instance context, to a user's open apps.
pub async fn announce_badge(env: &Env, user_id: &str, sandbox_id: &str, conversation_id: &str, total: i64) {
    let cmd = InstanceEvent::BadgeUpdated { badge_bucket: badge_bucket(sandbox_id, conversation_id), total }
        .deliver(sandbox_id);
    if let Err(e) = rpc::member(env, user_id, cmd).await {
        worker::console_error!("badge.updated for {user_id}: {e}");
    }
}

/// Tells each recipient whose badge a push counted.
pub async fn announce_badges(env: &Env, sandbox_id: &str, conversation_id: &str, result: &SendPushResult) {
    let calls = result
        .outcomes
        .iter()
        .filter_map(|o| o.badge_count.map(|n| announce_badge(env, &o.user_id, sandbox_id, conversation_id, n)));
    futures::future::join_all(calls).await;
}

/// `clearBadgeBucketForUser`: answers the user's remaining total.
pub async fn clear_badge_bucket(env: &Env, user_id: &str, badge_bucket: &str) -> Result<i64, String> {
    let req = ClearBadgeBucket {
        version: CONTRACT_VERSION,
        user_id: user_id.to_string(),
        badge_bucket: badge_bucket.to_string(),
    };
    let payload = serde_json::to_string(&req).map_err(|e| e.to_string())?;
    let answer = call(rpc(env)?.clear_badge_bucket_for_user(payload)).await?;
    let count: BadgeCount =
        serde_json::from_str(&answer).map_err(|e| format!("bad clearBadgeBucketForUser answer {answer:?}: {e}"))?;
    Ok(count.badge_count)
}

/// Forwards a public notifications route (push tokens, preferences, badges) unchanged; the
/// notifications worker authenticates it itself.
pub async fn forward(env: &Env, req: Request) -> Result<Response, ApiError> {
    let fetcher = env.service(BINDING).map_err(|e| internal("notifications binding", e))?;
    fetcher.fetch_request(req).await.map_err(|e| internal("notifications worker", e))
}
