//! The Kosmi relay: one Kosmi room linked both ways to a conversation, over `graphql-transport-ws`
//! ([`crate::graphql_ws`]).
//!
//! Kosmi's API is reverse engineered (seed 003): an anonymous login over HTTP (`mutation { anonLogin { token } }`)
//! gives a JWT; the socket `wss://engine.kosmi.io/gql-ws` takes it in `connection_init` with the base64 User-Agent
//! and an app version; after the ack we subscribe `OnNewMessage` and run `JoinRoom` (no message flows before the
//! join). Room ids always carry their `@`.
//!
//! [`KosmiRelay`] wraps the protocol client and adds what is Kosmi's:
//! - **Credentials.** The token lives in the caller's storage; the relay takes `Option<token>`. When it must connect
//!   without one it asks for a login (`NeedLogin`); the caller posts [`LOGIN_BODY`], then calls `logged_in` or
//!   `login_failed`. A token the server refuses (4401/4403) is forgotten (`TokenRefused`: drop it from storage), so
//!   the next connect logs in again; the protocol client makes that immediate once and backed off after.
//! - **Outbound queue.** Sends are queued in order (at most `KOSMI_OUTBOX_MAX`) and sent one at a time once the room
//!   is joined, each written through the bridge's `nickFormat`. A send that fails (a GraphQL error, or the
//!   connection dropping before its result) goes back to the head of the queue and is tried again (at once, or
//!   after the reconnect); after `KOSMI_MAX_SEND_ATTEMPTS` attempts it is dropped with a recorded reason.
//! - **Echo suppression.** Our own sends come back through the subscription, written by our anonymous user. The
//!   relay remembers the bodies it sent (the last `ECHO_MEMORY`, for `ECHO_WINDOW_MS`); the first incoming message
//!   with a remembered body is taken as our echo and teaches us our own Kosmi user id. From then on, messages are
//!   recognized by that id alone: everything our user writes is ours (it writes nothing else), and a stranger who
//!   happens to type a body we sent is still relayed. The id is forgotten with the token (a new login is a new user).
//!   A body is formatted with a `nickFormat` (`<alice> hi`), so a stranger matching it before our echo arrives is
//!   unlikely; the only cost of that race would be one dropped message.
//! - **Mapping.** Each `newMessage` becomes a [`BridgedMessage`] from `kosmi:{user.id}`, keyed `kosmi:{id}`.

use crate::base64;
use crate::event::BridgeEvent;
use crate::graphql_ws::{ConnId, Effect, GqlError, GraphqlWs, Input, OpError, Operation, Phase};
use crate::lenient;
use crate::limits::*;
use crate::nick::NickFormat;
use crate::source::{Author, BridgedMessage, Outbound, Platform, Source};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::fmt;
use switchboard_core::backoff::BackoffPolicy;
use switchboard_core::limits::MAX_TEXT_CHARS;

/// Where the anonymous login is posted (`content-type: application/json`).
pub const HTTP_URL: &str = "https://engine.kosmi.io/";
/// The socket (subprotocol `graphql-transport-ws`).
pub const WS_URL: &str = "wss://engine.kosmi.io/gql-ws";
/// The `Origin` Kosmi's web app sends.
pub const ORIGIN: &str = "https://app.kosmi.io";
/// The body of the anonymous login.
pub const LOGIN_BODY: &str = r#"{"query":"mutation { anonLogin { token } }"}"#;
/// The web app version Kosmi expects in `connection_init`.
pub const APP_VERSION: &str = "4364";

pub const ON_NEW_MESSAGE: &str =
    "subscription OnNewMessage($roomId: String!) { newMessage(roomId: $roomId) { id body time user { id username displayName } } }";
pub const JOIN_ROOM: &str = "mutation JoinRoom($id: String!) { joinRoom(id: $id) { ok } }";
pub const SEND_MESSAGE: &str =
    "mutation SendMessage($body: String!, $roomId: String!) { sendMessage(body: $body, roomId: $roomId) { ok } }";

/// The close code we use when the room could not be joined or its subscription ended (4000-4999: application).
pub const CLOSE_ROOM_LOST: u16 = 4000;

const ROOM_URL_PREFIXES: [&str; 3] = ["https://app.kosmi.io/room/", "http://app.kosmi.io/room/", "app.kosmi.io/room/"];

// ---- Room ids ----

/// A Kosmi room id, always with its `@`: `@name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomId(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomError {
    /// A URL, but not `https://app.kosmi.io/room/…`.
    NotAKosmiRoomUrl,
    /// The name is empty or longer than `MAX_KOSMI_ROOM_NAME_CHARS`.
    Length { max: usize },
    /// The name may hold ASCII letters, digits, `_`, `-` and `.`.
    BadCharacter(char),
}

impl fmt::Display for RoomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomError::NotAKosmiRoomUrl => write!(f, "room: a URL must start with https://app.kosmi.io/room/"),
            RoomError::Length { max } => write!(f, "room: the name must be 1..{max} characters"),
            RoomError::BadCharacter(c) => write!(f, "room: {c:?} is not allowed (letters, digits, _ - .)"),
        }
    }
}

impl std::error::Error for RoomError {}

impl RoomId {
    /// Accepts `https://app.kosmi.io/room/@name` (a trailing `/`, query or fragment is ignored), `@name` or `name`.
    pub fn parse(input: &str) -> Result<Self, RoomError> {
        let s = input.trim();
        let name = match ROOM_URL_PREFIXES.iter().find_map(|p| s.strip_prefix(p)) {
            Some(rest) => rest.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/'),
            None if s.contains("://") || s.contains('/') => return Err(RoomError::NotAKosmiRoomUrl),
            None => s,
        };
        let name = name.strip_prefix('@').unwrap_or(name);
        if name.is_empty() || name.chars().count() > MAX_KOSMI_ROOM_NAME_CHARS {
            return Err(RoomError::Length { max: MAX_KOSMI_ROOM_NAME_CHARS });
        }
        if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
            return Err(RoomError::BadCharacter(c));
        }
        Ok(RoomId(format!("@{name}")))
    }

    /// `@name`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// ---- Login ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    Json(String),
    /// The answer's `errors`: the first message.
    Graphql(String),
    /// No usable `data.anonLogin.token` (missing, empty, with spaces, or longer than `MAX_KOSMI_TOKEN_CHARS`).
    NoToken,
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::Json(e) => write!(f, "kosmi login: the answer is not JSON: {e}"),
            LoginError::Graphql(e) => write!(f, "kosmi login refused: {e}"),
            LoginError::NoToken => write!(f, "kosmi login: the answer has no usable token"),
        }
    }
}

impl std::error::Error for LoginError {}

/// Reads the token from the login's answer `{data: {anonLogin: {token}}}`.
pub fn parse_login(body: &str) -> Result<String, LoginError> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(LoginError::Json(format!("answer of {} bytes", body.len())));
    }
    let v: Value = serde_json::from_str(body).map_err(|e| LoginError::Json(e.to_string()))?;
    if let Some(message) = first_error(&v) {
        return Err(LoginError::Graphql(message));
    }
    let token = v.pointer("/data/anonLogin/token").and_then(Value::as_str).ok_or(LoginError::NoToken)?;
    let ok = !token.is_empty()
        && token.len() <= MAX_KOSMI_TOKEN_CHARS
        && !token.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(token.to_string())
    } else {
        Err(LoginError::NoToken)
    }
}

/// The first message of a GraphQL `errors` list (or of an `error` message's payload list), if there is one.
fn first_error(v: &Value) -> Option<String> {
    let errors = v.get("errors").unwrap_or(v).as_array()?;
    let first = errors.first()?;
    Some(lenient::text(first.get("message"), MAX_REFUSAL_REASON_CHARS).unwrap_or_else(|| "unknown error".into()))
}

/// The `connection_init` payload: `{token, ua: base64(User-Agent), v: "4364", r: ""}`.
pub fn init_payload(token: &str, user_agent: &str) -> Value {
    let ua = lenient::cut(user_agent, MAX_USER_AGENT_CHARS);
    json!({"token": token, "ua": base64::encode(ua.as_bytes()), "v": APP_VERSION, "r": ""})
}

// ---- Operations ----

pub fn on_new_message(room: &RoomId) -> Operation {
    Operation {
        query: ON_NEW_MESSAGE.into(),
        operation_name: Some("OnNewMessage".into()),
        variables: json!({"roomId": room.as_str()}),
    }
}

pub fn join_room(room: &RoomId) -> Operation {
    Operation {
        query: JOIN_ROOM.into(),
        operation_name: Some("JoinRoom".into()),
        variables: json!({"id": room.as_str()}),
    }
}

pub fn send_message(room: &RoomId, body: &str) -> Operation {
    Operation {
        query: SEND_MESSAGE.into(),
        operation_name: Some("SendMessage".into()),
        variables: json!({"body": body, "roomId": room.as_str()}),
    }
}

// ---- Mapping ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KosmiError {
    /// The result carried GraphQL errors (the first message).
    Graphql(String),
    /// A required field was missing or unusable.
    Missing(&'static str),
}

impl fmt::Display for KosmiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KosmiError::Graphql(e) => write!(f, "kosmi: {e}"),
            KosmiError::Missing(field) => write!(f, "kosmi newMessage: {field} is missing or invalid"),
        }
    }
}

impl std::error::Error for KosmiError {}

/// Maps one `OnNewMessage` result `{data: {newMessage: {id, body, time, user: {id, username, displayName}}}}`.
pub fn map_new_message(room: &RoomId, payload: &Value) -> Result<BridgedMessage, KosmiError> {
    if let Some(e) = first_error(payload) {
        return Err(KosmiError::Graphql(e));
    }
    let m = payload.pointer("/data/newMessage").and_then(Value::as_object).ok_or(KosmiError::Missing("newMessage"))?;
    let external_id = lenient::id(m.get("id"), MAX_EXTERNAL_ID_CHARS).ok_or(KosmiError::Missing("newMessage.id"))?;
    let raw = m.get("body").and_then(Value::as_str).ok_or(KosmiError::Missing("newMessage.body"))?;
    let clean: String = raw.chars().filter(|c| *c == '\n' || !c.is_control()).collect();
    let text = lenient::cut_with_ellipsis(clean.trim(), MAX_TEXT_CHARS);
    if text.is_empty() {
        return Err(KosmiError::Missing("newMessage.body"));
    }
    let user = m.get("user").and_then(Value::as_object).ok_or(KosmiError::Missing("newMessage.user"))?;
    let user_id =
        lenient::id(user.get("id"), MAX_EXTERNAL_USER_ID_CHARS).ok_or(KosmiError::Missing("newMessage.user.id"))?;
    let username = lenient::text(user.get("username"), MAX_USERNAME_CHARS)
        .unwrap_or_else(|| lenient::cut(&user_id, MAX_USERNAME_CHARS));
    let display_name = lenient::text(user.get("displayName"), MAX_USERNAME_CHARS);
    Ok(BridgedMessage {
        idempotency_key: Platform::Kosmi.idempotency_key(&external_id),
        sender_id: Platform::Kosmi.sender_id(&user_id),
        text,
        source: Source {
            platform: Platform::Kosmi,
            room: room.as_str().to_string(),
            external_id,
            author: Author { id: user_id, username, display_name, color: None, badges: vec![] },
            reply_to: None,
            emotes: vec![],
        },
        reply_to_external_id: None,
    })
}

// ---- Echo suppression ----

/// Recognizes our own messages coming back (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EchoFilter {
    /// Bodies sent and not yet seen again, with when they were sent; oldest first.
    sent: VecDeque<(String, u64)>,
    /// Our Kosmi user id, once an echo taught it.
    own_user_id: Option<String>,
}

impl EchoFilter {
    /// We sent `body` at `now_ms`.
    pub fn sent(&mut self, now_ms: u64, body: &str) {
        self.expire(now_ms);
        if self.sent.len() >= ECHO_MEMORY {
            self.sent.pop_front();
        }
        self.sent.push_back((body.trim().to_string(), now_ms));
    }

    /// Whether a message from `user_id` saying `body` is one of ours (then drop it).
    pub fn is_echo(&mut self, now_ms: u64, user_id: &str, body: &str) -> bool {
        self.expire(now_ms);
        let body = body.trim();
        let pending = self.sent.iter().position(|(b, _)| b == body);
        let ours = match &self.own_user_id {
            Some(own) => own == user_id,
            None => pending.is_some(),
        };
        if ours {
            if let Some(i) = pending {
                self.sent.remove(i);
            }
            self.own_user_id = Some(user_id.to_string());
        }
        ours
    }

    pub fn own_user_id(&self) -> Option<&str> {
        self.own_user_id.as_deref()
    }

    /// A new login is a new Kosmi user.
    pub fn forget_user(&mut self) {
        self.own_user_id = None;
    }

    fn expire(&mut self, now_ms: u64) {
        self.sent.retain(|(_, at)| now_ms.saturating_sub(*at) < ECHO_WINDOW_MS);
    }
}

// ---- The relay ----

/// A Kosmi bridge's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KosmiConfig {
    pub room: RoomId,
    pub nick_format: NickFormat,
    /// Sent as the socket's `User-Agent` by the caller, and base64 in `connection_init`.
    pub user_agent: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KosmiEffect {
    /// Post `LOGIN_BODY` to `HTTP_URL`, then call `logged_in` (with `parse_login`'s token) or `login_failed`.
    NeedLogin,
    /// Open `WS_URL` (subprotocol `graphql-transport-ws`, `Origin: ORIGIN`, the User-Agent) and report it as `conn`.
    Connect {
        conn: ConnId,
    },
    Send {
        conn: ConnId,
        text: String,
    },
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// The stored token was refused: delete it.
    TokenRefused,
    /// Commit this (always a `BridgeEvent::Message` today). Boxed: effects are small otherwise.
    Event(Box<BridgeEvent>),
    /// A `newMessage` we could not map (count it).
    Skipped(KosmiError),
    /// The room is joined: messages flow both ways.
    Joined,
    /// Outbound message `local_id` was accepted by Kosmi.
    Delivered {
        local_id: String,
    },
    /// Outbound message `local_id` was given up on.
    Dropped {
        local_id: String,
        reason: DropReason,
    },
    StateChanged(Phase),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropReason {
    pub attempts: u32,
    /// What the last attempt ran into.
    pub last_error: String,
}

/// Why `send` did not queue a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefused {
    /// It came from a bridge: never relayed.
    Bridged,
    Empty,
    /// `KOSMI_OUTBOX_MAX` messages are waiting.
    QueueFull,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Outgoing {
    local_id: String,
    body: String,
    attempts: u32,
}

/// The relay. Drive it like [`GraphqlWs`]: inputs and time in, `poll` effects out, `poll_timeout` for the alarm.
#[derive(Debug, Clone)]
pub struct KosmiRelay {
    gql: GraphqlWs,
    room: RoomId,
    nick_format: NickFormat,
    user_agent: String,
    token: Option<String>,
    /// A `Connect` is held back until the login the caller was asked for.
    awaiting_login: bool,
    subscription: Option<String>,
    join: Option<String>,
    joined: bool,
    outbox: VecDeque<Outgoing>,
    in_flight: Option<(String, Outgoing)>,
    echo: EchoFilter,
    effects: VecDeque<KosmiEffect>,
}

impl KosmiRelay {
    pub fn new(config: KosmiConfig, token: Option<String>) -> Self {
        KosmiRelay {
            gql: GraphqlWs::new(BackoffPolicy::BRIDGE, Value::Null),
            room: config.room,
            nick_format: config.nick_format,
            user_agent: config.user_agent,
            token,
            awaiting_login: false,
            subscription: None,
            join: None,
            joined: false,
            outbox: VecDeque::new(),
            in_flight: None,
            echo: EchoFilter::default(),
            effects: VecDeque::new(),
        }
    }

    pub fn room(&self) -> &RoomId {
        &self.room
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn phase(&self) -> Phase {
        self.gql.phase()
    }

    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Messages waiting to be sent, the one in flight included.
    pub fn pending_sends(&self) -> usize {
        self.outbox.len() + usize::from(self.in_flight.is_some())
    }

    pub fn echo_filter(&self) -> &EchoFilter {
        &self.echo
    }

    pub fn poll(&mut self) -> Option<KosmiEffect> {
        self.effects.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        self.gql.poll_timeout()
    }

    pub fn start(&mut self, now_ms: u64, random: u64) {
        self.gql.start(now_ms);
        self.pump(now_ms, random);
    }

    /// Closes the connection; queued sends stay queued for the next `start`.
    pub fn stop(&mut self, now_ms: u64, random: u64) {
        self.gql.stop();
        self.pump(now_ms, random);
    }

    /// The login asked for with `NeedLogin` succeeded (the caller stores the token too).
    pub fn logged_in(&mut self, now_ms: u64, random: u64, token: String) {
        if self.token.as_deref() != Some(token.as_str()) {
            self.echo.forget_user();
        }
        self.token = Some(token);
        if std::mem::take(&mut self.awaiting_login) {
            if let (Phase::Connecting, Some(conn)) = (self.gql.phase(), self.gql.conn()) {
                self.connect(conn);
            }
        }
        self.pump(now_ms, random);
    }

    /// The login failed: the attempt fails and backs off.
    pub fn login_failed(&mut self, now_ms: u64, random: u64) {
        if std::mem::take(&mut self.awaiting_login) {
            if let (Phase::Connecting, Some(conn)) = (self.gql.phase(), self.gql.conn()) {
                self.gql.handle(now_ms, random, Input::ConnectFailed { conn });
            }
        }
        self.pump(now_ms, random);
    }

    /// Socket inputs and timeouts, as for [`GraphqlWs::handle`].
    pub fn handle(&mut self, now_ms: u64, random: u64, input: Input<'_>) {
        self.gql.handle(now_ms, random, input);
        self.pump(now_ms, random);
    }

    /// Queues a conversation message for the room (a bridged one is refused); `Delivered`/`Dropped` name it by its
    /// `local_id` later.
    pub fn send(&mut self, now_ms: u64, random: u64, message: &Outbound<'_>) -> Result<(), SendRefused> {
        if message.is_bridged() {
            return Err(SendRefused::Bridged);
        }
        if message.text.trim().is_empty() {
            return Err(SendRefused::Empty);
        }
        if self.pending_sends() >= KOSMI_OUTBOX_MAX {
            return Err(SendRefused::QueueFull);
        }
        let body = self.nick_format.render(message.sender_name, message.text, KOSMI_MAX_BODY_CHARS);
        self.outbox.push_back(Outgoing { local_id: message.local_id.to_string(), body, attempts: 0 });
        self.dispatch(now_ms);
        self.pump(now_ms, random);
        Ok(())
    }

    fn connect(&mut self, conn: ConnId) {
        match &self.token {
            Some(token) => {
                self.gql.set_init_payload(init_payload(token, &self.user_agent));
                self.effects.push_back(KosmiEffect::Connect { conn });
            }
            None => {
                self.awaiting_login = true;
                self.effects.push_back(KosmiEffect::NeedLogin);
            }
        }
    }

    /// Sends the head of the queue, if the room is joined and nothing is in flight (one at a time keeps the order).
    fn dispatch(&mut self, now_ms: u64) {
        if !self.joined || self.in_flight.is_some() {
            return;
        }
        let Some(mut next) = self.outbox.pop_front() else { return };
        match self.gql.execute(&send_message(&self.room, &next.body)) {
            Ok(id) => {
                next.attempts += 1;
                self.echo.sent(now_ms, &next.body);
                self.in_flight = Some((id, next));
            }
            Err(GqlError::NotReady | GqlError::TooManyOperations) => self.outbox.push_front(next),
        }
    }

    /// The in-flight send failed: back to the head of the queue, or dropped after its last attempt.
    fn send_failed(&mut self, now_ms: u64, error: String) {
        let Some((_, out)) = self.in_flight.take() else { return };
        if out.attempts >= KOSMI_MAX_SEND_ATTEMPTS {
            let reason = DropReason { attempts: out.attempts, last_error: error };
            self.effects.push_back(KosmiEffect::Dropped { local_id: out.local_id, reason });
        } else {
            self.outbox.push_front(out);
        }
        self.dispatch(now_ms);
    }

    /// Carries out what the protocol client asked for, translating it into Kosmi's terms.
    fn pump(&mut self, now_ms: u64, random: u64) {
        while let Some(effect) = self.gql.poll() {
            match effect {
                Effect::Connect { conn } => self.connect(conn),
                Effect::Send { conn, text } => self.effects.push_back(KosmiEffect::Send { conn, text }),
                Effect::Close { conn, code, reason } => {
                    self.effects.push_back(KosmiEffect::Close { conn, code, reason })
                }
                Effect::TokenRefused { .. } => {
                    self.token = None;
                    self.echo.forget_user();
                    self.effects.push_back(KosmiEffect::TokenRefused);
                }
                Effect::StateChanged(phase) => {
                    self.subscription = None;
                    self.join = None;
                    self.joined = false;
                    if phase != Phase::Connecting {
                        self.awaiting_login = false;
                    }
                    self.effects.push_back(KosmiEffect::StateChanged(phase));
                    if phase == Phase::Ready {
                        self.subscription = self.gql.subscribe(&on_new_message(&self.room)).ok();
                        self.join = self.gql.execute(&join_room(&self.room)).ok();
                    }
                }
                Effect::Next { id, payload } => self.on_next(now_ms, random, &id, &payload),
                Effect::Completed { id } => {
                    if self.subscription.as_deref() == Some(id.as_str()) || self.join.as_deref() == Some(id.as_str()) {
                        self.gql.restart(now_ms, random, CLOSE_ROOM_LOST, "room subscription ended");
                    } else if self.in_flight.as_ref().is_some_and(|(f, _)| *f == id) {
                        self.send_failed(now_ms, "completed without a result".into());
                    }
                }
                Effect::OperationError { id, error } => {
                    let message = match &error {
                        OpError::Graphql(errors) => first_error(errors).unwrap_or_else(|| "unknown error".into()),
                        OpError::ConnectionLost => "connection lost".into(),
                    };
                    if self.in_flight.as_ref().is_some_and(|(f, _)| *f == id) {
                        self.send_failed(now_ms, message);
                    } else if matches!(error, OpError::Graphql(_))
                        && (self.subscription.as_deref() == Some(id.as_str())
                            || self.join.as_deref() == Some(id.as_str()))
                    {
                        self.gql.restart(now_ms, random, CLOSE_ROOM_LOST, "room operation failed");
                    }
                }
            }
        }
    }

    fn on_next(&mut self, now_ms: u64, random: u64, id: &str, payload: &Value) {
        if self.subscription.as_deref() == Some(id) {
            match map_new_message(&self.room, payload) {
                Ok(m) => {
                    let body = payload.pointer("/data/newMessage/body").and_then(Value::as_str).unwrap_or_default();
                    if !self.echo.is_echo(now_ms, &m.source.author.id, body) {
                        self.effects.push_back(KosmiEffect::Event(Box::new(BridgeEvent::Message(m))));
                    }
                }
                Err(e) => self.effects.push_back(KosmiEffect::Skipped(e)),
            }
        } else if self.join.as_deref() == Some(id) {
            self.join = None;
            if first_error(payload).is_some() {
                self.gql.restart(now_ms, random, CLOSE_ROOM_LOST, "joinRoom failed");
            } else {
                self.joined = true;
                self.effects.push_back(KosmiEffect::Joined);
                self.dispatch(now_ms);
            }
        } else if self.in_flight.as_ref().is_some_and(|(f, _)| f == id) {
            let ok =
                first_error(payload).is_none() && payload.pointer("/data/sendMessage").is_some_and(|s| !s.is_null());
            if ok {
                if let Some((_, out)) = self.in_flight.take() {
                    self.effects.push_back(KosmiEffect::Delivered { local_id: out.local_id });
                }
                self.dispatch(now_ms);
            } else {
                let error = first_error(payload).unwrap_or_else(|| "no sendMessage result".into());
                self.send_failed(now_ms, error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql_ws::close;
    use proptest::prelude::*;

    const UA: &str = "Mozilla/5.0";

    fn room() -> RoomId {
        RoomId::parse("@hyperspaceout").unwrap()
    }

    fn relay(token: Option<&str>) -> KosmiRelay {
        let config = KosmiConfig { room: room(), nick_format: NickFormat::default(), user_agent: UA.into() };
        KosmiRelay::new(config, token.map(str::to_string))
    }

    fn out<'a>(
        local_id: &'a str,
        sender_id: &'a str,
        source: Option<&'a Value>,
        sender_name: &'a str,
        text: &'a str,
    ) -> Outbound<'a> {
        Outbound { local_id, sender_id, source, sender_name, text }
    }

    fn drain(r: &mut KosmiRelay) -> Vec<KosmiEffect> {
        std::iter::from_fn(|| r.poll()).collect()
    }

    fn sent_texts(effects: &[KosmiEffect]) -> Vec<Value> {
        effects
            .iter()
            .filter_map(|e| match e {
                KosmiEffect::Send { text, .. } => serde_json::from_str(text).ok(),
                _ => None,
            })
            .collect()
    }

    fn text(r: &mut KosmiRelay, now: u64, conn: ConnId, v: Value) {
        r.handle(now, 0, Input::Text { conn, text: &v.to_string() });
    }

    fn new_message(id: &str, user: &str, body: &str) -> Value {
        json!({"data": {"newMessage": {"id": id, "body": body, "time": 1713528000,
               "user": {"id": user, "username": format!("{user}_name"), "displayName": format!("{user} D")}}}})
    }

    /// A relay connected as `conn`, subscribed (operation 1 of the connection's ops) and joined.
    fn joined(r: &mut KosmiRelay, now: u64, conn: ConnId) -> (String, Vec<KosmiEffect>) {
        r.handle(now, 0, Input::Opened { conn });
        text(r, now, conn, json!({"type": "connection_ack"}));
        let effects = drain(r);
        let sent = sent_texts(&effects);
        let sub = sent[1]["id"].as_str().unwrap().to_string();
        let join = sent[2]["id"].as_str().unwrap().to_string();
        text(r, now, conn, json!({"id": join, "type": "next", "payload": {"data": {"joinRoom": {"ok": true}}}}));
        (sub, drain(r))
    }

    #[test]
    fn room_ids_are_normalized() {
        for input in [
            "https://app.kosmi.io/room/@hyperspaceout",
            "https://app.kosmi.io/room/@hyperspaceout/",
            "http://app.kosmi.io/room/@hyperspaceout?x=1#y",
            "app.kosmi.io/room/hyperspaceout",
            "@hyperspaceout",
            "  hyperspaceout ",
        ] {
            assert_eq!(RoomId::parse(input).map(|r| r.0), Ok("@hyperspaceout".to_string()), "{input}");
        }
        assert_eq!(RoomId::parse("a.b-c_9").unwrap().as_str(), "@a.b-c_9");
        assert_eq!(RoomId::parse("https://evil.example/room/@x"), Err(RoomError::NotAKosmiRoomUrl));
        assert_eq!(RoomId::parse("a/b"), Err(RoomError::NotAKosmiRoomUrl));
        assert_eq!(RoomId::parse("@"), Err(RoomError::Length { max: MAX_KOSMI_ROOM_NAME_CHARS }));
        assert_eq!(
            RoomId::parse("https://app.kosmi.io/room/"),
            Err(RoomError::Length { max: MAX_KOSMI_ROOM_NAME_CHARS })
        );
        assert_eq!(RoomId::parse("@@x"), Err(RoomError::BadCharacter('@')));
        assert_eq!(RoomId::parse("a b"), Err(RoomError::BadCharacter(' ')));
        assert_eq!(RoomId::parse("café"), Err(RoomError::BadCharacter('é')));
        assert!(RoomId::parse(&"a".repeat(MAX_KOSMI_ROOM_NAME_CHARS)).is_ok());
        assert!(RoomId::parse(&"a".repeat(MAX_KOSMI_ROOM_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn login() {
        let body: Value = serde_json::from_str(LOGIN_BODY).unwrap();
        assert_eq!(body, json!({"query": "mutation { anonLogin { token } }"}));
        assert_eq!(parse_login(r#"{"data":{"anonLogin":{"token":"eyJ.a.b"}}}"#), Ok("eyJ.a.b".into()));
        assert_eq!(
            parse_login(r#"{"data":null,"errors":[{"message":"rate limited"}]}"#),
            Err(LoginError::Graphql("rate limited".into()))
        );
        assert_eq!(parse_login(r#"{"data":{"anonLogin":null}}"#), Err(LoginError::NoToken));
        assert_eq!(parse_login(r#"{"data":{"anonLogin":{"token":""}}}"#), Err(LoginError::NoToken));
        assert_eq!(parse_login(r#"{"data":{"anonLogin":{"token":"a b"}}}"#), Err(LoginError::NoToken));
        let long = json!({"data": {"anonLogin": {"token": "a".repeat(MAX_KOSMI_TOKEN_CHARS + 1)}}}).to_string();
        assert_eq!(parse_login(&long), Err(LoginError::NoToken));
        assert!(matches!(parse_login("<html>"), Err(LoginError::Json(_))));
    }

    #[test]
    fn init_payload_and_operations() {
        assert_eq!(init_payload("T", UA), json!({"token": "T", "ua": "TW96aWxsYS81LjA=", "v": "4364", "r": ""}));
        let r = room();
        assert_eq!(
            on_new_message(&r),
            Operation {
                query: "subscription OnNewMessage($roomId: String!) { newMessage(roomId: $roomId) { id body time user { id username displayName } } }".into(),
                operation_name: Some("OnNewMessage".into()),
                variables: json!({"roomId": "@hyperspaceout"}),
            }
        );
        assert_eq!(join_room(&r).query, "mutation JoinRoom($id: String!) { joinRoom(id: $id) { ok } }");
        assert_eq!(join_room(&r).variables, json!({"id": "@hyperspaceout"}));
        let s = send_message(&r, "<a> hi");
        assert_eq!(
            s.query,
            "mutation SendMessage($body: String!, $roomId: String!) { sendMessage(body: $body, roomId: $roomId) { ok } }"
        );
        assert_eq!(s.variables, json!({"body": "<a> hi", "roomId": "@hyperspaceout"}));
    }

    #[test]
    fn messages_map_with_their_source() {
        let m = map_new_message(&room(), &new_message("k1", "u1", "  hello  ")).unwrap();
        assert_eq!(m.idempotency_key, "kosmi:k1");
        assert_eq!(m.sender_id, "kosmi:u1");
        assert_eq!(m.text, "hello");
        assert_eq!(
            m.source_json(),
            json!({"platform": "kosmi", "room": "@hyperspaceout", "externalId": "k1",
                   "author": {"id": "u1", "username": "u1_name", "displayName": "u1 D"}})
        );
        let bare = json!({"data": {"newMessage": {"id": 5, "body": "x", "user": {"id": 6}}}});
        let m = map_new_message(&room(), &bare).unwrap();
        assert_eq!((m.idempotency_key.as_str(), m.source.author.username.as_str()), ("kosmi:5", "6"));
        assert_eq!(map_new_message(&room(), &json!({"data": {}})), Err(KosmiError::Missing("newMessage")));
        assert_eq!(
            map_new_message(&room(), &json!({"errors": [{"message": "nope"}]})),
            Err(KosmiError::Graphql("nope".into()))
        );
        let no_user = json!({"data": {"newMessage": {"id": 5, "body": "x"}}});
        assert_eq!(map_new_message(&room(), &no_user), Err(KosmiError::Missing("newMessage.user")));
        assert_eq!(
            map_new_message(&room(), &new_message("k", "u", " \n ")),
            Err(KosmiError::Missing("newMessage.body"))
        );
    }

    #[test]
    fn without_a_token_it_logs_in_first_then_connects_subscribes_and_joins() {
        let mut r = relay(None);
        r.start(0, 0);
        assert_eq!(drain(&mut r), vec![KosmiEffect::StateChanged(Phase::Connecting), KosmiEffect::NeedLogin]);
        r.logged_in(100, 0, "T1".into());
        assert_eq!(drain(&mut r), vec![KosmiEffect::Connect { conn: 1 }]);
        r.handle(200, 0, Input::Opened { conn: 1 });
        assert_eq!(
            sent_texts(&drain(&mut r)),
            vec![json!({"type": "connection_init", "payload": init_payload("T1", UA)})]
        );
        text(&mut r, 300, 1, json!({"type": "connection_ack"}));
        let effects = drain(&mut r);
        assert_eq!(effects[0], KosmiEffect::StateChanged(Phase::Ready));
        assert_eq!(
            sent_texts(&effects),
            vec![
                json!({"id": "1", "type": "subscribe", "payload": {"query": ON_NEW_MESSAGE, "operationName": "OnNewMessage",
                       "variables": {"roomId": "@hyperspaceout"}}}),
                json!({"id": "2", "type": "subscribe", "payload": {"query": JOIN_ROOM, "operationName": "JoinRoom",
                       "variables": {"id": "@hyperspaceout"}}}),
            ]
        );
        assert!(!r.is_joined());
        text(&mut r, 400, 1, json!({"id": "2", "type": "next", "payload": {"data": {"joinRoom": {"ok": true}}}}));
        assert_eq!(drain(&mut r), vec![KosmiEffect::Joined]);
        assert!(r.is_joined());
        text(&mut r, 500, 1, json!({"id": "1", "type": "next", "payload": new_message("k1", "u1", "hi")}));
        let effects = drain(&mut r);
        let [KosmiEffect::Event(e)] = effects.as_slice() else { panic!("{effects:?}") };
        let BridgeEvent::Message(m) = &**e else { panic!("{e:?}") };
        assert_eq!((m.idempotency_key.as_str(), m.sender_id.as_str(), m.text.as_str()), ("kosmi:k1", "kosmi:u1", "hi"));
    }

    #[test]
    fn a_failed_login_backs_off_and_asks_again() {
        let mut r = relay(None);
        r.start(0, 0);
        drain(&mut r);
        r.login_failed(50, 0);
        assert_eq!(drain(&mut r), vec![KosmiEffect::StateChanged(Phase::Waiting { retry_at_ms: 550 })]);
        r.handle(550, 0, Input::Timeout);
        assert_eq!(drain(&mut r), vec![KosmiEffect::StateChanged(Phase::Connecting), KosmiEffect::NeedLogin]);
        // A login that comes back after the attempt timed out is kept for the next attempt.
        r.handle(550 + GQL_CONNECT_TIMEOUT_MS, 0, Input::Timeout);
        drain(&mut r);
        r.logged_in(550 + GQL_CONNECT_TIMEOUT_MS + 1, 0, "late".into());
        assert_eq!(drain(&mut r), vec![]);
        assert_eq!(r.token(), Some("late"));
    }

    #[test]
    fn a_refused_token_is_forgotten_and_a_new_login_asked_for() {
        let mut r = relay(Some("old"));
        r.start(0, 0);
        assert_eq!(drain(&mut r), vec![KosmiEffect::StateChanged(Phase::Connecting), KosmiEffect::Connect { conn: 1 }]);
        r.handle(10, 0, Input::Opened { conn: 1 });
        drain(&mut r);
        r.handle(20, 0, Input::Closed { conn: 1, code: close::FORBIDDEN, reason: "" });
        assert_eq!(
            drain(&mut r),
            vec![KosmiEffect::TokenRefused, KosmiEffect::StateChanged(Phase::Connecting), KosmiEffect::NeedLogin]
        );
        assert_eq!(r.token(), None);
        r.logged_in(30, 0, "new".into());
        assert_eq!(drain(&mut r), vec![KosmiEffect::Connect { conn: 2 }]);
        r.handle(40, 0, Input::Opened { conn: 2 });
        assert_eq!(sent_texts(&drain(&mut r))[0]["payload"]["token"], "new");
        // Refused again: forgotten again, but now the relay waits before asking for the next login.
        r.handle(50, 0, Input::Closed { conn: 2, code: close::UNAUTHORIZED, reason: "" });
        assert_eq!(
            drain(&mut r),
            vec![KosmiEffect::TokenRefused, KosmiEffect::StateChanged(Phase::Waiting { retry_at_ms: 1_050 })]
        );
        r.handle(1_050, 0, Input::Timeout);
        assert_eq!(drain(&mut r), vec![KosmiEffect::StateChanged(Phase::Connecting), KosmiEffect::NeedLogin]);
    }

    #[test]
    fn sends_wait_for_the_join_go_in_order_and_are_formatted() {
        let mut r = relay(Some("T"));
        r.start(0, 0);
        assert_eq!(r.send(0, 0, &out("m1", "alice", None, "Alice", "first")), Ok(()));
        assert_eq!(r.send(0, 0, &out("m2", "bob", None, "Bob", "second")), Ok(()));
        assert_eq!(r.pending_sends(), 2);
        let (_, effects) = joined(&mut r, 10, 1);
        assert_eq!(effects[0], KosmiEffect::Joined);
        let sent = sent_texts(&effects);
        assert_eq!(sent.len(), 1, "one at a time");
        assert_eq!(sent[0]["payload"]["variables"], json!({"body": "<Alice> first", "roomId": "@hyperspaceout"}));
        let id = sent[0]["id"].as_str().unwrap().to_string();
        text(&mut r, 20, 1, json!({"id": id, "type": "next", "payload": {"data": {"sendMessage": {"ok": true}}}}));
        let effects = drain(&mut r);
        assert_eq!(effects[0], KosmiEffect::Delivered { local_id: "m1".into() });
        assert_eq!(sent_texts(&effects)[0]["payload"]["variables"]["body"], "<Bob> second");
        assert_eq!(r.pending_sends(), 1);
    }

    #[test]
    fn bridged_empty_and_overflowing_sends_are_refused() {
        let mut r = relay(Some("T"));
        assert_eq!(r.send(0, 0, &out("x", "kick:1", None, "k", "hi")), Err(SendRefused::Bridged));
        assert_eq!(
            r.send(0, 0, &out("x", "a", Some(&json!({"platform": "kick"})), "k", "hi")),
            Err(SendRefused::Bridged)
        );
        assert_eq!(r.send(0, 0, &out("x", "a", None, "a", "   ")), Err(SendRefused::Empty));
        for i in 0..KOSMI_OUTBOX_MAX {
            assert_eq!(r.send(0, 0, &out(&i.to_string(), "a", None, "a", "hi")), Ok(()));
        }
        assert_eq!(r.send(0, 0, &out("over", "a", None, "a", "hi")), Err(SendRefused::QueueFull));
    }

    #[test]
    fn a_failed_send_is_retried_after_reconnect_and_dropped_after_three_attempts() {
        let mut r = relay(Some("T"));
        r.start(0, 0);
        r.send(0, 0, &out("m1", "alice", None, "Alice", "one")).unwrap();
        r.send(0, 0, &out("m2", "alice", None, "Alice", "two")).unwrap();
        let (_, effects) = joined(&mut r, 0, 1);
        let first = sent_texts(&effects)[0]["id"].as_str().unwrap().to_string();
        // Attempt 1: the connection drops before the result.
        r.handle(10, 0, Input::Closed { conn: 1, code: close::ABNORMAL, reason: "" });
        let effects = drain(&mut r);
        assert!(!effects.iter().any(|e| matches!(e, KosmiEffect::Dropped { .. } | KosmiEffect::Delivered { .. })));
        assert_eq!(r.pending_sends(), 2);
        // Reconnect: m1 goes first again. Attempt 2: a GraphQL error; attempt 3 follows at once.
        r.handle(510, 0, Input::Timeout);
        drain(&mut r);
        let (_, effects) = joined(&mut r, 510, 2);
        let retry = sent_texts(&effects);
        assert_eq!(retry[0]["payload"]["variables"]["body"], "<Alice> one");
        let second = retry[0]["id"].as_str().unwrap().to_string();
        assert_ne!(second, first);
        text(&mut r, 520, 2, json!({"id": second, "type": "error", "payload": [{"message": "slow down"}]}));
        let effects = drain(&mut r);
        let retry = sent_texts(&effects);
        assert_eq!(retry[0]["payload"]["variables"]["body"], "<Alice> one");
        let third = retry[0]["id"].as_str().unwrap().to_string();
        text(&mut r, 530, 2, json!({"id": third, "type": "next", "payload": {"errors": [{"message": "still no"}]}}));
        let effects = drain(&mut r);
        assert_eq!(
            effects[0],
            KosmiEffect::Dropped {
                local_id: "m1".into(),
                reason: DropReason { attempts: KOSMI_MAX_SEND_ATTEMPTS, last_error: "still no".into() }
            }
        );
        // And the next message goes.
        assert_eq!(sent_texts(&effects)[0]["payload"]["variables"]["body"], "<Alice> two");
        assert_eq!(r.pending_sends(), 1);
    }

    #[test]
    fn our_echo_is_dropped_and_teaches_our_user_id() {
        let mut r = relay(Some("T"));
        r.start(0, 0);
        let (sub, _) = joined(&mut r, 0, 1);
        r.send(100, 0, &out("m1", "alice", None, "Alice", "hello")).unwrap();
        drain(&mut r);
        // A stranger's message passes; our echo (same body, from our anonymous user) does not.
        text(&mut r, 110, 1, json!({"id": sub, "type": "next", "payload": new_message("k1", "stranger", "hi")}));
        text(&mut r, 120, 1, json!({"id": sub, "type": "next", "payload": new_message("k2", "me", "<Alice> hello")}));
        let effects = drain(&mut r);
        assert_eq!(effects.len(), 1);
        assert!(
            matches!(&effects[0], KosmiEffect::Event(e) if matches!(&**e, BridgeEvent::Message(m) if m.idempotency_key == "kosmi:k1"))
        );
        assert_eq!(r.echo_filter().own_user_id(), Some("me"));
        // From now on: anything from our user is ours, and a stranger typing a body we sent is relayed.
        r.send(130, 0, &out("m2", "alice", None, "Alice", "again")).unwrap();
        text(
            &mut r,
            140,
            1,
            json!({"id": sub, "type": "next", "payload": new_message("k3", "stranger", "<Alice> again")}),
        );
        text(&mut r, 150, 1, json!({"id": sub, "type": "next", "payload": new_message("k4", "me", "<Alice> again")}));
        let messages: Vec<String> = drain(&mut r)
            .into_iter()
            .filter_map(|e| match e {
                KosmiEffect::Event(e) => match *e {
                    BridgeEvent::Message(m) => Some(m.idempotency_key),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(messages, vec!["kosmi:k3".to_string()]);
    }

    #[test]
    fn echo_memory_is_bounded_in_size_and_time() {
        let mut f = EchoFilter::default();
        f.sent(0, "old");
        assert!(!f.is_echo(ECHO_WINDOW_MS, "me", "old"), "past the window it is forgotten");
        assert_eq!(f.own_user_id(), None);
        for i in 0..=ECHO_MEMORY {
            f.sent(1, &format!("b{i}"));
        }
        assert_eq!(f.sent.len(), ECHO_MEMORY);
        assert!(!f.is_echo(2, "me", "b0"), "the oldest was pushed out");
        assert!(f.is_echo(2, "me", " b1 "));
        f.forget_user();
        assert!(!f.is_echo(2, "me", "b9999"), "a new user must be learned again");
        assert!(f.is_echo(2, "me2", "b2"));
        assert_eq!(f.own_user_id(), Some("me2"));
    }

    #[test]
    fn a_failed_join_or_an_ended_subscription_reconnects() {
        let mut r = relay(Some("T"));
        r.start(0, 0);
        r.handle(0, 0, Input::Opened { conn: 1 });
        text(&mut r, 0, 1, json!({"type": "connection_ack"}));
        drain(&mut r);
        text(&mut r, 10, 1, json!({"id": "2", "type": "next", "payload": {"errors": [{"message": "no room"}]}}));
        let effects = drain(&mut r);
        assert_eq!(effects[0], KosmiEffect::Close { conn: 1, code: CLOSE_ROOM_LOST, reason: "joinRoom failed".into() });
        assert_eq!(effects.last(), Some(&KosmiEffect::StateChanged(Phase::Waiting { retry_at_ms: 510 })));
        assert!(!r.is_joined());

        let mut r = relay(Some("T"));
        r.start(0, 0);
        let (sub, _) = joined(&mut r, 0, 1);
        text(&mut r, 10, 1, json!({"id": sub, "type": "complete"}));
        let effects = drain(&mut r);
        assert_eq!(
            effects[0],
            KosmiEffect::Close { conn: 1, code: CLOSE_ROOM_LOST, reason: "room subscription ended".into() }
        );
    }

    #[test]
    fn a_malformed_message_is_skipped_not_fatal() {
        let mut r = relay(Some("T"));
        r.start(0, 0);
        let (sub, _) = joined(&mut r, 0, 1);
        text(&mut r, 10, 1, json!({"id": sub, "type": "next", "payload": {"data": {"newMessage": {"id": "k"}}}}));
        assert_eq!(drain(&mut r), vec![KosmiEffect::Skipped(KosmiError::Missing("newMessage.body"))]);
        assert!(r.is_joined());
    }

    proptest! {
        /// Whatever the sequence of sends and failures, every message ends exactly once (delivered or dropped) or is
        /// still pending, in order, and none is attempted more than the limit.
        #[test]
        fn every_send_ends_once(outcomes in proptest::collection::vec(0u8..3, 1..40), n in 1usize..6) {
            let mut r = relay(Some("T"));
            r.start(0, 0);
            for i in 0..n {
                r.send(0, 0, &out(&format!("m{i}"), "a", None, "a", &format!("t{i}"))).unwrap();
            }
            let mut now = 0u64;
            let mut conn = 1;
            let mut effects = joined(&mut r, now, conn).1;
            let mut ended: Vec<String> = vec![];
            let mut attempts: std::collections::HashMap<String, u32> = Default::default();
            for o in outcomes {
                now += 1;
                let seen = std::mem::take(&mut effects);
                for e in &seen {
                    match e {
                        KosmiEffect::Delivered { local_id } => ended.push(local_id.clone()),
                        KosmiEffect::Dropped { local_id, reason } => {
                            prop_assert_eq!(reason.attempts, KOSMI_MAX_SEND_ATTEMPTS);
                            ended.push(local_id.clone())
                        }
                        _ => {}
                    }
                }
                let sends: Vec<Value> = sent_texts(&seen).into_iter()
                    .filter(|v| v["payload"]["operationName"] == "SendMessage").collect();
                for s in &sends {
                    let body = s["payload"]["variables"]["body"].as_str().unwrap().to_string();
                    let a = attempts.entry(body).or_default();
                    *a += 1;
                    prop_assert!(*a <= KOSMI_MAX_SEND_ATTEMPTS);
                }
                let Some(last) = sends.last() else { break };
                let id = last["id"].as_str().unwrap().to_string();
                match o {
                    0 => text(&mut r, now, conn, json!({"id": id, "type": "next", "payload": {"data": {"sendMessage": {"ok": true}}}})),
                    1 => text(&mut r, now, conn, json!({"id": id, "type": "error", "payload": [{"message": "x"}]})),
                    _ => {
                        r.handle(now, 0, Input::Closed { conn, code: close::ABNORMAL, reason: "" });
                        let Phase::Waiting { retry_at_ms } = r.phase() else { panic!() };
                        now = retry_at_ms;
                        r.handle(now, 0, Input::Timeout);
                        conn += 1;
                        let mut before = drain(&mut r);
                        let (_, after) = joined(&mut r, now, conn);
                        before.extend(after);
                        effects = before;
                        continue;
                    }
                }
                effects = drain(&mut r);
            }
            for e in &effects {
                if let KosmiEffect::Delivered { local_id } | KosmiEffect::Dropped { local_id, .. } = e {
                    ended.push(local_id.clone());
                }
            }
            let expected: Vec<String> = (0..ended.len()).map(|i| format!("m{i}")).collect();
            prop_assert_eq!(&ended, &expected, "ended in order, each once");
            prop_assert_eq!(ended.len() + r.pending_sends(), n);
        }
    }
}
