//! `LiveChannelObject`: one Durable Object per conversation for streamed live output.
//!
//! A publisher (the conversation's bot, or a member) streams newline-delimited JSON to
//! `POST /v1/conversations/:id/publish`; every complete valid line goes, as it arrives, to every socket
//! on `GET /v1/conversations/:id/live` as one frame. Nothing is stored: the live subscriber set is
//! separate from the conversation's event sockets, and each publish in progress keeps only a bounded
//! buffer of its recent lines for subscribers that join mid-stream. A line `{"final": true, "content"}`
//! is committed to the conversation as a normal message when the publish ends.
//!
//! Membership and the bot's status are asked of the conversation's and the bot's objects once per
//! publish or subscription, never per line.

use crate::http::{error_response, internal, json};
use crate::platform;
use crate::rpc::{self, ConversationCommand, MemberCommand, CONVERSATION_HEADER, MEMBER_HEADER};
use futures::StreamExt;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use switchboard_core::live::{self, close, final_line, PublishBuffer, SubscriberWindow, WindowState};
use switchboard_core::ndjson::{Line, LineSplitter, Tally};
use switchboard_core::{ApiError, ErrorCode, MemberId};
use worker::{
    durable_object, wasm_bindgen, DurableObject, Env, Request, Response, ResponseBuilder, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair,
};

/// Why a caller may not publish or subscribe.
enum Refusal {
    /// Unknown conversation, or not a member: the conversation's own answer.
    NotVisible(ApiError),
    BotOffline,
    Fault(ApiError),
}

#[durable_object]
pub struct LiveChannelObject {
    state: State,
    /// The JavaScript `DurableObjectState`, for the one-call broadcast.
    raw_state: wasm_bindgen::JsValue,
    env: Env,
    /// Publishes in progress, by arrival order, with their recent lines.
    publishes: RefCell<BTreeMap<u64, PublishBuffer>>,
    next_publish: Cell<u64>,
    /// Bumped when the bot goes offline; a publish that sees it change stops.
    offline_epoch: Cell<u64>,
    /// What each subscriber (by its socket tag) was sent and has not acknowledged. `None` until first
    /// needed after the object started: then built from the sockets' tags (a subscriber that joined
    /// before a hibernation starts afresh, which only errs on the lenient side).
    windows: RefCell<Option<HashMap<String, SubscriberWindow>>>,
}

/// How often a publish waiting for a subscriber's acks looks again.
const ROOM_POLL_MS: u64 = 5;

/// Every subscriber socket is tagged `s:<random>`; refused sockets (closed at once) have no tag.
const SUBSCRIBER_TAG_PREFIX: &str = "s:";

impl DurableObject for LiveChannelObject {
    fn new(state: State, env: Env) -> Self {
        let raw = state._inner();
        let raw_state: wasm_bindgen::JsValue = raw.clone().into();
        let state = State::from(raw);
        match WebSocketRequestResponsePair::new("ping", "pong") {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => worker::console_error!("auto-response: {e:?}"),
        }
        LiveChannelObject {
            state,
            raw_state,
            env,
            publishes: RefCell::new(BTreeMap::new()),
            next_publish: Cell::new(0),
            offline_epoch: Cell::new(0),
            windows: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match req.path().as_str() {
            "/check" => self.preflight(&req).await,
            "/publish" => self.publish(&mut req).await,
            "/live" => self.subscribe(&req).await,
            "/bot-offline" => Ok(self.bot_offline()),
            _ => Err(ApiError::not_found("no such live operation")),
        };
        match result {
            Ok(r) => Ok(r),
            Err(e) => error_response(&e),
        }
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> worker::Result<()> {
        // Subscribers only acknowledge; anything else gets an error frame (which counts as sent).
        let tag = self.subscriber_tag(&ws);
        let outcome = match message {
            WebSocketIncomingMessage::String(text) => live::parse_subscriber_frame(&text),
            WebSocketIncomingMessage::Binary(_) => {
                Err(ApiError::new(ErrorCode::BinaryNotSupported, "binary frames are not supported"))
            }
        };
        let error = match (outcome, &tag) {
            (Ok(received), Some(tag)) => {
                let mut windows = self.windows_mut();
                match windows.get_mut(tag) {
                    Some(w) => w.ack(received).err(),
                    None => None,
                }
            }
            (Ok(_), None) => None,
            (Err(e), _) => Some(e),
        };
        if let Some(e) = error {
            let frame = e.to_frame(None);
            let _ = ws.send_with_str(&frame);
            if let Some(tag) = tag {
                self.count_sent(&[tag], frame.len());
            }
        }
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
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.forget(&ws);
        let _ = ws.close(Some(switchboard_core::limits::close::INTERNAL), Some("socket error"));
        Ok(())
    }
}

fn refusal_error(r: Refusal) -> ApiError {
    match r {
        Refusal::NotVisible(e) | Refusal::Fault(e) => e,
        Refusal::BotOffline => ApiError::new(ErrorCode::BotOffline, "the conversation's bot is not online"),
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

impl LiveChannelObject {
    /// May `member` use this conversation's live channel? Answers the sandbox id.
    async fn check(&self, conversation: &str, member: &str) -> Result<String, Refusal> {
        let resp = rpc::conversation(&self.env, conversation, member, ConversationCommand::Get)
            .await
            .map_err(Refusal::Fault)?;
        let (status, body) = rpc::read(resp).await.map_err(Refusal::Fault)?;
        if status != 200 {
            let e = rpc::as_error(status, &body);
            return Err(if status < 500 { Refusal::NotVisible(e) } else { Refusal::Fault(e) });
        }
        let sandbox = body["sandboxId"].as_str().unwrap_or_default().to_string();
        let bot = MemberId::bot(&sandbox).map_err(Refusal::Fault)?.to_string();
        let (s, status_body) =
            rpc::read(rpc::member(&self.env, &bot, MemberCommand::GetBotStatus).await.map_err(Refusal::Fault)?)
                .await
                .map_err(Refusal::Fault)?;
        if s != 200 {
            return Err(Refusal::Fault(rpc::as_error(s, &status_body)));
        }
        if status_body["online"].as_bool() != Some(true) {
            return Err(Refusal::BotOffline);
        }
        Ok(sandbox)
    }

    /// Sends `line` to every subscriber (one call into the runtime), then counts it against each
    /// subscriber's window and closes those that left more than a window unacknowledged.
    fn broadcast(&self, line: &str) {
        platform::broadcast(&self.raw_state, line);
        let overrun: Vec<String> = self
            .windows_mut()
            .iter_mut()
            .filter_map(|(tag, w)| (w.sent(line.len()) == WindowState::Overrun).then(|| tag.clone()))
            .collect();
        for tag in overrun {
            self.close_too_slow(&tag);
        }
    }

    /// Waits until every subscriber's window has room for a frame of `bytes` (their acks arrive
    /// meanwhile), at most `STALL_GRACE_MS`; then closes the subscribers still full. Reading the
    /// publish body pauses meanwhile, so the publisher is slowed, never a subscriber's data dropped.
    async fn make_room(&self, bytes: usize) {
        let deadline = platform::now_ms() + live::STALL_GRACE_MS;
        loop {
            let full: Vec<String> =
                self.windows_mut().iter().filter(|(_, w)| !w.has_room(bytes)).map(|(t, _)| t.clone()).collect();
            if full.is_empty() {
                return;
            }
            if platform::now_ms() >= deadline {
                for tag in full {
                    self.close_too_slow(&tag);
                }
                return;
            }
            worker::Delay::from(std::time::Duration::from_millis(ROOM_POLL_MS)).await;
        }
    }

    /// Counts one frame of `bytes` sent to each of `tags`, closing any it overruns.
    fn count_sent(&self, tags: &[String], bytes: usize) {
        let mut overrun = Vec::new();
        {
            let mut windows = self.windows_mut();
            for tag in tags {
                if let Some(w) = windows.get_mut(tag) {
                    if w.sent(bytes) == WindowState::Overrun {
                        overrun.push(tag.clone());
                    }
                }
            }
        }
        for tag in overrun {
            self.close_too_slow(&tag);
        }
    }

    fn close_too_slow(&self, tag: &str) {
        self.windows_mut().remove(tag);
        for ws in self.state.get_websockets_with_tag(tag) {
            let _ = ws.close(Some(close::TOO_SLOW), Some("too many frames unacknowledged"));
        }
    }

    /// The subscribers' windows, built from the sockets' tags the first time after the object started.
    fn windows_mut(&self) -> std::cell::RefMut<'_, HashMap<String, SubscriberWindow>> {
        if self.windows.borrow().is_none() {
            let built: HashMap<String, SubscriberWindow> = platform::socket_tags(&self.raw_state)
                .into_iter()
                .filter(|t| t.starts_with(SUBSCRIBER_TAG_PREFIX))
                .map(|t| (t, SubscriberWindow::default()))
                .collect();
            *self.windows.borrow_mut() = Some(built);
        }
        std::cell::RefMut::map(self.windows.borrow_mut(), |w| w.get_or_insert_with(HashMap::new))
    }

    fn subscriber_tag(&self, ws: &WebSocket) -> Option<String> {
        self.state.get_tags(ws).into_iter().find(|t| t.starts_with(SUBSCRIBER_TAG_PREFIX))
    }

    fn forget(&self, ws: &WebSocket) {
        if let Some(tag) = self.subscriber_tag(ws) {
            self.windows_mut().remove(&tag);
        }
    }

    /// Closes every subscriber with 4002 and stops the publishes in progress.
    fn bot_offline(&self) -> Response {
        self.offline_epoch.set(self.offline_epoch.get() + 1);
        for ws in self.state.get_websockets() {
            let _ = ws.close(Some(close::BOT_OFFLINE), Some("bot is not online"));
        }
        self.windows_mut().clear();
        ResponseBuilder::new().with_status(204).empty()
    }

    async fn subscribe(&self, req: &Request) -> Result<Response, ApiError> {
        let member = header(req, MEMBER_HEADER).ok_or_else(|| ApiError::unauthorized("no member"))?;
        let conversation = header(req, CONVERSATION_HEADER).ok_or_else(|| ApiError::internal("no conversation"))?;
        let refusal = match self.check(&conversation, &member).await {
            Ok(_) => None,
            Err(Refusal::NotVisible(_)) => Some((close::UNKNOWN_CONVERSATION, "unknown conversation")),
            Err(Refusal::BotOffline) => Some((close::BOT_OFFLINE, "bot is not online")),
            Err(Refusal::Fault(e)) => return Err(e),
        };
        let pair = WebSocketPair::new().map_err(|e| internal("socket pair", e))?;
        let server = pair.server;
        match refusal {
            Some((code, reason)) => {
                // Accept, then close at once: browsers can read a close code, not an HTTP status.
                // Accepted through the hibernation API so the runtime, not an event listener nobody
                // set, owns the socket's errors.
                self.state.accept_web_socket(&server);
                let _ = server.close(Some(code), Some(reason));
            }
            None => {
                let tag = format!("{SUBSCRIBER_TAG_PREFIX}{}", platform::nonce());
                // The window map is built (from the existing sockets) before this one is accepted,
                // so the new subscriber is added exactly once.
                self.windows_mut().insert(tag.clone(), SubscriberWindow::default());
                self.state.accept_websocket_with_tags(&server, &[tag.as_str()]);
                // A late joiner first gets what the publishes in progress have sent so far.
                let mut sizes = Vec::new();
                for buffer in self.publishes.borrow().values() {
                    for line in buffer.lines() {
                        let _ = server.send_with_str(line);
                        sizes.push(line.len());
                    }
                }
                let tags = [tag];
                for bytes in sizes {
                    self.count_sent(&tags, bytes);
                }
            }
        }
        Ok(ResponseBuilder::new().with_status(101).with_websocket(pair.client).empty())
    }

    /// The worker asks before it forwards a body: refusing a publish whose body is already streaming
    /// would leave the body half-read.
    async fn preflight(&self, req: &Request) -> Result<Response, ApiError> {
        let member = header(req, MEMBER_HEADER).ok_or_else(|| ApiError::unauthorized("no member"))?;
        let conversation = header(req, CONVERSATION_HEADER).ok_or_else(|| ApiError::internal("no conversation"))?;
        match self.check(&conversation, &member).await {
            Ok(_) => Ok(ResponseBuilder::new().with_status(204).empty()),
            Err(r) => Err(refusal_error(r)),
        }
    }

    async fn publish(&self, req: &mut Request) -> Result<Response, ApiError> {
        let member = header(req, MEMBER_HEADER).ok_or_else(|| ApiError::unauthorized("no member"))?;
        let conversation = header(req, CONVERSATION_HEADER).ok_or_else(|| ApiError::internal("no conversation"))?;
        // Checked again (the bot may have gone offline since the preflight). A refused body is still
        // read to its end, so the answer never comes before the body is consumed.
        let refused = self.check(&conversation, &member).await.err().map(refusal_error);
        let id = self.next_publish.get();
        self.next_publish.set(id + 1);
        self.publishes.borrow_mut().insert(id, PublishBuffer::default());
        let outcome = self.stream_lines(req, id, refused.is_some()).await;
        self.publishes.borrow_mut().remove(&id);
        if let Some(e) = refused {
            return Err(e);
        }
        let (tally, final_line) = outcome?;

        let mut answer = json!({
            "delivered": tally.delivered,
            "skipped": tally.skipped(),
            "skippedInvalid": tally.skipped_invalid,
            "skippedTooLong": tally.skipped_too_long,
            "ended": "complete",
            "messageId": Value::Null,
        });
        if let Some(f) = final_line {
            let cmd = ConversationCommand::SendMessage {
                content: f.content,
                in_reply_to_message_id: None,
                client_id: f.client_id,
            };
            let (status, body) = rpc::read(rpc::conversation(&self.env, &conversation, &member, cmd).await?).await?;
            if status < 300 {
                answer["messageId"] = body["messageId"].clone();
            } else {
                answer["commitError"] = body["error"].clone();
            }
        }
        json(200, &answer)
    }

    /// Reads the body to its end and delivers each complete line at once (unless `discard`). The worker
    /// ends the body on the publisher's idle timeout or broken connection, so this never waits forever.
    /// Answers the tally and the last line that asked to be committed; 409 if the bot went offline.
    async fn stream_lines(
        &self,
        req: &mut Request,
        id: u64,
        discard: bool,
    ) -> Result<(Tally, Option<live::FinalLine>), ApiError> {
        let epoch = self.offline_epoch.get();
        let mut stream = req.stream().map_err(|e| ApiError::invalid(format!("no body to publish: {e}")))?;
        let mut splitter = LineSplitter::new(live::MAX_LINE_BYTES);
        let mut tally = Tally::default();
        let mut committed = None;
        let mut went_offline = false;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    worker::console_warn!("publish body broke off: {e}");
                    break;
                }
            };
            if self.offline_epoch.get() != epoch {
                went_offline = true;
            }
            if discard || went_offline {
                continue;
            }
            let lines = splitter.push(&chunk);
            self.deliver(id, lines.into_iter(), &mut tally, &mut committed).await;
        }
        if went_offline {
            return Err(ApiError::new(ErrorCode::BotOffline, "the conversation's bot went offline"));
        }
        if !discard {
            let last = splitter.finish();
            self.deliver(id, last.into_iter(), &mut tally, &mut committed).await;
        }
        Ok((tally, committed))
    }

    async fn deliver(
        &self,
        id: u64,
        lines: impl Iterator<Item = Line>,
        tally: &mut Tally,
        committed: &mut Option<live::FinalLine>,
    ) {
        for line in lines {
            tally.count(&line);
            if let Line::Json(text) = line {
                self.make_room(text.len()).await;
                self.broadcast(&text);
                if let Some(buffer) = self.publishes.borrow_mut().get_mut(&id) {
                    buffer.push(&text);
                }
                if let Some(f) = final_line(&text) {
                    *committed = Some(f);
                }
            }
        }
    }
}
