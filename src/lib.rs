//! The Switchboard chat worker: a thin shell that turns HTTP and WebSocket traffic into calls on
//! `switchboard-core`, and carries out what comes back with Durable Objects, D1 and sockets.
//!
//! - `api`: the request router (authenticate, validate, forward to the right object).
//! - `conversation`: `ConversationObject`, one per conversation: members, messages, reactions,
//!   idempotency records, the event log, and the conversation's hibernatable sockets.
//! - `member`: `MemberObject`, one per member: the member's conversation list, ticket redemption and
//!   (for bots) the bot's online status.
//! - `live`: `LiveChannelObject`, one per conversation: streamed NDJSON publish to live subscribers.
//! - `pusher`: `PusherAppObject`, one per Pusher app: the Pusher protocol 7 endpoint's sockets and
//!   channels, and the worker's Pusher routes (socket, signed HTTP API, auth endpoints).
//! - `bridge`: `BridgeObject`, one per linked Kick or Kosmi room: the outbound socket, the room's
//!   events into the conversation, members' messages out.
//! - `rpc`: the commands the worker sends those objects.
//! - `config`: vars and secrets.
//! - `http`, `sql`, `platform` come from `switchboard-worker-kit` (responses; the objects' SQLite
//!   and the sans-IO objects' storage port; clock, randomness and one-call socket sends).

mod api;
mod bridge;
mod config;
mod conversation;
mod live;
mod member;
mod notifications;
mod profiles;
mod pusher;
mod rpc;

use switchboard_core::cors::{self, Direct, Verdict};
use switchboard_core::routes::Route;
use switchboard_worker_kit::{http, platform, sql};
use worker::{event, Context, Env, Headers, Method, Request, Response, Result};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// CORS around the router (`switchboard_core::cors` decides): a preflight (`OPTIONS` on an API route)
/// is answered before routing; a socket upgrade from a browser origin that is not allowed is refused
/// (403 `origin_not_allowed`); every other answer, errors included, gets the origin's headers.
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let origin = req.headers().get("origin").ok().flatten();
    let verdict = config::cors_policy(&env).verdict(origin.as_deref(), &own_origin(&req));
    let route = Route::parse(&req.path());
    if route.is_some() && req.method() == Method::Options {
        return direct(verdict.preflight());
    }
    if verdict.refuses_socket() && route.as_ref().is_some_and(is_socket) {
        return direct(cors::refusal());
    }
    let resp = match api::handle(req, env, ctx).await {
        Ok(resp) => resp,
        Err(e) => http::error_response(&e)?,
    };
    with_cors(resp, &verdict)
}

/// The service's own origin: the request URL's scheme, host and port.
fn own_origin(req: &Request) -> String {
    req.url().map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

/// The routes that take a WebSocket upgrade.
fn is_socket(route: &Route) -> bool {
    matches!(route, Route::ConversationSocket(_) | Route::Connect | Route::ConversationLive(_) | Route::PusherSocket(_))
}

fn direct(d: Direct) -> Result<Response> {
    let resp = match d.body {
        Some(body) => Response::ok(body)?,
        None => Response::empty()?,
    };
    let headers = Headers::new();
    for (name, value) in &d.headers {
        headers.set(name, value)?;
    }
    Ok(resp.with_status(d.status).with_headers(headers))
}

/// The answer with the origin's headers added (into a copy of its headers: a forwarded answer's are
/// immutable). A socket's 101 is left alone (browsers apply no CORS to sockets).
fn with_cors(resp: Response, verdict: &Verdict) -> Result<Response> {
    if resp.status_code() == 101 {
        return Ok(resp);
    }
    let headers = Headers::new();
    for (name, value) in resp.headers().entries() {
        headers.append(&name, &value)?;
    }
    for (name, value) in verdict.answer_headers() {
        if name == "vary" {
            let vary = headers.get("vary")?.unwrap_or_default();
            if !vary.split(',').any(|v| v.trim().eq_ignore_ascii_case(&value) || v.trim() == "*") {
                headers.append(name, &value)?;
            }
        } else {
            headers.set(name, &value)?;
        }
    }
    Ok(resp.with_headers(headers))
}
