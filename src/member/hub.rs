//! The hub's sockets: `GET /connect`, frames from clients, closes and the sweep, turned into calls
//! on `switchboard_member` (`hub` there holds every rule). A socket's attachment
//! `{session, connectedAt, replaced, batch}` is its only memory; the core sees the sockets as a list
//! of those attachments and names them by index. A socket opened with `?batch=1` gets its frames
//! through the object's `PerSocketBatcher` (`switchboard_core::batch`); every other one exactly as
//! before.

use super::MemberObject;
use crate::http::internal;
use crate::platform;
use crate::rpc::{self, ConversationCommand, MEMBER_HEADER};
use serde::{Deserialize, Serialize};
use switchboard_core::hub::{self, close};
use switchboard_core::ApiError;
use switchboard_member::hub::sessions::{Incoming, SocketReply};
use switchboard_member::{Ctx, Socket};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{
    Request, Response, ResponseBuilder, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
    WebSocketRequestResponsePair,
};

/// When the sweep's own storage work failed: try again this much later.
const SWEEP_RETRY_MS: i64 = 5_000;

#[wasm_bindgen]
extern "C" {
    type RawState;
    /// When the runtime last answered this socket's `ping` (a `Date`), or null.
    #[wasm_bindgen(method, catch, js_name = getWebSocketAutoResponseTimestamp)]
    fn auto_response_timestamp(this: &RawState, ws: &JsValue) -> Result<JsValue, JsValue>;
}

#[derive(Debug, Serialize, Deserialize)]
struct Attachment {
    session: String,
    connected_at: i64,
    /// Set when a newer connection of the same session took over; such a socket is closing and no
    /// longer speaks for the session.
    #[serde(default)]
    replaced: bool,
    /// Opted in to batched frames (`?batch=1`); absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    batch: bool,
    /// When the bearer token that opened the socket stops being accepted (epoch ms): the alarm
    /// closes it then with 4010.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<i64>,
}

impl Attachment {
    fn fact(self) -> Socket {
        Socket { session: self.session, connected_at: self.connected_at, replaced: self.replaced }
    }
}

pub fn set_auto_response(state: &State) {
    match WebSocketRequestResponsePair::new("ping", "pong") {
        Ok(pair) => state.set_websocket_auto_response(&pair),
        Err(e) => worker::console_error!("auto-response: {e:?}"),
    }
}

fn session_tag(session: &str) -> String {
    format!("s:{session}")
}

fn fact_of(ws: &WebSocket) -> Option<Socket> {
    ws.deserialize_attachment::<Attachment>().ok().flatten().map(Attachment::fact)
}

impl MemberObject {
    /// The object's sockets and what their attachments say, index for index; `first`, when given,
    /// is put at index 0 (the socket an incoming frame or close is about; it may appear again).
    pub(super) fn sockets(&self, first: Option<&WebSocket>) -> (Vec<WebSocket>, Vec<Option<Socket>>) {
        let sockets: Vec<WebSocket> = first.into_iter().cloned().chain(self.state.get_websockets()).collect();
        let facts = sockets.iter().map(fact_of).collect();
        (sockets, facts)
    }

    fn ctx<'a>(facts: &'a [Option<Socket>]) -> Ctx<'a> {
        Ctx { now_ms: platform::now_ms(), random: platform::random_u128(), sockets: facts }
    }

    pub(super) async fn hub_connect(&self, req: &Request) -> Result<Response, ApiError> {
        let url = req.url().map_err(|e| internal("connect url", e))?;
        let q = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let member =
            req.headers().get(MEMBER_HEADER).ok().flatten().ok_or_else(|| ApiError::unauthorized("no member"))?;
        let batch = switchboard_core::batch::opt_in(q("batch").as_deref())?;
        let (sockets, facts) = self.sockets(None);
        let ctx = Self::ctx(&facts);
        let (connected, effects) = self.core.connect(&member, q("since").as_deref(), q("session").as_deref(), &ctx);
        let connected = connected?;
        for old in connected.replace.iter().filter_map(|i| sockets.get(*i)) {
            if let Ok(Some(mut a)) = old.deserialize_attachment::<Attachment>() {
                a.replaced = true;
                let _ = old.serialize_attachment(a);
            }
            self.batcher.flush(old);
            let _ = old.close(Some(close::REPLACED), Some("replaced by a newer connection"));
        }
        let pair = WebSocketPair::new().map_err(|e| internal("socket pair", e))?;
        let server = pair.server;
        self.state.accept_websocket_with_tags(&server, &[session_tag(&connected.session).as_str()]);
        let until = rpc::until_of(req);
        let attachment =
            Attachment { session: connected.session.clone(), connected_at: ctx.now_ms, replaced: false, batch, until };
        server.serialize_attachment(attachment).map_err(|e| internal("socket attachment", e))?;
        if let Some(at) = until {
            self.alarm.ensure(&self.state.storage(), at).await;
        }
        if batch {
            // The opening (hello, the replay, ready) goes at once, joined.
            if let Some(tick) = self.batcher.ready(&server, connected.frames) {
                self.state.wait_until(tick);
            }
        } else {
            for frame in &connected.frames {
                let _ = server.send_with_str(frame);
            }
        }
        self.carry_out(&sockets, effects).await;

        let mut builder = ResponseBuilder::new().with_status(101).with_websocket(pair.client);
        let asked = req.headers().get("sec-websocket-protocol").ok().flatten().unwrap_or_default();
        if asked.split(',').any(|p| p.trim() == hub::SUBPROTOCOL) {
            builder = builder
                .with_header("sec-websocket-protocol", hub::SUBPROTOCOL)
                .map_err(|e| internal("subprotocol header", e))?;
        }
        Ok(builder.empty())
    }

    pub(super) async fn hub_message(&self, ws: &WebSocket, message: WebSocketIncomingMessage) {
        let (sockets, facts) = self.sockets(Some(ws));
        let ctx = Self::ctx(&facts);
        let incoming = match &message {
            WebSocketIncomingMessage::String(t) => Incoming::Text(t),
            WebSocketIncomingMessage::Binary(_) => Incoming::Binary,
        };
        let (reply, effects) = self.core.socket_frame(0, incoming, &ctx);
        let SocketReply { frames, close, typing } = reply;
        // On a batched socket an answer follows the events still waiting for it.
        for f in frames {
            self.batcher.reply(ws, f);
        }
        if let Some((code, reason)) = close {
            self.batcher.flush(ws);
            let _ = ws.close(Some(code), Some(reason));
        }
        self.carry_out(&sockets, effects).await;
        if let Some(t) = typing {
            let cmd = ConversationCommand::Typing { stop: t.stop };
            if let Err(e) = self.typing(&t.conversation_id, &t.member, cmd).await {
                self.batcher.reply(ws, e.to_frame(None));
            }
        }
    }

    async fn typing(&self, conversation_id: &str, member: &str, cmd: ConversationCommand) -> Result<(), ApiError> {
        let (status, body) = rpc::read(rpc::conversation(&self.env, conversation_id, member, cmd).await?).await?;
        if status >= 300 {
            return Err(rpc::as_error(status, &body));
        }
        Ok(())
    }

    pub(super) async fn hub_closed(&self, ws: &WebSocket) {
        self.batcher.forget(ws);
        let (sockets, facts) = self.sockets(Some(ws));
        let (r, effects) = self.core.socket_closed(0, &Self::ctx(&facts));
        if let Err(e) = r {
            worker::console_error!("hub socket closed: {e:?}");
        }
        self.carry_out(&sockets, effects).await;
    }

    /// Closes the sockets whose credential expired (4010) and sets the alarm for the next one.
    pub(super) async fn close_expired(&self) {
        use switchboard_core::limits::close::{TOKEN_EXPIRED, TOKEN_EXPIRED_REASON};
        let (code, reason) = (TOKEN_EXPIRED, TOKEN_EXPIRED_REASON);
        self.batcher.flush_all();
        if let Some(next) = platform::close_expired_sockets(&self.raw_state, platform::now_ms(), code, reason) {
            self.alarm.ensure(&self.state.storage(), next).await;
        }
    }

    /// The alarm: closes stale sockets and forgets expired sessions.
    pub(super) async fn sweep(&self) {
        let (sockets, facts) = self.sockets(None);
        let ctx = Self::ctx(&facts);
        let raw: &RawState = self.raw_state.unchecked_ref();
        let pinged = |i: usize| {
            let ws = sockets.get(i)?;
            raw.auto_response_timestamp(ws.as_ref())
                .ok()
                .filter(|v| !v.is_null() && !v.is_undefined())
                .map(|v| js_sys::Date::from(v).get_time() as i64)
        };
        let (r, effects) = self.core.sweep(&ctx, &pinged);
        if let Err(e) = r {
            worker::console_error!("hub sweep: {e:?}");
            self.alarm.ensure(&self.state.storage(), ctx.now_ms + SWEEP_RETRY_MS).await;
        }
        self.carry_out(&sockets, effects).await;
    }
}
