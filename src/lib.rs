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

use switchboard_worker_kit::{http, platform, sql};
use worker::{event, Context, Env, Request, Response, Result};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    match api::handle(req, env, ctx).await {
        Ok(resp) => Ok(resp),
        Err(e) => http::error_response(&e),
    }
}
