//! The commands the worker (and objects) send to the Durable Objects, as JSON over `stub.fetch`.
//! An object answers with the final HTTP status and JSON body the client should see, so the worker
//! forwards most answers untouched.

use crate::http::internal;
use serde_json::Value;
use switchboard_core::ApiError;
use worker::{Env, Method, Request, RequestInit, Response, Stub};

pub const CONVERSATIONS: &str = "CONVERSATIONS";
pub const MEMBERS: &str = "MEMBERS";
pub const LIVE: &str = "LIVE";
/// The header that names the conversation to a live channel object.
pub const CONVERSATION_HEADER: &str = "x-switchboard-conversation";
/// The header that carries the authenticated member id from the worker to an object.
pub const MEMBER_HEADER: &str = "x-switchboard-member";
/// On a socket upgrade: until when (epoch ms) the caller's credential is accepted; the object
/// records it in the socket's attachment and closes the socket then (4010).
pub const UNTIL_HEADER: &str = "x-switchboard-until";

/// The credential expiry an object reads from an upgrade the worker forwarded.
pub fn until_of(req: &Request) -> Option<i64> {
    req.headers().get(UNTIL_HEADER).ok().flatten().and_then(|v| v.parse().ok())
}

/// Commands to a conversation: defined by its state machine, sent as JSON.
pub use switchboard_conversation::commands::{Call as ConversationCall, Command as ConversationCommand};

/// Commands to a member's object: defined by its state machine, sent as JSON.
pub use switchboard_member::Command as MemberCommand;

use switchboard_worker_kit::call::{post, stub};

/// The member object's stub (kept by conversations so calls to one hub stay in order).
pub fn member_stub(env: &Env, member_id: &str) -> Result<Stub, ApiError> {
    stub(env, MEMBERS, member_id)
}

/// Sends an already-encoded command to a stub.
pub async fn post_to(stub: &Stub, body: String) -> Result<Response, ApiError> {
    post(stub, body).await
}

pub async fn conversation(
    env: &Env,
    conversation_id: &str,
    caller: &str,
    command: ConversationCommand,
) -> Result<Response, ApiError> {
    let body = serde_json::to_string(&ConversationCall { caller: caller.to_string(), command })
        .map_err(|e| internal("encode rpc", e))?;
    post(&stub(env, CONVERSATIONS, conversation_id)?, body).await
}

pub async fn member(env: &Env, member_id: &str, command: MemberCommand) -> Result<Response, ApiError> {
    let body = serde_json::to_string(&command).map_err(|e| internal("encode rpc", e))?;
    post(&stub(env, MEMBERS, member_id)?, body).await
}

/// Forwards a WebSocket upgrade to the conversation's object, naming the authenticated member.
pub async fn conversation_socket(
    env: &Env,
    conversation_id: &str,
    member_id: &str,
    since: Option<u64>,
    batch: bool,
    until_ms: i64,
) -> Result<Response, ApiError> {
    let headers = worker::Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| internal("set header", e));
    set("upgrade", "websocket")?;
    set(MEMBER_HEADER, member_id)?;
    set(UNTIL_HEADER, &until_ms.to_string())?;
    let mut url = match since {
        Some(s) => format!("https://object/ws?since={s}"),
        None => "https://object/ws?".to_string(),
    };
    if batch {
        url.push_str("&batch=1");
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let req = Request::new_with_init(&url, &init).map_err(|e| internal("build upgrade", e))?;
    stub(env, CONVERSATIONS, conversation_id)?.fetch_with_request(req).await.map_err(|e| internal("forward upgrade", e))
}

/// Forwards a live-channel WebSocket upgrade for `member_id`, whose credential is accepted until
/// `until_ms`.
pub async fn live_subscribe(
    env: &Env,
    conversation_id: &str,
    member_id: &str,
    until_ms: i64,
) -> Result<Response, ApiError> {
    live_call_with(env, conversation_id, "/live", Some(member_id), Some(until_ms)).await
}

/// Tells the live channel something (no upgrade), e.g. that its bot went offline.
pub async fn live_call(env: &Env, conversation_id: &str, path: &str) -> Result<Response, ApiError> {
    live_call_with(env, conversation_id, path, None, None).await
}

/// A command (no upgrade) to the live channel on behalf of `member_id`.
pub async fn live_call_as(env: &Env, conversation_id: &str, path: &str, member_id: &str) -> Result<Response, ApiError> {
    live_call_with(env, conversation_id, path, Some(member_id), None).await
}

async fn live_call_with(
    env: &Env,
    conversation_id: &str,
    path: &str,
    member_id: Option<&str>,
    upgrade_until_ms: Option<i64>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade_until_ms.is_some();
    let headers = worker::Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| internal("set header", e));
    set(CONVERSATION_HEADER, conversation_id)?;
    if let Some(m) = member_id {
        set(MEMBER_HEADER, m)?;
    }
    if let Some(until) = upgrade_until_ms {
        set("upgrade", "websocket")?;
        set(UNTIL_HEADER, &until.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(if upgrade { Method::Get } else { Method::Post }).with_headers(headers);
    let req =
        Request::new_with_init(&format!("https://object{path}"), &init).map_err(|e| internal("build live call", e))?;
    stub(env, LIVE, conversation_id)?.fetch_with_request(req).await.map_err(|e| internal("call live channel", e))
}

/// What a hub socket's URL asked for (`GET /connect?since=&session=&batch=`), checked.
pub struct Opening<'a> {
    pub since: Option<u64>,
    pub session: Option<&'a str>,
    /// Batched frames (`switchboard_core::batch`).
    pub batch: bool,
}

/// Forwards an event-hub upgrade (`GET /connect`) to the member's object.
pub async fn member_connect(
    env: &Env,
    member_id: &str,
    opening: Opening<'_>,
    protocol: Option<&str>,
    until_ms: i64,
) -> Result<Response, ApiError> {
    let Opening { since, session, batch } = opening;
    let headers = worker::Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| internal("set header", e));
    set("upgrade", "websocket")?;
    set(MEMBER_HEADER, member_id)?;
    set(UNTIL_HEADER, &until_ms.to_string())?;
    if let Some(p) = protocol {
        set("sec-websocket-protocol", p)?;
    }
    let mut url = worker::Url::parse("https://object/connect").map_err(|e| internal("connect url", e))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = since {
            q.append_pair("since", &s.to_string());
        }
        if let Some(s) = session {
            q.append_pair("session", s);
        }
        if batch {
            q.append_pair("batch", "1");
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let req = Request::new_with_init(url.as_str(), &init).map_err(|e| internal("build connect", e))?;
    stub(env, MEMBERS, member_id)?.fetch_with_request(req).await.map_err(|e| internal("forward connect", e))
}

/// Reads an object's answer as (status, JSON); 204 reads as `null`.
pub async fn read(mut resp: Response) -> Result<(u16, Value), ApiError> {
    let status = resp.status_code();
    let text = resp.text().await.map_err(|e| internal("read rpc answer", e))?;
    if text.is_empty() {
        return Ok((status, Value::Null));
    }
    let v = serde_json::from_str(&text).map_err(|e| internal("decode rpc answer", e))?;
    Ok((status, v))
}

/// Asks `member_id`'s object whether they may do `what` now (it counts it): `Ok` or 429 `rate_limited`.
pub async fn allow(env: &Env, member_id: &str, what: switchboard_member::limits::Limited) -> Result<(), ApiError> {
    let (status, body) = read(member(env, member_id, MemberCommand::Allow { what }).await?).await?;
    if status >= 300 {
        return Err(as_error(status, &body));
    }
    Ok(())
}

/// Turns an object's error answer back into an `ApiError`.
pub fn as_error(status: u16, body: &Value) -> ApiError {
    serde_json::from_value::<ApiError>(body["error"].clone()).unwrap_or_else(|_| {
        worker::console_error!("object answered {status} without an error body");
        ApiError::internal("internal error")
    })
}
