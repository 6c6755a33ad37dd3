//! The worker's Pusher routes: the socket upgrade (`/app/{key}`), the signed HTTP API
//! (`/apps/{id}/...`, verified here, answered by the app's object), and the auth endpoints our users'
//! pusher-js calls (`/pusher/auth`, `/pusher/user-auth`).

use super::commands::{Info, Publish, PusherCommand};
use super::PUSHER;
use crate::config;
use crate::http::{self, body_bytes, internal, json, Answer};
use crate::platform;
use crate::rpc::{self, ConversationCommand};
use serde_json::{json, Value};
use switchboard_core::{ApiError, ErrorCode};
use switchboard_pusher::channel::{self, ChannelKind, PRESENCE_CONVERSATION_PREFIX, PRIVATE_CONVERSATION_PREFIX};
use switchboard_pusher::http_api::{self, HttpError, Query, Route};
use switchboard_pusher::limits::{close, MAX_API_BODY_BYTES};
use switchboard_pusher::{auth, App, SocketId};
use switchboard_worker_kit::call::{post, stub};
use worker::{Env, Method, Request, RequestInit};

/// The only protocol version we speak.
const PROTOCOL_VERSION: &str = "7";

/// `GET /app/{key}?protocol=7`: hands the upgrade to the app's object. An unknown key is closed
/// with 4001 and another protocol with 4007, right after accepting (what pusher-js understands).
pub async fn socket(req: &Request, env: &Env, key: &str) -> Answer {
    if !http::is_websocket_upgrade(req) {
        return Err(ApiError::new(ErrorCode::UpgradeRequired, "this path takes a WebSocket upgrade"));
    }
    let app = config::pusher_app(env)?;
    if key != app.key {
        return refuse_socket(close::APP_UNKNOWN, &format!("unknown app key {key}"));
    }
    if http::query(req, "protocol")?.as_deref() != Some(PROTOCOL_VERSION) {
        return refuse_socket(close::UNSUPPORTED_PROTOCOL, "unsupported protocol version: this server speaks 7");
    }
    let headers = worker::Headers::new();
    headers.set("upgrade", "websocket").map_err(|e| internal("set header", e))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let forwarded = Request::new_with_init("https://object/ws", &init).map_err(|e| internal("build upgrade", e))?;
    stub(env, PUSHER, &app.id)?.fetch_with_request(forwarded).await.map_err(|e| internal("forward pusher upgrade", e))
}

/// Accepts the socket only to close it with `code`.
fn refuse_socket(code: u16, reason: &str) -> Answer {
    switchboard_worker_kit::socket::refuse(code, reason)
}

/// `/apps/{id}/...`: Pusher's signed HTTP API. Errors answer `{"error": "<message>"}` with Pusher's
/// statuses (401 signature and clock, 413 sizes, 400 input, 404 route).
pub async fn http_api(req: &mut Request, env: &Env) -> Answer {
    let app = config::pusher_app(env)?;
    match api_command(req, &app).await {
        Ok(command) => {
            let body = serde_json::to_string(&command).map_err(|e| internal("encode pusher rpc", e))?;
            let mut resp = post(&stub(env, PUSHER, &app.id)?, body).await?;
            let status = resp.status_code();
            let text = resp.text().await.map_err(|e| internal("read pusher answer", e))?;
            if !(200..300).contains(&status) {
                return Err(switchboard_worker_kit::call::error_of(status, &text));
            }
            http::json_text(200, text)
        }
        Err(e) => http::json_text(e.status(), e.to_body()),
    }
}

async fn api_command(req: &mut Request, app: &App) -> Result<PusherCommand, HttpError> {
    let url = req.url().map_err(|_| HttpError::BadRequest("unreadable URL".into()))?;
    let path = url.path().to_string();
    let query = url.query().unwrap_or("").to_string();
    let method = req.method().to_string();
    let route = http_api::route(app, &method, &path)?;
    // Read as a stream and refused past the bound before any signature check: a chunked body
    // without a `content-length` is never buffered whole.
    let body = switchboard_worker_kit::http::body_bytes_within(req, MAX_API_BODY_BYTES).await.map_err(|e| {
        if e.status() == 413 {
            HttpError::TooLarge(format!("the body is larger than {MAX_API_BODY_BYTES} bytes"))
        } else {
            HttpError::BadRequest("unreadable body".into())
        }
    })?;
    let q = http_api::verify(app, &method, &path, &query, &body, platform::now_secs())?;
    Ok(match route {
        Route::Events => PusherCommand::Trigger { event: Publish::from(http_api::parse_trigger(&body)?) },
        Route::BatchEvents => {
            PusherCommand::Batch { events: http_api::parse_batch(&body)?.into_iter().map(Publish::from).collect() }
        }
        Route::Channels => {
            let cq = http_api::ChannelsQuery::from_query(&q)?;
            PusherCommand::Channels { prefix: cq.filter_by_prefix, info: cq.info.into() }
        }
        Route::Channel(name) => {
            let info: Info = http_api::channel_info_fields(&name, &q)?.into();
            PusherCommand::Channel { name, info }
        }
        Route::ChannelUsers(name) => PusherCommand::Users { name },
    })
}

/// `socket_id` and the other fields of an auth request: `application/x-www-form-urlencoded` as
/// pusher-js sends it, or a JSON object.
fn auth_fields(bytes: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ApiError::invalid("the body is not UTF-8"))?;
    if text.trim_start().starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|e| ApiError::invalid_json(format!("invalid JSON: {e}")))?;
        let o = v.as_object().ok_or_else(|| ApiError::invalid_json("the body must be a JSON object"))?;
        return Ok(o.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect());
    }
    let q = Query::parse(text, true).map_err(|e| ApiError::invalid(e.message().to_string()))?;
    Ok(q.pairs().to_vec())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Result<&'a str, ApiError> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::invalid(format!("{name} is required")))
}

fn socket_id(fields: &[(String, String)]) -> Result<SocketId, ApiError> {
    SocketId::parse(field(fields, "socket_id")?).map_err(|e| ApiError::invalid(format!("socket_id: {e}")))
}

/// `POST /pusher/auth` for `me`: signs a private or presence channel subscription. Our
/// conversation channels are signed only for the conversation's members (403 otherwise, 404 for an
/// unknown conversation); any other private or presence channel for any of our users. Presence
/// `channel_data` is ours: `user_id` is the member id. A private channel's auth names the member
/// (`auth::sign_private_for`): the registry then knows whose subscription it is, so a member's
/// departure closes only that member's sockets.
pub async fn channel_auth(req: &mut Request, env: &Env, me: &str) -> Answer {
    let app = config::pusher_app(env)?;
    let fields = auth_fields(&body_bytes(req).await?)?;
    let socket = socket_id(&fields)?;
    let name = field(&fields, "channel_name")?;
    let kind = channel::validate(name).map_err(|e| ApiError::invalid(format!("channel_name {e}")))?;
    match kind {
        ChannelKind::Public => return Err(ApiError::invalid("public channels need no authorization")),
        ChannelKind::PrivateEncrypted => {
            return Err(ApiError::invalid("end-to-end encrypted channels are not supported"))
        }
        ChannelKind::Private | ChannelKind::Presence => {}
    }
    let conversation_channel =
        name.starts_with(PRIVATE_CONVERSATION_PREFIX) || name.starts_with(PRESENCE_CONVERSATION_PREFIX);
    if conversation_channel {
        let id = channel::conversation_id(name)
            .ok_or_else(|| ApiError::invalid("channel_name: the conversation id must be a ULID"))?;
        let (status, body) = rpc::read(rpc::conversation(env, id, me, ConversationCommand::Get).await?).await?;
        if status >= 300 {
            return Err(rpc::as_error(status, &body));
        }
    }
    if kind == ChannelKind::Presence {
        let channel_data = json!({"user_id": me}).to_string();
        let auth = auth::sign_channel(&app, socket.as_str(), name, Some(&channel_data));
        json(200, &json!({"auth": auth, "channel_data": channel_data}))
    } else {
        json(200, &json!({"auth": auth::sign_private_for(&app, socket.as_str(), name, me)}))
    }
}

/// `POST /pusher/user-auth` for `me`: signs `pusher:signin` with `user_data` `{"id": me}`.
pub async fn user_auth(req: &mut Request, env: &Env, me: &str) -> Answer {
    let app = config::pusher_app(env)?;
    let fields = auth_fields(&body_bytes(req).await?)?;
    let socket = socket_id(&fields)?;
    let user_data = json!({"id": me}).to_string();
    let auth = auth::sign_user(&app, socket.as_str(), &user_data);
    json(200, &json!({"auth": auth, "user_data": user_data}))
}

/// `POST /dev/pusher/reconnect` (local mode only): every Pusher socket is closed with 4200, as a
/// deploy would; answers `{closed}`.
/// A member left or was removed from `conversation_id`: the member's sockets on its Pusher channels
/// (and any whose subscription names nobody) reconnect and authorize again (the departed member is
/// refused); other members' sockets stay. Failures are logged: the membership has
/// already ended and the channel auth refuses the member from now on.
pub async fn membership_ended(env: &Env, conversation_id: &str, member: &str) {
    let Ok(app) = config::pusher_app(env) else { return };
    let channels = vec![
        format!("{}{conversation_id}", switchboard_pusher::channel::PRIVATE_CONVERSATION_PREFIX),
        format!("{}{conversation_id}", switchboard_pusher::channel::PRESENCE_CONVERSATION_PREFIX),
    ];
    let sent = async {
        let body = serde_json::to_string(&PusherCommand::Reauthorize { channels, member: Some(member.to_string()) })
            .map_err(|e| internal("encode", e))?;
        post(&stub(env, PUSHER, &app.id)?, body).await
    };
    if let Err(e) = sent.await {
        worker::console_error!("pusher: channels of {conversation_id} not reauthorized after {member} left: {e}");
    }
}

pub async fn reconnect(env: &Env) -> Answer {
    let app = config::pusher_app(env)?;
    let body = serde_json::to_string(&PusherCommand::Reconnect).map_err(|e| internal("encode pusher rpc", e))?;
    let mut resp = post(&stub(env, PUSHER, &app.id)?, body).await?;
    let text = resp.text().await.map_err(|e| internal("read pusher answer", e))?;
    http::json_text(resp.status_code(), text)
}
