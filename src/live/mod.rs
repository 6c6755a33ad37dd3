//! `LiveChannelObject`: the Durable Object shell around `switchboard_live`.
//!
//! One object per conversation for streamed live output. A publisher (the conversation's bot, or a
//! member) streams newline-delimited JSON to `POST /v1/conversations/:id/publish`; every complete
//! valid line goes, as it arrives, to every socket on `GET /v1/conversations/:id/live` as one frame.
//! Nothing is stored. Every decision (admission, the subscribers' windows and acks, the wait for
//! room and the 4008 closes, the bot going offline, the publish's answer) is made by the native
//! state machine [`LiveChannel`]; this shell asks the conversation and the bot's object who is
//! admitted (`admission.rs`), reads publish bodies (`publish.rs`), and carries out effects. The
//! worker's side of a publish (the preflight, the body pump and its idle timeout) is `forward.rs`.
//!
//! Invariants: no `RefCell` borrow is held across an `.await` (the core's calls are synchronous);
//! a subscriber's only memory is its socket's tag.

mod admission;
mod forward;
mod publish;

pub use forward::live_publish;

use crate::http::{error_response, internal, no_content};
use crate::platform;
use crate::rpc::{CONVERSATION_HEADER, MEMBER_HEADER};
use switchboard_core::limits::close::{self, MEMBERSHIP_ENDED};
use switchboard_core::ApiError;
use switchboard_live::subscribers::Incoming;
use switchboard_live::{subscriber_tag, Ctx, Effect, LiveChannel};
use switchboard_worker_kit::alarm::AlarmSlot;
use worker::{
    durable_object, wasm_bindgen, DurableObject, Env, Request, Response, ResponseBuilder, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair,
};

#[durable_object]
pub struct LiveChannelObject {
    state: State,
    /// The JavaScript `DurableObjectState`, for the one-call broadcast and the sockets' tags.
    raw_state: wasm_bindgen::JsValue,
    env: Env,
    core: LiveChannel,
    alarm: AlarmSlot,
    /// Subscriptions being admitted, marked when their member's membership ends meanwhile.
    admissions: std::cell::RefCell<switchboard_live::admission::Admissions>,
}

/// A subscriber's attachment: when the credential that opened it stops being accepted (epoch ms);
/// the alarm closes it then with 4010.
#[derive(serde::Serialize, serde::Deserialize)]
struct Attachment {
    until: i64,
}

impl DurableObject for LiveChannelObject {
    fn new(state: State, env: Env) -> Self {
        let raw = state._inner();
        let raw_state: wasm_bindgen::JsValue = raw.clone().into();
        let state = State::from(raw);
        match WebSocketRequestResponsePair::new("ping", "pong") {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => worker::console_error!("auto-response: {e:?}"),
        }
        let core = LiveChannel::with_limits(crate::config::limits(&env));
        LiveChannelObject { state, raw_state, env, core, alarm: AlarmSlot::new(), admissions: Default::default() }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match req.path().as_str() {
            "/check" => self.preflight(&req).await,
            "/publish" => self.publish(&mut req).await,
            "/live" => self.subscribe(&req).await,
            "/membership-ended" => self.membership_ended(&req),
            "/bot-offline" => {
                let effects = self.with_ctx(|ctx| self.core.bot_offline(ctx));
                self.carry_out(None, effects);
                Ok(ResponseBuilder::new().with_status(204).empty())
            }
            _ => Err(ApiError::not_found("no such live operation")),
        };
        match result {
            Ok(r) => Ok(r),
            Err(e) => error_response(&e),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        let (code, reason) = (close::TOKEN_EXPIRED, close::TOKEN_EXPIRED_REASON);
        if let Some(next) = platform::close_expired_sockets(&self.raw_state, platform::now_ms(), code, reason) {
            self.alarm.ensure(&self.state.storage(), next).await;
        }
        Response::ok("ok")
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> worker::Result<()> {
        let tag = subscriber_tag(self.state.get_tags(&ws));
        let frame = match &message {
            WebSocketIncomingMessage::String(text) => Incoming::Text(text),
            WebSocketIncomingMessage::Binary(_) => Incoming::Binary,
        };
        let effects = self.with_ctx(|ctx| self.core.message(tag.as_deref(), frame, ctx));
        self.carry_out(Some(&ws), effects);
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        self.forget(&ws);
        switchboard_worker_kit::socket::complete_close(&ws);
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.forget(&ws);
        switchboard_worker_kit::socket::close_after_error(&ws);
        Ok(())
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The caller and the conversation the worker named.
fn caller(req: &Request) -> Result<(String, String), ApiError> {
    let member = header(req, MEMBER_HEADER).ok_or_else(|| ApiError::unauthorized("no member"))?;
    let conversation = header(req, CONVERSATION_HEADER).ok_or_else(|| ApiError::internal("no conversation"))?;
    Ok((member, conversation))
}

impl LiveChannelObject {
    /// Runs `f` with the time, and the sockets' tags should the core need to rebuild its windows.
    fn with_ctx<T>(&self, f: impl FnOnce(&Ctx) -> T) -> T {
        let tags = || platform::socket_tags(&self.raw_state);
        f(&Ctx { now_ms: platform::now_ms(), socket_tags: &tags })
    }

    /// Carries out `effects` in order; `Reply` goes to `speaker`, the socket being handled.
    fn carry_out(&self, speaker: Option<&WebSocket>, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Broadcast(frame) => {
                    platform::broadcast(&self.raw_state, &frame);
                }
                Effect::Reply(frame) => {
                    if let Some(ws) = speaker {
                        let _ = ws.send_with_str(&frame);
                    }
                }
                Effect::Close { tag, code, reason } => {
                    for ws in self.state.get_websockets_with_tag(&tag) {
                        let _ = ws.close(Some(code), Some(reason));
                    }
                }
                Effect::CloseAll { code, reason } => {
                    for ws in self.state.get_websockets() {
                        let _ = ws.close(Some(code), Some(reason));
                    }
                }
            }
        }
    }

    fn forget(&self, ws: &WebSocket) {
        if let Some(tag) = subscriber_tag(self.state.get_tags(ws)) {
            self.with_ctx(|ctx| self.core.forget(&tag, ctx));
        }
    }

    async fn subscribe(&self, req: &Request) -> Result<Response, ApiError> {
        let (member, conversation) = caller(req)?;
        self.admissions.borrow_mut().begin(&member);
        let admitted = self.admit(&conversation, &member).await;
        // The membership may have ended while the admission awaited the conversation and the bot.
        let ended = self.admissions.borrow_mut().end(&member);
        let refusal = match admitted {
            Ok(_) if ended => Some((MEMBERSHIP_ENDED, "no longer a member of the conversation")),
            Ok(_) => None,
            Err(r) => Some(r.subscriber_close()?),
        };
        if let Some((code, reason)) = refusal {
            // Accepted and closed at once: browsers can read a close code, not an HTTP status.
            return switchboard_worker_kit::socket::refuse(code, reason);
        }
        let pair = WebSocketPair::new().map_err(|e| internal("socket pair", e))?;
        let server = pair.server;
        let joined = self.with_ctx(|ctx| self.core.subscribe(&platform::nonce(), ctx));
        let member_tag = switchboard_live::member_tag(&member);
        self.state.accept_websocket_with_tags(&server, &[joined.tag.as_str(), member_tag.as_str()]);
        if let Some(until) = crate::rpc::until_of(req) {
            server.serialize_attachment(Attachment { until }).map_err(|e| internal("socket attachment", e))?;
            self.alarm.ensure(&self.state.storage(), until).await;
        }
        // A late joiner first gets what the publishes in progress have sent so far.
        for line in &joined.replay {
            let _ = server.send_with_str(line);
        }
        self.carry_out(Some(&server), joined.effects);
        Ok(ResponseBuilder::new().with_status(101).with_websocket(pair.client).empty())
    }

    /// A member left or was removed: their subscriptions close with 4003 at once.
    fn membership_ended(&self, req: &Request) -> Result<Response, ApiError> {
        let (member, _) = caller(req)?;
        self.admissions.borrow_mut().membership_ended(&member);
        for ws in self.state.get_websockets_with_tag(&switchboard_live::member_tag(&member)) {
            let _ = ws.close(Some(MEMBERSHIP_ENDED), Some("no longer a member of the conversation"));
        }
        no_content()
    }

    /// The worker asks before it forwards a body: refusing a publish whose body is already streaming
    /// would leave the body half-read.
    async fn preflight(&self, req: &Request) -> Result<Response, ApiError> {
        let (member, conversation) = caller(req)?;
        self.admit_publisher(&conversation, &member).await?;
        self.core.room_for_publish()?;
        no_content()
    }

    /// May `member` publish here: admitted (a member, the bot online), and a publisher
    /// (`LIVE_PUBLISHERS`)?
    async fn admit_publisher(&self, conversation: &str, member: &str) -> Result<(), ApiError> {
        let sandbox_id = self.admit(conversation, member).await.map_err(|r| r.into_error())?;
        let publishers = crate::config::live_publishers(&self.env);
        switchboard_live::admission::may_publish(publishers, member, &sandbox_id).map_err(|r| r.into_error())
    }
}
