//! The HTTP routes. The chat worker forwards `/v1/push-tokens`, `/v1/notification-preferences`,
//! `/v1/badges` and `/v1/badges/mark-read` unchanged; they are authenticated here with the same
//! bearer JWTs (human users only). `/dev/...` exists only in local mode (`LOCAL_MODE=true`).

use crate::config;
use crate::http::{body_bytes, internal, json, json_body_bytes, no_content, query, Answer};
use crate::platform;
use crate::push;
use crate::rpc::{self, BadgesAnswer, ClearAnswer, UserCommand};
use crate::store;
use serde_json::json;
use switchboard_core::{validate, ApiError, ErrorCode, MemberId};
use switchboard_notify_core::badges::MarkRead;
use switchboard_notify_core::prefs::PreferencesUpdate;
use switchboard_notify_core::tokens::{DeleteToken, RegisterToken};
use worker::{Env, Method, Request, Response};

pub async fn handle(mut req: Request, env: &Env) -> Answer {
    let path = req.path();
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(&path).to_string();
    let method = req.method();
    match (path.as_str(), method) {
        ("/health", Method::Get) => json(200, &json!({"ok": true})),

        ("/v1/push-tokens", Method::Post) => {
            let me = user(&req, env)?;
            let body = RegisterToken::parse(&json_body_bytes(&mut req).await?)?;
            let (created, info) = store::register_token(&store::db(env)?, &me, &body, platform::now_ms()).await?;
            json(if created { 201 } else { 200 }, &info)
        }
        ("/v1/push-tokens", Method::Delete) => {
            let me = user(&req, env)?;
            let body = DeleteToken::parse(&json_body_bytes(&mut req).await?)?;
            store::delete_token(&store::db(env)?, &me, &body.token).await?;
            no_content()
        }

        ("/v1/notification-preferences", Method::Get) => {
            let me = user(&req, env)?;
            json(200, &store::preferences(&store::db(env)?, &me).await?)
        }
        ("/v1/notification-preferences", Method::Put) => {
            let me = user(&req, env)?;
            let update = PreferencesUpdate::parse(&json_body_bytes(&mut req).await?)?;
            json(200, &store::update_preferences(&store::db(env)?, &me, &update, platform::now_ms()).await?)
        }

        ("/v1/badges", Method::Get) => {
            let me = user(&req, env)?;
            json(200, &rpc::call::<BadgesAnswer>(env, &me, &UserCommand::Badges).await?)
        }
        ("/v1/badges/mark-read", Method::Post) => {
            let me = user(&req, env)?;
            let body = MarkRead::parse(&json_body_bytes(&mut req).await?)?;
            json(200, &rpc::call::<ClearAnswer>(env, &me, &UserCommand::Clear { bucket: body.badge_bucket }).await?)
        }

        // Local mode: the RPC methods over HTTP and a look inside a user's object, for tests.
        ("/dev/rpc/sendPushForConversation", Method::Post) if config::local_mode(env) => {
            let payload = text_body(&mut req).await?;
            json_text(push::send_push_for_conversation(env, &payload).await)
        }
        ("/dev/rpc/clearBadgeBucketForUser", Method::Post) if config::local_mode(env) => {
            let payload = text_body(&mut req).await?;
            json_text(push::clear_badge_bucket_for_user(env, &payload).await)
        }
        ("/dev/ledger", Method::Get) if config::local_mode(env) => {
            let user_id =
                query(&req, "userId")?.ok_or_else(|| ApiError::invalid("userId: query parameter is required"))?;
            validate::user_id(&user_id)?;
            let mut resp = rpc_raw(env, &user_id).await?;
            let text = resp.text().await.map_err(|e| internal("read ledger", e))?;
            json_text(text)
        }

        ("/v1/push-tokens", _)
        | ("/v1/notification-preferences", _)
        | ("/v1/badges", _)
        | ("/v1/badges/mark-read", _)
        | ("/health", _) => Err(ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this path")),
        _ => Err(ApiError::not_found("no such route")),
    }
}

/// The authenticated human user; a bot's token is refused (403).
fn user(req: &Request, env: &Env) -> Result<String, ApiError> {
    let header = req.headers().get("authorization").ok().flatten();
    match config::auth(env)?.verify_bearer(header.as_deref(), platform::now_secs())? {
        MemberId::User(u) => Ok(u),
        MemberId::Bot(_) => {
            Err(ApiError::forbidden("push tokens, notification preferences and badges are for human users"))
        }
    }
}

async fn text_body(req: &mut Request) -> Result<String, ApiError> {
    String::from_utf8(body_bytes(req).await?).map_err(|_| ApiError::invalid_json("body is not UTF-8"))
}

fn json_text(text: String) -> Answer {
    let mut resp = Response::ok(text).map_err(|e| internal("build response", e))?;
    resp.headers_mut().set("content-type", "application/json").map_err(|e| internal("set header", e))?;
    Ok(resp)
}

async fn rpc_raw(env: &Env, user_id: &str) -> Result<Response, ApiError> {
    let ns = env.durable_object(rpc::USERS).map_err(|e| internal("durable object binding", e))?;
    let stub = ns.get_by_name(user_id).map_err(|e| internal("durable object stub", e))?;
    let body = serde_json::to_string(&UserCommand::Inspect).map_err(|e| internal("encode", e))?;
    let mut init = worker::RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let req = Request::new_with_init("https://user/rpc", &init).map_err(|e| internal("build rpc", e))?;
    stub.fetch_with_request(req).await.map_err(|e| internal("call user object", e))
}
