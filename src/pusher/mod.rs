//! The Pusher Channels protocol 7 endpoint: `PusherAppObject` and the worker's Pusher routes.
//!
//! One object per app (named by the app id) owns every Pusher socket of the app: a Pusher socket
//! multiplexes many channels, so channel state must sit where the sockets are. Every decision is
//! `switchboard_pusher::Registry`'s; this shell accepts sockets as hibernatable (tag = socket id,
//! attachment = the socket's `SocketRecord`), rebuilds the registry from the attachments when it
//! wakes, and carries out the registry's effects (`effects.rs`). An event to N subscribers is one
//! encoded frame handed to JavaScript once (`platform::broadcast` when every socket gets it, else
//! `platform::send_to_tagged`).
//!
//! Conversations appear as `private-conversation-{id}` and `presence-conversation-{id}`: when the
//! first socket subscribes to either, this object *watches* the conversation as a relay
//! (`switchboard_conversation::presence::RELAY_WATCHER_PREFIX`), and the conversation sends it each
//! event like it sends a member's hub; the worker's `/pusher/auth` signed the subscription only for
//! members. When both channels are empty it stops watching.
//!
//! Files: `routes.rs` (the worker's side: socket upgrade, signed HTTP API, auth endpoints),
//! `commands.rs` (worker → object), `effects.rs` (carrying out effects, relaying, webhooks).

pub use switchboard_pusher::commands;
mod effects;
pub mod routes;

use crate::config;
use crate::http::{error_response, internal};
use crate::platform;
use crate::sql::Sql;
use commands::PusherCommand;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use switchboard_conversation::presence::RELAY_WATCHER_PREFIX;
use switchboard_core::ApiError;
use switchboard_pusher::limits::close;
use switchboard_pusher::relay_watch::UnsureWatches;
use switchboard_pusher::webhook_store::DurableWebhooks;
use switchboard_pusher::{App, Effect, Registry, ServerFrame, SocketId, SocketRecord};
use switchboard_worker_kit::alarm::AlarmSlot;
use worker::{
    durable_object, wasm_bindgen, DurableObject, Env, Request, Response, ResponseBuilder, State, Stub, WebSocket,
    WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair,
};

/// The Durable Object binding.
pub const PUSHER: &str = "PUSHER";
/// This endpoint's relay watchers are `bot:relay:pusher:{appId}`.
const RELAY_APP_PREFIX: &str = "pusher:";
/// The exact text pusher-js sends as a ping: answered by the runtime without waking the object.
pub const PING_TEXT: &str = r#"{"event":"pusher:ping","data":{}}"#;
/// Close code for a binary frame (RFC 6455 "unsupported data").
const UNSUPPORTED_DATA: u16 = 1003;

/// The watcher id of the app's object, as conversations store it.
pub fn relay_watcher(app_id: &str) -> String {
    format!("{RELAY_WATCHER_PREFIX}{RELAY_APP_PREFIX}{app_id}")
}

/// The stub a conversation posts its events to when `watcher` is this endpoint's relay; `None` for
/// any other watcher (a member's hub).
pub fn relay_stub(env: &Env, watcher: &str) -> Option<Result<Stub, ApiError>> {
    let app_id = watcher.strip_prefix(RELAY_WATCHER_PREFIX)?.strip_prefix(RELAY_APP_PREFIX)?;
    Some(switchboard_worker_kit::call::stub(env, PUSHER, app_id))
}

#[durable_object]
pub struct PusherAppObject {
    state: State,
    /// The JavaScript `DurableObjectState`, for one-call sends.
    raw_state: wasm_bindgen::JsValue,
    env: Env,
    /// `None` when the app has no secret configured: every request is refused.
    app: Option<App>,
    /// Rebuilt from the sockets' attachments on first use after a wake.
    registry: RefCell<Option<Registry>>,
    webhook_url: Option<String>,
    /// The webhook queue, loaded from `sql` on first use (`None` until then).
    webhooks: RefCell<Option<DurableWebhooks>>,
    /// The object's SQLite: the webhook queue's tables (`switchboard_pusher::webhook_store`).
    sql: Sql,
    alarm: AlarmSlot,
    /// Conversations this object watches as a relay (as far as it knows).
    watching: RefCell<HashMap<String, bool>>,
    /// Conversations whose watch is being brought in line (one loop per conversation).
    syncing: RefCell<HashSet<String>>,
    /// Conversations whose watch is unsure after a failed call, loaded from `sql` on first use
    /// (`switchboard_pusher::relay_watch`).
    unsure: RefCell<Option<UnsureWatches>>,
    /// Every socket's frame rate (`LIMIT_SOCKET_FRAMES`) and flood close (`LIMIT_FLOOD_STRIKES`).
    limits: switchboard_core::limits::Limits,
}

impl DurableObject for PusherAppObject {
    fn new(state: State, env: Env) -> Self {
        let raw = state._inner();
        let raw_state: wasm_bindgen::JsValue = raw.clone().into();
        let state = State::from(raw);
        match WebSocketRequestResponsePair::new(PING_TEXT, &ServerFrame::Pong.encode()) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => worker::console_error!("pusher auto-response: {e:?}"),
        }
        let app = config::pusher_app(&env).ok();
        let webhook_url = config::pusher_webhook_url(&env);
        let limits = config::limits(&env);
        let sql = Sql::with_transactions(state.storage().sql(), raw_state.clone());
        PusherAppObject {
            state,
            raw_state,
            env,
            app,
            registry: RefCell::new(None),
            webhook_url,
            webhooks: RefCell::new(None),
            sql,
            alarm: AlarmSlot::new(),
            watching: RefCell::new(HashMap::new()),
            syncing: RefCell::new(HashSet::new()),
            unsure: RefCell::new(None),
            limits,
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = if req.path() == "/ws" {
            self.accept_socket().await
        } else {
            match req.text().await {
                Ok(body) => self.rpc(&body).await,
                Err(e) => Err(internal("read pusher rpc", e)),
            }
        };
        match result {
            Ok(resp) => Ok(resp),
            Err(e) => error_response(&e),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        self.send_webhooks().await;
        self.retry_watches().await;
        Response::ok("ok")
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> worker::Result<()> {
        let Some(socket) = self.socket_id(&ws) else {
            let _ = ws.close(Some(close::RECONNECT), Some("unknown socket: reconnect"));
            return Ok(());
        };
        let effects = match message {
            WebSocketIncomingMessage::String(text) => {
                let now = platform::now_ms().max(0) as u64;
                self.with_registry(|r| r.handle_frame(&socket, &text, now))
            }
            WebSocketIncomingMessage::Binary(_) => {
                let _ = ws.close(Some(UNSUPPORTED_DATA), Some("binary frames are not supported"));
                self.with_registry(|r| r.disconnect(&socket))
            }
        };
        self.carry_out(effects.unwrap_or_default(), Some((&socket, &ws))).await;
        Ok(())
    }

    async fn websocket_close(&self, ws: WebSocket, _code: usize, _reason: String, _clean: bool) -> worker::Result<()> {
        self.socket_gone(&ws).await;
        switchboard_worker_kit::socket::complete_close(&ws);
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.socket_gone(&ws).await;
        switchboard_worker_kit::socket::close_after_error(&ws);
        Ok(())
    }
}

impl PusherAppObject {
    fn app(&self) -> Result<&App, ApiError> {
        self.app.as_ref().ok_or_else(|| ApiError::internal("the Pusher endpoint is not configured (PUSHER_APP_SECRET)"))
    }

    /// Runs `f` on the registry, rebuilding it from the sockets' attachments first when this object
    /// just woke. `None` when the app is not configured.
    fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> Option<R> {
        let app = self.app.as_ref()?;
        let mut slot = self.registry.borrow_mut();
        if slot.is_none() {
            let records: Vec<SocketRecord> = self
                .state
                .get_websockets()
                .iter()
                .filter_map(|ws| ws.deserialize_attachment::<SocketRecord>().ok().flatten())
                .collect();
            let registry = Registry::from_records(app.clone(), records)
                .with_frame_limit(self.limits.socket_frames, self.limits.flood_strikes);
            // What was watched before hibernation still is: the conversations keep their watchers.
            // Not the unsure ones (a call failed): those are told again.
            let unsure: HashSet<String> =
                self.with_unsure(|u, _| u.due(i64::MAX).into_iter().collect()).unwrap_or_default();
            let mut watching = self.watching.borrow_mut();
            for prefix in [
                switchboard_pusher::channel::PRIVATE_CONVERSATION_PREFIX,
                switchboard_pusher::channel::PRESENCE_CONVERSATION_PREFIX,
            ] {
                for (name, _) in registry.channels(Some(prefix)) {
                    if let Some(id) = switchboard_pusher::channel::conversation_id(name) {
                        if !unsure.contains(id) {
                            watching.insert(id.to_string(), true);
                        }
                    }
                }
            }
            *slot = Some(registry);
        }
        slot.as_mut().map(f)
    }

    fn socket_id(&self, ws: &WebSocket) -> Option<SocketId> {
        self.state.get_tags(ws).into_iter().find_map(|t| SocketId::parse(&t).ok())
    }

    /// Accepts a socket as hibernatable, tagged with a fresh random socket id, and answers
    /// `pusher:connection_established` (or 4100 when the app is full).
    async fn accept_socket(&self) -> Result<Response, ApiError> {
        self.app()?;
        let pair = WebSocketPair::new().map_err(|e| internal("socket pair", e))?;
        let server = pair.server;
        let bits = platform::random_u128();
        let socket = SocketId::from_random((bits >> 64) as u64, bits as u64);
        // Rebuild before accepting, so the new socket (no record yet) is not read back.
        let effects = self.with_registry(|_| ()).and_then(|_| {
            self.state.accept_websocket_with_tags(&server, &[socket.as_str()]);
            self.with_registry(|r| r.connect(socket.clone()))
        });
        self.carry_out(effects.unwrap_or_default(), Some((&socket, &server))).await;
        Ok(ResponseBuilder::new().with_status(101).with_websocket(pair.client).empty())
    }

    async fn socket_gone(&self, ws: &WebSocket) {
        if let Some(socket) = self.socket_id(ws) {
            let effects = self.with_registry(|r| r.disconnect(&socket)).unwrap_or_default();
            self.carry_out(effects, None).await;
        }
    }

    async fn rpc(&self, body: &str) -> Result<Response, ApiError> {
        let command = PusherCommand::decode(body).map_err(|e| internal("decode pusher rpc", e))?;
        self.app()?;
        let answer = match command {
            PusherCommand::Trigger { event } => self.trigger(std::slice::from_ref(&event), false),
            PusherCommand::Batch { events } => self.trigger(&events, true),
            PusherCommand::Channels { prefix, info } => self
                .with_registry(|r| {
                    switchboard_pusher::http_api::channels_body(r.channels(prefix.as_deref()), info.into())
                })
                .unwrap_or_default(),
            PusherCommand::Channel { name, info } => self
                .with_registry(|r| switchboard_pusher::http_api::channel_body(&r.channel_info(&name), info.into()))
                .unwrap_or_default(),
            PusherCommand::Users { name } => self
                .with_registry(|r| switchboard_pusher::http_api::users_body(r.presence_users(&name)))
                .unwrap_or_default(),
            PusherCommand::Deliver { context, event, payload, .. } => {
                self.relay(&context, &event, &payload).await;
                "{}".to_string()
            }
            PusherCommand::DeliverAll { events } => {
                for d in events.iter().take(switchboard_core::hub::MAX_DELIVERIES_PER_CALL) {
                    self.relay(&d.context, &d.event, &d.payload).await;
                }
                "{}".to_string()
            }
            PusherCommand::Reconnect => {
                let closed = self.close_all(close::RECONNECT, "server restarting: reconnect now").await;
                format!(r#"{{"closed":{closed}}}"#)
            }
            PusherCommand::Reauthorize { channels, member } => {
                let ids: std::collections::BTreeSet<String> = self
                    .with_registry(|r| match &member {
                        Some(m) => {
                            r.subscribers_for(&channels, m).into_iter().map(|s| s.as_str().to_string()).collect()
                        }
                        None => {
                            channels.iter().flat_map(|c| r.subscribers(c)).map(|s| s.as_str().to_string()).collect()
                        }
                    })
                    .unwrap_or_default();
                let sockets: Vec<WebSocket> =
                    ids.iter().flat_map(|id| self.state.get_websockets_with_tag(id)).collect();
                let closed = self
                    .close_sockets(sockets, close::RECONNECT, "membership changed: reconnect and authorize again")
                    .await;
                format!(r#"{{"closed":{closed}}}"#)
            }
        };
        crate::http::json_text(200, answer)
    }

    /// Publishes HTTP API events; answers the `/events` or `/batch_events` body.
    fn trigger(&self, events: &[commands::Publish], batch: bool) -> String {
        let mut deliveries = Vec::new();
        let body = self.with_registry(|r| {
            let mut items = Vec::new();
            for e in events {
                let except = e.socket_id.as_deref().and_then(|s| SocketId::parse(s).ok());
                for channel in &e.channels {
                    if let Some(d) = r.publish(channel, &e.name, &e.data, except.as_ref()) {
                        let all = d.sockets.len() == r.socket_count();
                        deliveries.push((d, all));
                    }
                }
                let first = e.channels.first().map(|c| r.channel_info(c)).unwrap_or_default();
                items.push((first, e.info.into()));
            }
            if batch {
                switchboard_pusher::http_api::batch_body(&items)
            } else {
                let info = events.first().map(|e| e.info.into()).unwrap_or_default();
                let channels = events.first().map(|e| e.channels.as_slice()).unwrap_or_default();
                switchboard_pusher::http_api::trigger_body(
                    channels.iter().map(|c| (c.as_str(), r.channel_info(c))),
                    info,
                )
            }
        });
        for (d, all) in &deliveries {
            self.send_delivery(d, *all);
        }
        body.unwrap_or_else(|| "{}".to_string())
    }

    /// Closes every socket with `code` (they leave their channels first, so webhooks and relays
    /// see it). Answers how many.
    async fn close_all(&self, code: u16, reason: &str) -> usize {
        self.close_sockets(self.state.get_websockets(), code, reason).await
    }

    /// Closes these sockets with `code`, as [`Self::close_all`] does.
    async fn close_sockets(&self, sockets: Vec<WebSocket>, code: u16, reason: &str) -> usize {
        let mut effects: Vec<Effect> = Vec::new();
        for ws in &sockets {
            if let Some(id) = self.socket_id(ws) {
                effects.extend(self.with_registry(|r| r.disconnect(&id)).unwrap_or_default());
            }
            let _ = ws.serialize_attachment(Option::<SocketRecord>::None);
            let _ = ws.close(Some(code), Some(reason));
        }
        // Only what outlives the sockets: webhooks and relay bookkeeping.
        effects.retain(|e| matches!(e, Effect::Webhook(_)));
        self.carry_out(effects, None).await;
        sockets.len()
    }
}
