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

/// The operator (`Authorization: Bearer <OPERATOR_SECRET>`): 404 when no secret is set, 401 when wrong.
pub(super) fn operator(req: &Request, env: &Env) -> Result<(), ApiError> {
    let header = req.headers().get("authorization").ok().flatten();
    switchboard_auth::operator::verify(config::operator_secret(env).as_deref(), header.as_deref())
}

pub(super) async fn dev_token(req: &mut Request, env: &Env) -> Answer {
    if !config::local_request(env, req) {
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
    let credential = auth.verify_bearer_credential(header.as_deref(), platform::now_secs())?;
    let issued = auth.issue_ticket(&credential, &platform::nonce(), platform::now_secs())?;
    json(200, &json!({"ticket": issued.token, "expiresAt": iso8601(issued.expires_at)}))
}

/// Who opens a socket, and until when their credential is accepted: the socket is closed then.
pub(super) struct SocketCaller {
    pub member: String,
    /// Epoch ms: the bearer token's `exp` plus the clock skew (a ticket carries its token's). The
    /// socket is closed then (4010 `token expired`).
    pub accepted_until_ms: i64,
    /// A ticket's nonce and expiry (ms), redeemed by [`SocketCaller::redeem`] once the request it
    /// opens has been validated.
    ticket: Option<(String, i64)>,
}

impl SocketCaller {
    /// Whether a ticket (not a bearer token) authenticates this socket.
    pub fn by_ticket(&self) -> bool {
        self.ticket.is_some()
    }

    /// Spends the ticket (once; a used or expired one is 401). Called only after every other check
    /// of the request passed, so a refused request does not burn it. A bearer token: nothing to do.
    pub async fn redeem(&self, env: &Env) -> Result<(), ApiError> {
        let Some((nonce, expires_at_ms)) = &self.ticket else { return Ok(()) };
        let redeem = MemberCommand::RedeemTicket { nonce: nonce.clone(), expires_at_ms: *expires_at_ms };
        let (status, body) = rpc::read(rpc::member(env, &self.member, redeem).await?).await?;
        if status >= 300 {
            return Err(rpc::as_error(status, &body));
        }
        Ok(())
    }
}

/// Who opens a socket: 426 unless an upgrade; a `?ticket=` (checked, not yet redeemed: see
/// [`SocketCaller::redeem`]) or the bearer token.
pub(super) fn socket_caller(req: &Request, env: &Env) -> Result<SocketCaller, ApiError> {
    if !http::is_websocket_upgrade(req) {
        return Err(ApiError::new(ErrorCode::UpgradeRequired, "this path takes a WebSocket upgrade"));
    }
    let auth = config::auth(env)?;
    let secs_to_ms = |s: u64| i64::try_from(s).unwrap_or(i64::MAX / 1000) * 1000;
    match query(req, "ticket")? {
        Some(ticket) => {
            let t = auth.verify_ticket(&ticket, platform::now_secs())?;
            Ok(SocketCaller {
                member: t.member.to_string(),
                accepted_until_ms: secs_to_ms(t.token_accepted_until),
                ticket: Some((t.nonce, secs_to_ms(t.expires_at))),
            })
        }
        None => {
            let header = req.headers().get("authorization").ok().flatten();
            let c = auth.verify_bearer_credential(header.as_deref(), platform::now_secs())?;
            Ok(SocketCaller {
                member: c.member.to_string(),
                accepted_until_ms: secs_to_ms(c.accepted_until),
                ticket: None,
            })
        }
    }
}
