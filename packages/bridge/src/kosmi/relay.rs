//! `KosmiRelay`: the protocol client plus credentials, the outbound queue, echo suppression and mapping.

use super::{
    first_error, init_payload, join_room, map_new_message, on_new_message, send_message, EchoFilter, KosmiError,
    RoomId, CLOSE_ROOM_LOST,
};
use crate::event::BridgeEvent;
use crate::graphql_ws::{ConnId, Effect, GqlError, GraphqlWs, Input, OpError, Phase};
use crate::limits::*;
use crate::nick::NickFormat;
use crate::source::Outbound;
use serde_json::Value;
use std::collections::VecDeque;
use switchboard_core::backoff::BackoffPolicy;

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

    /// The user ids this relay posted as before (kept in storage across restarts): their messages,
    /// e.g. in the history a room sends on join, are ours and never brought in.
    pub fn with_past_user_ids(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.echo = std::mem::take(&mut self.echo).with_past_user_ids(ids);
        self
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
