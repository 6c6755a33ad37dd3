//! `ConversationObject`: the Durable Object shell around `switchboard_conversation`.
//!
//! One object per conversation. Every decision (membership, the send path, idempotency, edits,
//! read positions, presence, typing, resume, the alarm's duties) is made by the native state
//! machine [`Conversation`], which runs each command in one SQLite transaction and answers the
//! effects to carry out. This shell only translates: requests and socket frames into commands,
//! effects into runtime calls (`effects.rs`: broadcasts, closes, pushes, hub deliveries, the
//! alarm), and the alarm into its two halves around the list flush's calls (`alarm.rs`).
//!
//! Invariants: no `RefCell` borrow is held across an `.await` (the core's calls are synchronous);
//! a socket's only memory is its attachment `{member, connected_at, until}` (`until`: when the
//! credential that opened it expires; the alarm closes it then with 4010).

mod alarm;
mod effects;

use crate::config;
use crate::http::{error_response, internal};
use crate::platform;
use crate::rpc::{ConversationCall, MEMBER_HEADER};
use crate::sql::Sql;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use switchboard_conversation::hub_retry::HubRetry;
use switchboard_conversation::outbox::HubOutbox;
use switchboard_conversation::sockets::SocketReply;
use switchboard_conversation::{Config, Conversation, Ctx};
use switchboard_core::alarm::ExpiryWatch;
use switchboard_core::limits::close;
use switchboard_core::{replay, ApiError};
use switchboard_worker_kit::alarm::AlarmSlot;
use switchboard_worker_kit::batching::SocketBatcher;
use switchboard_worker_kit::socket;
use worker::{
    durable_object, wasm_bindgen, DurableObject, Env, Request, Response, State, Stub, WebSocket,
    WebSocketIncomingMessage,
};

/// Per-socket state, kept in the socket's attachment so it survives hibernation.
#[derive(Debug, Serialize, Deserialize)]
struct Attachment {
    member: String,
    connected_at: i64,
    /// Opted in to batched frames (`?batch=1`; `switchboard_core::batch`). Absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    batch: bool,
    /// When the bearer token that opened the socket stops being accepted (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<i64>,
}

#[durable_object]
pub struct ConversationObject {
    state: State,
    /// The JavaScript `DurableObjectState`, for the one-call broadcast and socket lookups.
    raw_state: wasm_bindgen::JsValue,
    env: Env,
    core: Conversation<Sql>,
    alarm: AlarmSlot,
    /// Events waiting to go to the hubs of members who watched them, in order; bounded
    /// (`switchboard_conversation::outbox`).
    outbox: RefCell<HubOutbox>,
    /// A pump is draining the outbox (at most one at a time keeps each hub's order).
    pumping: Cell<bool>,
    /// Hubs a delivery failed to reach, owed a `context.resync` (`switchboard_conversation::hub_retry`).
    hub_retry: RefCell<HubRetry>,
    /// One stub per watcher, reused so calls to one hub are delivered in order.
    stubs: RefCell<HashMap<String, Rc<Stub>>>,
    /// Frames for the sockets that opted in to batched frames.
    batcher: SocketBatcher,
    /// When the next socket credential expires: the alarm looks at every socket only then.
    expiry: Cell<ExpiryWatch>,
}

impl DurableObject for ConversationObject {
    fn new(state: State, env: Env) -> Self {
        let raw = state._inner();
        let raw_state: wasm_bindgen::JsValue = raw.clone().into();
        let state = State::from(raw);
        let sql = Sql::with_transactions(state.storage().sql(), raw_state.clone());
        let config = Config {
            idem_ttl_ms: config::idem_ttl_ms(&env),
            activity_flush_ms: config::activity_flush_ms(&env),
            list_reconcile_ms: config::list_reconcile_ms(&env),
            limits: config::limits(&env),
        };
        // The schema is created by `Create` (and brought up to date when first found), never
        // here: an object asked about a conversation that was never created writes nothing.
        let core = Conversation::new(sql, config);
        // `ping` is answered by the runtime without waking the object.
        socket::auto_response(&state, "ping", "pong");
        let batcher = SocketBatcher::new(raw_state.clone());
        ConversationObject {
            state,
            raw_state,
            env,
            core,
            alarm: AlarmSlot::new(),
            outbox: RefCell::new(HubOutbox::default()),
            pumping: Cell::new(false),
            hub_retry: RefCell::new(HubRetry::new()),
            stubs: RefCell::new(HashMap::new()),
            batcher,
            expiry: Cell::new(ExpiryWatch::default()),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = if req.path() == "/ws" {
            match self.accept_socket(&req) {
                Ok((resp, until)) => {
                    let mut expiry = self.expiry.get();
                    expiry.opened(until);
                    self.expiry.set(expiry);
                    if let Some(at) = until {
                        self.ensure_alarm(at).await;
                    }
                    Ok(resp)
                }
                Err(e) => Err(e),
            }
        } else {
            match req.text().await {
                Ok(body) => self.rpc(&body).await,
                Err(e) => Err(internal("read rpc", e)),
            }
        };
        match result {
            Ok(resp) => Ok(resp),
            Err(e) => error_response(&e),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        self.run_alarm().await;
        self.close_expired().await;
        self.pump().await;
        Response::ok("ok")
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> worker::Result<()> {
        let socket = platform::socket_connection(&ws);
        let socket = socket.as_ref().map(|(m, at)| (m.as_str(), *at));
        let (reply, effects) = match message {
            WebSocketIncomingMessage::String(text) => {
                let sockets = || platform::socket_members(&self.raw_state);
                let ctx = Ctx { now_ms: platform::now_ms(), random: platform::random_u128(), socket_members: &sockets };
                self.core.socket_text(socket, &text, &ctx)
            }
            WebSocketIncomingMessage::Binary(b) => {
                (self.core.socket_binary(socket, b.len(), platform::now_ms()), Default::default())
            }
        };
        let later = self.effect_now(effects);
        match reply {
            // On a batched socket the answer follows the events still waiting (an event before its ack).
            SocketReply::Send(frame) => self.batcher.reply(&ws, frame),
            SocketReply::Close(code, reason) => {
                self.batcher.flush();
                let _ = ws.close(Some(code), Some(reason));
            }
        }
        self.effect_later(later).await;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        self.socket_gone(&ws);
        switchboard_worker_kit::socket::complete_close(&ws);
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.socket_gone(&ws);
        switchboard_worker_kit::socket::close_after_error(&ws);
        Ok(())
    }
}

impl ConversationObject {
    /// A command from the worker: run it, carry out its effects, answer what the client sees.
    async fn rpc(&self, body: &str) -> Result<Response, ApiError> {
        let call = ConversationCall::decode(body).map_err(|e| internal("decode conversation rpc", e))?;
        let sockets = || platform::socket_members(&self.raw_state);
        let ctx = Ctx { now_ms: platform::now_ms(), random: platform::random_u128(), socket_members: &sockets };
        let (answer, effects) = self.core.handle(&call.caller, call.command, &ctx);
        let later = self.effect_now(effects);
        self.effect_later(later).await;
        let reply = answer?;
        match reply.body {
            Some(v) => crate::http::json(reply.status, &v),
            None => crate::http::no_content(),
        }
    }

    /// Accepts a member's socket as hibernatable and sends it what it missed (`?since=`), then
    /// `ready`, before anything else.
    /// Answers the upgrade and when the socket's credential expires (the alarm must fire then).
    fn accept_socket(&self, req: &Request) -> Result<(Response, Option<i64>), ApiError> {
        let member =
            req.headers().get(MEMBER_HEADER).ok().flatten().ok_or_else(|| ApiError::unauthorized("no member"))?;
        let url = req.url().map_err(|e| internal("socket url", e))?;
        let since_raw = url.query_pairs().find(|(k, _)| k == "since").map(|(_, v)| v.into_owned());
        let since = replay::parse_since(since_raw.as_deref())?;
        let batch_raw = url.query_pairs().find(|(k, _)| k == "batch").map(|(_, v)| v.into_owned());
        let batch = switchboard_core::batch::opt_in(batch_raw.as_deref())?;
        let sockets = || platform::socket_members(&self.raw_state);
        let ctx = Ctx { now_ms: platform::now_ms(), random: platform::random_u128(), socket_members: &sockets };
        let frames = self.core.accept(&member, since, &ctx)?;
        // Events committed before this socket opened but still waiting for a batch go out first:
        // the replay below already holds them.
        self.batcher.flush();

        // Untagged: the attachment names the member, and a tag would cost the runtime memory per
        // socket (~10 KiB measured with 5,000 idle sockets) for lookups that are rare here.
        let until = crate::rpc::until_of(req);
        let attachment = Attachment { member: member.clone(), connected_at: ctx.now_ms, batch, until };
        let accepted = socket::accept(&self.state, &attachment, &[])?;
        // A batched socket gets its opening (replay or `resync`, then `ready`) joined too: a resume
        // after hundreds of missed events is a few text frames, not hundreds.
        let frames = if batch { switchboard_core::batch::join(&frames) } else { frames };
        for frame in &frames {
            let _ = accepted.server.send_with_str(frame);
        }
        Ok((accepted.response, until))
    }

    /// Closes the sockets whose credential expired (4010) and sets the alarm for the next one.
    /// Every socket's attachment is read only when one may have expired (`ExpiryWatch`): in a big
    /// room the alarm runs every few seconds during a list flush, between the room's messages.
    async fn close_expired(&self) {
        let now = platform::now_ms();
        let expiry = self.expiry.get();
        if !expiry.due(now) {
            // An alarm a little early for the next expiry: it fires again then.
            if let Some(at) = expiry.next() {
                self.ensure_alarm(at).await;
            }
            return;
        }
        let (code, reason) = (close::TOKEN_EXPIRED, close::TOKEN_EXPIRED_REASON);
        let next = platform::close_expired_sockets(&self.raw_state, now, code, reason);
        let mut expiry = self.expiry.get();
        expiry.looked(next);
        self.expiry.set(expiry);
        if let Some(next) = next {
            self.ensure_alarm(next).await;
        }
    }

    fn socket_gone(&self, ws: &WebSocket) {
        if let Some((member, connected_at)) = platform::socket_connection(ws) {
            self.core.connection_closed(&member, connected_at);
        }
        if let Some(member) = platform::socket_member(ws) {
            if let Err(e) = self.core.socket_closed(&member, platform::now_ms()) {
                worker::console_error!("socket closed: {e:?}");
            }
        }
    }
}
