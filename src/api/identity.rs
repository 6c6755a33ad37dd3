//! Who is calling: the bearer token's member, a person or a sandbox's bot, a connect ticket redeemed
//! once, and the local-mode token and ticket routes.

use super::parse;
use crate::config;
use crate::http::{self, json, query, Answer};
use crate::platform;
use crate::rpc::{self, MemberCommand};
use serde_json::json;
use switchboard_auth::iso8601;
use switchboard_core::limits::MAX_TOKEN_LIFETIME_SECS;
use switchboard_core::requests::*;
use switchboard_core::{ApiError, ErrorCode, MemberId};
use worker::{Env, Request};

/// The authenticated member (human or bot) behind the bearer token.
pub(super) fn caller(req: &Request, env: &Env) -> Result<String, ApiError> {
    let auth = config::auth(env)?;
    let header = req.headers().get("authorization").ok().flatten();
    Ok(auth.verify_bearer(header.as_deref(), platform::now_secs())?.to_string())
}

/// A person; a bot's token is refused (bots use `/bot/v1/...`).
pub(super) fn human(req: &Request, env: &Env) -> Result<String, ApiError> {
    let me = caller(req, env)?;
    if me.starts_with("bot:") {
        return Err(ApiError::forbidden("this route is for people; bots use /bot/v1/sandboxes/:sandboxId/..."));
    }
    Ok(me)
}

/// The bot of `sandbox_id`; any other caller is refused.
pub(super) fn bot(req: &Request, env: &Env, sandbox_id: &str) -> Result<String, ApiError> {
    let auth = config::auth(env)?;
    let header = req.headers().get("authorization").ok().flatten();
    let member = auth.verify_bearer(header.as_deref(), platform::now_secs())?;
    match &member {
        MemberId::Bot(s) if s == sandbox_id => Ok(member.to_string()),
        MemberId::Bot(_) => Err(ApiError::forbidden("this token is for another sandbox")),
        MemberId::User(_) => Err(ApiError::forbidden("bot routes need the sandbox's bot token")),
    }
}

pub(super) async fn dev_token(req: &mut Request, env: &Env) -> Answer {
    if !config::local_mode(env) {
        return Err(ApiError::not_found("no such route"));
    }
    let body: DevTokenRequest = parse(req).await?;
    let member = match (body.user_id, body.sandbox_id) {
        (Some(u), None) => MemberId::user(&u)?,
        (None, Some(s)) => MemberId::bot(&s)?,
        _ => return Err(ApiError::invalid("give exactly one of userId, sandboxId")),
    };
    let issued = config::auth(env)?.issue_token(&member, "dev", platform::now_secs(), MAX_TOKEN_LIFETIME_SECS)?;
    json(200, &json!({"token": issued.token, "expiresAt": iso8601(issued.expires_at), "userId": member.to_string()}))
}

pub(super) async fn connect_ticket(req: &Request, env: &Env) -> Answer {
    let auth = config::auth(env)?;
    let header = req.headers().get("authorization").ok().flatten();
    let member = auth.verify_bearer(header.as_deref(), platform::now_secs())?;
    rpc::allow(env, &member.to_string(), switchboard_member::limits::Limited::ConnectTicket).await?;
    let issued = auth.issue_ticket(&member, &platform::nonce(), platform::now_secs())?;
    json(200, &json!({"ticket": issued.token, "expiresAt": iso8601(issued.expires_at)}))
}

/// Who opens a socket: 426 unless an upgrade; a `?ticket=` (redeemed once) or the bearer token.
pub(super) async fn socket_member(req: &Request, env: &Env) -> Result<String, ApiError> {
    if !http::is_websocket_upgrade(req) {
        return Err(ApiError::new(ErrorCode::UpgradeRequired, "this path takes a WebSocket upgrade"));
    }
    match query(req, "ticket")? {
        Some(ticket) => {
            let t = config::auth(env)?.verify_ticket(&ticket, platform::now_secs())?;
            let member = t.member.to_string();
            let redeem = MemberCommand::RedeemTicket { nonce: t.nonce, expires_at_ms: (t.expires_at as i64) * 1000 };
            let (status, body) = rpc::read(rpc::member(env, &member, redeem).await?).await?;
            if status >= 300 {
                return Err(rpc::as_error(status, &body));
            }
            Ok(member)
        }
        None => caller(req, env),
    }
}
