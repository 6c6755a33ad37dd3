//! A `graphql-transport-ws` client as a state machine (enisdenjo/graphql-ws PROTOCOL.md), in the manner of
//! quinn-proto and str0m: the caller owns the socket and the clock.
//!
//! The caller feeds in what happens ([`Input`]: the socket opened, a text frame, the socket closed, the attempt
//! failed, or a timer ran out) with the current time and 64 random bits, drains [`GraphqlWs::poll`] for what to do
//! ([`Effect`]: connect, send, close, and what the operations produced), and calls back with [`Input::Timeout`] at
//! [`GraphqlWs::poll_timeout`]. The machine never reads a clock and never draws randomness.
//!
//! The life of a connection:
//! 1. `Connect { conn }`: the caller opens a socket with subprotocol `graphql-transport-ws` and reports
//!    `Opened { conn }` (or `ConnectFailed { conn }`) within `GQL_CONNECT_TIMEOUT_MS`.
//! 2. We send `connection_init` with the init payload; `connection_ack` must come within `GQL_ACK_TIMEOUT_MS`, or we
//!    close (4504) and back off.
//! 3. Ready: operations run, each with an id from one counter that never goes back (unique across connections too,
//!    so a late frame of an old operation can never be taken for a new one). A subscription yields `Next` until
//!    `Completed` or `OperationError`; a mutation (a "single" operation) is completed on its one result.
//! 4. Keep-alive: with nothing received for `GQL_KEEPALIVE_IDLE_MS` we `ping`; if nothing at all (a `pong` or any
//!    other frame) arrives within `GQL_PONG_TIMEOUT_MS`, the connection is dead: close (4499) and back off. A
//!    server `ping` is answered with `pong` at once.
//!
//! Every ending goes through one place ([`GraphqlWs::restart`]): running operations end with
//! `OperationError::ConnectionLost`, and the next attempt waits a jittered exponential backoff
//! (`BackoffPolicy::BRIDGE`), whose count resets once a connection has stayed up `stable_ms`. The close codes:
//! - 4401 (unauthorized) and 4403 (forbidden) mean our credentials were refused: `TokenRefused`, so that the caller
//!   gets new ones. The first refusal since the last stable connection reconnects at once (the caller logs in again
//!   once); another refusal backs off like any failure, so a refusing server is never hammered with logins.
//! - 4400, 4406, 4408, 4409, 4429, 4500, 1006 and any other code: back off.
//!
//! Connections are numbered (`conn`): every socket-level input names the connection it is about, and inputs about an
//! earlier one are ignored (a stale socket that opens late is closed), so a close event that arrives after we gave up
//! on a socket can never end its successor.

use crate::limits::{
    GQL_ACK_TIMEOUT_MS, GQL_CONNECT_TIMEOUT_MS, GQL_KEEPALIVE_IDLE_MS, GQL_MAX_OPERATIONS, GQL_PONG_TIMEOUT_MS,
    MAX_CLOSE_REASON_BYTES, MAX_EVENT_BYTES,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use switchboard_core::backoff::{Backoff, BackoffPolicy};

/// The WebSocket subprotocol to ask for (the server must echo it).
pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// Close codes of the protocol (graphql-ws `CloseCode`), and the two generic ones we use.
pub mod close {
    pub const NORMAL: u16 = 1000;
    /// The socket dropped without a close frame (reported by runtimes, never sent).
    pub const ABNORMAL: u16 = 1006;
    /// The frame was larger than `MAX_EVENT_BYTES`.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// We received something that is not a valid server message.
    pub const BAD_RESPONSE: u16 = 4004;
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    pub const CONNECTION_INITIALISATION_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_ALREADY_EXISTS: u16 = 4409;
    pub const TOO_MANY_INITIALISATION_REQUESTS: u16 = 4429;
    /// We gave up on an unresponsive connection (graphql-ws' client "terminate").
    pub const TERMINATED: u16 = 4499;
    pub const INTERNAL_SERVER_ERROR: u16 = 4500;
    pub const CONNECTION_ACKNOWLEDGEMENT_TIMEOUT: u16 = 4504;
}

/// The number of one connection attempt.
pub type ConnId = u64;

/// What the connection is doing, as the caller may show or store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started.
    Idle,
    /// Waiting for the socket to open.
    Connecting,
    /// `connection_init` sent, waiting for `connection_ack`.
    AwaitingAck,
    /// Acknowledged: operations may run.
    Ready,
    /// Backing off until `retry_at_ms`.
    Waiting { retry_at_ms: u64 },
    /// Stopped by the caller; nothing happens until `start`.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// The socket of `conn` is open.
    Opened { conn: ConnId },
    /// A text frame arrived on `conn`.
    Text { conn: ConnId, text: &'a str },
    /// The socket of `conn` closed (1006 when it dropped without a close frame).
    Closed { conn: ConnId, code: u16, reason: &'a str },
    /// The attempt `conn` failed before a socket existed (a refused upgrade, a failed login).
    ConnectFailed { conn: ConnId },
    /// The time given by `poll_timeout` has come.
    Timeout,
}

/// How an operation ended other than by completing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    /// The server's `error` message: its payload, a list of GraphQL errors.
    Graphql(Value),
    /// The connection ended while it ran.
    ConnectionLost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Open a socket (subprotocol `SUBPROTOCOL`), then report `Opened`/`ConnectFailed`/`Closed` for this `conn`.
    Connect {
        conn: ConnId,
    },
    /// Send this text frame on `conn`.
    Send {
        conn: ConnId,
        text: String,
    },
    /// Close the socket of `conn` with this code and reason; no `Closed` needs to be reported for it.
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// A result of operation `id`: `{data?, errors?}`.
    Next {
        id: String,
        payload: Value,
    },
    /// Operation `id` ended with an error.
    OperationError {
        id: String,
        error: OpError,
    },
    /// Operation `id` ended normally.
    Completed {
        id: String,
    },
    /// The server refused our credentials (close `code`, 4401 or 4403): get new ones before the next `Connect`.
    TokenRefused {
        code: u16,
    },
    StateChanged(Phase),
}

/// A GraphQL operation: `{query, operationName?, variables?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Value,
}

impl Operation {
    fn payload(&self) -> Value {
        let mut p = Map::new();
        p.insert("query".into(), Value::String(self.query.clone()));
        if let Some(name) = &self.operation_name {
            p.insert("operationName".into(), Value::String(name.clone()));
        }
        if !self.variables.is_null() {
            p.insert("variables".into(), self.variables.clone());
        }
        Value::Object(p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GqlError {
    /// Operations run only once the connection is acknowledged.
    NotReady,
    /// `GQL_MAX_OPERATIONS` are running.
    TooManyOperations,
}

impl fmt::Display for GqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GqlError::NotReady => write!(f, "the connection is not acknowledged yet"),
            GqlError::TooManyOperations => write!(f, "{GQL_MAX_OPERATIONS} operations are running"),
        }
    }
}

impl std::error::Error for GqlError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Subscription,
    /// A query or mutation: one result, then done.
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Stopped,
    Connecting { conn: ConnId, deadline: u64 },
    AwaitingAck { conn: ConnId, deadline: u64 },
    Ready { conn: ConnId, last_rx: u64, ping_deadline: Option<u64> },
    Waiting { retry_at: u64 },
}

impl State {
    fn phase(self) -> Phase {
        match self {
            State::Idle => Phase::Idle,
            State::Stopped => Phase::Stopped,
            State::Connecting { .. } => Phase::Connecting,
            State::AwaitingAck { .. } => Phase::AwaitingAck,
            State::Ready { .. } => Phase::Ready,
            State::Waiting { retry_at } => Phase::Waiting { retry_at_ms: retry_at },
        }
    }

    /// The connection whose socket exists (opened, not yet closed).
    fn open_conn(self) -> Option<ConnId> {
        match self {
            State::AwaitingAck { conn, .. } | State::Ready { conn, .. } => Some(conn),
            _ => None,
        }
    }

    fn current_conn(self) -> Option<ConnId> {
        match self {
            State::Connecting { conn, .. } => Some(conn),
            s => s.open_conn(),
        }
    }
}

/// The client. See the module documentation.
#[derive(Debug, Clone)]
pub struct GraphqlWs {
    state: State,
    backoff: Backoff,
    init_payload: Value,
    last_conn: ConnId,
    last_op: u64,
    ops: BTreeMap<String, Kind>,
    /// Credential refusals since the last stable connection.
    refusals: u32,
    /// When the current connection was acknowledged.
    acked_at: Option<u64>,
    effects: VecDeque<Effect>,
}

impl GraphqlWs {
    /// A client that will send `init_payload` in `connection_init` (`Value::Null`: no payload).
    pub fn new(policy: BackoffPolicy, init_payload: Value) -> Self {
        GraphqlWs {
            state: State::Idle,
            backoff: Backoff::new(policy),
            init_payload,
            last_conn: 0,
            last_op: 0,
            ops: BTreeMap::new(),
            refusals: 0,
            acked_at: None,
            effects: VecDeque::new(),
        }
    }

    /// Replaces the init payload for the next `connection_init` (new credentials).
    pub fn set_init_payload(&mut self, payload: Value) {
        self.init_payload = payload;
    }

    pub fn phase(&self) -> Phase {
        self.state.phase()
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready { .. })
    }

    /// The current attempt's number, while there is one.
    pub fn conn(&self) -> Option<ConnId> {
        self.state.current_conn()
    }

    /// Consecutive failed attempts (to store across restarts of the caller).
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// The next effect to carry out.
    pub fn poll(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When to call `handle(.., Input::Timeout)` next.
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            State::Idle | State::Stopped => None,
            State::Connecting { deadline, .. } | State::AwaitingAck { deadline, .. } => Some(deadline),
            State::Ready { last_rx, ping_deadline, .. } => {
                Some(ping_deadline.unwrap_or(last_rx.saturating_add(GQL_KEEPALIVE_IDLE_MS)))
            }
            State::Waiting { retry_at } => Some(retry_at),
        }
    }

    /// Connects, if not started or stopped. Anything else (connected, or backing off) is left alone.
    pub fn start(&mut self, now_ms: u64) {
        if matches!(self.state, State::Idle | State::Stopped) {
            self.connect(now_ms);
        }
    }

    /// Closes the connection for good (until `start`).
    pub fn stop(&mut self) {
        self.end_connection(close::NORMAL, "stopped");
        self.set_state(State::Stopped);
    }

    /// Ends the current connection (closing its socket with `code` and `reason`, if one is open) and backs off: for
    /// the caller's own reasons (the room could not be joined, its subscription ended).
    pub fn restart(&mut self, now_ms: u64, random: u64, code: u16, reason: &str) {
        if matches!(self.state, State::Idle | State::Stopped | State::Waiting { .. }) {
            return;
        }
        self.end_connection(code, reason);
        self.back_off(now_ms, random);
    }

    /// Starts a subscription; answers its id.
    pub fn subscribe(&mut self, op: &Operation) -> Result<String, GqlError> {
        self.operation(op, Kind::Subscription)
    }

    /// Runs a query or mutation; it ends with its one result (`Next` then `Completed`) or an `OperationError`.
    pub fn execute(&mut self, op: &Operation) -> Result<String, GqlError> {
        self.operation(op, Kind::Single)
    }

    /// Stops operation `id` (sends `complete`); no effect follows for it.
    pub fn complete(&mut self, id: &str) {
        if self.ops.remove(id).is_some() {
            if let Some(conn) = self.state.open_conn() {
                self.send(conn, json!({"id": id, "type": "complete"}));
            }
        }
    }

    pub fn handle(&mut self, now_ms: u64, random: u64, input: Input<'_>) {
        match input {
            Input::Timeout => self.on_timeout(now_ms, random),
            Input::Opened { conn } => match self.state {
                State::Connecting { conn: current, .. } if current == conn => {
                    let mut init = Map::new();
                    init.insert("type".into(), "connection_init".into());
                    if !self.init_payload.is_null() {
                        init.insert("payload".into(), self.init_payload.clone());
                    }
                    self.send(conn, Value::Object(init));
                    self.set_state(State::AwaitingAck { conn, deadline: now_ms.saturating_add(GQL_ACK_TIMEOUT_MS) });
                }
                // A socket we gave up on opened after all: close it.
                _ if self.state.current_conn() != Some(conn) => {
                    self.effects.push_back(Effect::Close { conn, code: close::NORMAL, reason: "stale".into() })
                }
                // A repeated report about the current socket.
                _ => {}
            },
            Input::ConnectFailed { conn } => {
                if self.state.current_conn() == Some(conn) {
                    self.end_connection(close::NORMAL, "");
                    self.back_off(now_ms, random);
                }
            }
            Input::Closed { conn, code, .. } => {
                if self.state.current_conn() != Some(conn) {
                    return;
                }
                // The socket is gone: end the operations without closing it again.
                self.lose_operations();
                if code == close::UNAUTHORIZED || code == close::FORBIDDEN {
                    self.on_refused(now_ms, random, code);
                } else {
                    self.back_off(now_ms, random);
                }
            }
            Input::Text { conn, text } => {
                if self.state.open_conn() == Some(conn) {
                    self.on_text(now_ms, random, conn, text);
                }
            }
        }
    }

    fn operation(&mut self, op: &Operation, kind: Kind) -> Result<String, GqlError> {
        let State::Ready { conn, .. } = self.state else { return Err(GqlError::NotReady) };
        if self.ops.len() >= GQL_MAX_OPERATIONS {
            return Err(GqlError::TooManyOperations);
        }
        self.last_op += 1;
        let id = self.last_op.to_string();
        self.ops.insert(id.clone(), kind);
        self.send(conn, json!({"id": id, "type": "subscribe", "payload": op.payload()}));
        Ok(id)
    }

    fn on_timeout(&mut self, now_ms: u64, random: u64) {
        match self.state {
            State::Connecting { deadline, .. } if now_ms >= deadline => {
                // No socket to close; an `Opened` for it later is answered with a close.
                self.back_off(now_ms, random);
            }
            State::AwaitingAck { deadline, .. } if now_ms >= deadline => {
                self.end_connection(close::CONNECTION_ACKNOWLEDGEMENT_TIMEOUT, "Connection acknowledgement timeout");
                self.back_off(now_ms, random);
            }
            State::Ready { ping_deadline: Some(deadline), .. } if now_ms >= deadline => {
                self.end_connection(close::TERMINATED, "keep-alive timeout");
                self.back_off(now_ms, random);
            }
            State::Ready { conn, last_rx, ping_deadline: None }
                if now_ms >= last_rx.saturating_add(GQL_KEEPALIVE_IDLE_MS) =>
            {
                self.send(conn, json!({"type": "ping"}));
                self.state =
                    State::Ready { conn, last_rx, ping_deadline: Some(now_ms.saturating_add(GQL_PONG_TIMEOUT_MS)) };
            }
            State::Waiting { retry_at } if now_ms >= retry_at => self.connect(now_ms),
            _ => {}
        }
    }

    fn on_text(&mut self, now_ms: u64, random: u64, conn: ConnId, text: &str) {
        if text.len() > MAX_EVENT_BYTES {
            self.end_connection(close::MESSAGE_TOO_BIG, "message too big");
            self.back_off(now_ms, random);
            return;
        }
        let Some(msg) = ServerMessage::parse(text) else {
            self.end_connection(close::BAD_RESPONSE, "invalid message");
            self.back_off(now_ms, random);
            return;
        };
        if let State::Ready { .. } = self.state {
            // Anything at all proves the connection alive.
            self.state = State::Ready { conn, last_rx: now_ms, ping_deadline: None };
        }
        match (msg, self.state) {
            (ServerMessage::Ping, _) => self.send(conn, json!({"type": "pong"})),
            (ServerMessage::Pong, _) => {}
            (ServerMessage::Ack, State::AwaitingAck { .. }) => {
                self.backoff.connected(now_ms);
                self.acked_at = Some(now_ms);
                self.set_state(State::Ready { conn, last_rx: now_ms, ping_deadline: None });
            }
            // A repeated ack changes nothing.
            (ServerMessage::Ack, _) => {}
            (_, State::AwaitingAck { .. }) => {
                // Operation messages before the ack: the server does not follow the protocol.
                self.end_connection(close::BAD_RESPONSE, "message before connection_ack");
                self.back_off(now_ms, random);
            }
            (ServerMessage::Next { id, payload }, _) => match self.ops.get(&id) {
                Some(Kind::Subscription) => self.effects.push_back(Effect::Next { id, payload }),
                Some(Kind::Single) => {
                    self.ops.remove(&id);
                    self.effects.push_back(Effect::Next { id: id.clone(), payload });
                    self.effects.push_back(Effect::Completed { id });
                }
                // An operation we completed (or never started): ignored.
                None => {}
            },
            (ServerMessage::Error { id, payload }, _) => {
                if self.ops.remove(&id).is_some() {
                    self.effects.push_back(Effect::OperationError { id, error: OpError::Graphql(payload) });
                }
            }
            (ServerMessage::Complete { id }, _) => {
                if self.ops.remove(&id).is_some() {
                    self.effects.push_back(Effect::Completed { id });
                }
            }
        }
    }

    fn on_refused(&mut self, now_ms: u64, random: u64, code: u16) {
        if self.was_stable(now_ms) {
            self.refusals = 0;
        }
        self.refusals = self.refusals.saturating_add(1);
        self.effects.push_back(Effect::TokenRefused { code });
        if self.refusals == 1 {
            // Counted (so that a refusal right after is waited out), but this once not waited for.
            self.acked_at = None;
            let _ = self.backoff.failed(now_ms, random);
            self.connect(now_ms);
        } else {
            self.back_off(now_ms, random);
        }
    }

    fn was_stable(&self, now_ms: u64) -> bool {
        self.acked_at.is_some_and(|at| now_ms.saturating_sub(at) >= self.backoff.policy.stable_ms)
    }

    fn connect(&mut self, now_ms: u64) {
        self.last_conn += 1;
        let conn = self.last_conn;
        self.set_state(State::Connecting { conn, deadline: now_ms.saturating_add(GQL_CONNECT_TIMEOUT_MS) });
        self.effects.push_back(Effect::Connect { conn });
    }

    fn back_off(&mut self, now_ms: u64, random: u64) {
        self.lose_operations();
        if self.was_stable(now_ms) {
            self.refusals = 0;
        }
        self.acked_at = None;
        let wait = self.backoff.failed(now_ms, random);
        self.set_state(State::Waiting { retry_at: now_ms.saturating_add(wait) });
    }

    /// Closes the open socket, if any, and ends the operations.
    fn end_connection(&mut self, code: u16, reason: &str) {
        if let Some(conn) = self.state.open_conn() {
            self.effects.push_back(Effect::Close { conn, code, reason: close_reason(reason) });
        }
        self.lose_operations();
    }

    fn lose_operations(&mut self) {
        for (id, _) in std::mem::take(&mut self.ops) {
            self.effects.push_back(Effect::OperationError { id, error: OpError::ConnectionLost });
        }
    }

    fn set_state(&mut self, state: State) {
        let changed = self.state.phase() != state.phase();
        self.state = state;
        if changed {
            self.effects.push_back(Effect::StateChanged(state.phase()));
        }
    }

    fn send(&mut self, conn: ConnId, message: Value) {
        self.effects.push_back(Effect::Send { conn, text: message.to_string() });
    }
}

/// A close reason cut to what a close frame may carry (never inside a character).
fn close_reason(reason: &str) -> String {
    let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

/// What a server may send.
#[derive(Debug, Clone, PartialEq)]
enum ServerMessage {
    Ack,
    Ping,
    Pong,
    Next { id: String, payload: Value },
    Error { id: String, payload: Value },
    Complete { id: String },
}

impl ServerMessage {
    fn parse(text: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(text).ok()?;
        let o = v.as_object()?;
        let id = || o.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        match o.get("type")?.as_str()? {
            "connection_ack" => Some(ServerMessage::Ack),
            "ping" => Some(ServerMessage::Ping),
            "pong" => Some(ServerMessage::Pong),
            "next" => {
                let payload = o.get("payload").filter(|p| p.is_object())?.clone();
                Some(ServerMessage::Next { id: id()?, payload })
            }
            "error" => {
                Some(ServerMessage::Error { id: id()?, payload: o.get("payload").cloned().unwrap_or(Value::Null) })
            }
            "complete" => Some(ServerMessage::Complete { id: id()? }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: BackoffPolicy = BackoffPolicy::BRIDGE;

    fn drain(c: &mut GraphqlWs) -> Vec<Effect> {
        std::iter::from_fn(|| c.poll()).collect()
    }

    fn send(conn: ConnId, text: &str) -> Effect {
        Effect::Send { conn, text: text.into() }
    }

    fn op() -> Operation {
        Operation {
            query: "subscription S($r: String!) { s(r: $r) }".into(),
            operation_name: Some("S".into()),
            variables: json!({"r": "@x"}),
        }
    }

    /// A client that is connected and acknowledged at t = 0 on connection 1.
    fn ready() -> GraphqlWs {
        let mut c = GraphqlWs::new(POLICY, json!({"token": "t"}));
        c.start(0);
        c.handle(0, 0, Input::Opened { conn: 1 });
        c.handle(0, 0, Input::Text { conn: 1, text: r#"{"type":"connection_ack"}"# });
        drain(&mut c);
        c
    }

    #[test]
    fn handshake() {
        let mut c = GraphqlWs::new(POLICY, json!({"token": "t"}));
        assert_eq!(c.poll_timeout(), None);
        c.start(100);
        assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Connecting), Effect::Connect { conn: 1 }]);
        assert_eq!(c.poll_timeout(), Some(100 + GQL_CONNECT_TIMEOUT_MS));
        c.handle(200, 0, Input::Opened { conn: 1 });
        assert_eq!(
            drain(&mut c),
            vec![
                send(1, r#"{"payload":{"token":"t"},"type":"connection_init"}"#),
                Effect::StateChanged(Phase::AwaitingAck)
            ]
        );
        assert_eq!(c.poll_timeout(), Some(200 + GQL_ACK_TIMEOUT_MS));
        c.handle(300, 0, Input::Text { conn: 1, text: r#"{"type":"connection_ack","payload":{}}"# });
        assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Ready)]);
        assert!(c.is_ready());
        assert_eq!(c.poll_timeout(), Some(300 + GQL_KEEPALIVE_IDLE_MS));
        // A repeated start changes nothing.
        c.start(400);
        assert_eq!(drain(&mut c), vec![]);
    }

    #[test]
    fn no_payload_means_a_bare_init() {
        let mut c = GraphqlWs::new(POLICY, Value::Null);
        c.start(0);
        c.handle(0, 0, Input::Opened { conn: 1 });
        assert_eq!(drain(&mut c)[2], send(1, r#"{"type":"connection_init"}"#));
    }

    #[test]
    fn no_ack_within_the_timeout_closes_and_backs_off() {
        let mut c = GraphqlWs::new(POLICY, Value::Null);
        c.start(0);
        c.handle(0, 0, Input::Opened { conn: 1 });
        drain(&mut c);
        c.handle(GQL_ACK_TIMEOUT_MS - 1, 0, Input::Timeout);
        assert_eq!(drain(&mut c), vec![]);
        c.handle(GQL_ACK_TIMEOUT_MS, 0, Input::Timeout);
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::Close {
                    conn: 1,
                    code: close::CONNECTION_ACKNOWLEDGEMENT_TIMEOUT,
                    reason: "Connection acknowledgement timeout".into()
                },
                Effect::StateChanged(Phase::Waiting { retry_at_ms: GQL_ACK_TIMEOUT_MS + 500 })
            ]
        );
        // The wait runs out: the next attempt is connection 2.
        assert_eq!(c.poll_timeout(), Some(GQL_ACK_TIMEOUT_MS + 500));
        c.handle(GQL_ACK_TIMEOUT_MS + 500, 0, Input::Timeout);
        assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Connecting), Effect::Connect { conn: 2 }]);
    }

    #[test]
    fn a_socket_that_never_opens_times_out_and_a_late_open_is_closed() {
        let mut c = GraphqlWs::new(POLICY, Value::Null);
        c.start(0);
        drain(&mut c);
        c.handle(GQL_CONNECT_TIMEOUT_MS, 7, Input::Timeout);
        assert_eq!(
            drain(&mut c),
            vec![Effect::StateChanged(Phase::Waiting { retry_at_ms: GQL_CONNECT_TIMEOUT_MS + 507 })]
        );
        c.handle(GQL_CONNECT_TIMEOUT_MS + 1, 0, Input::Opened { conn: 1 });
        assert_eq!(drain(&mut c), vec![Effect::Close { conn: 1, code: close::NORMAL, reason: "stale".into() }]);
        assert_eq!(c.phase(), Phase::Waiting { retry_at_ms: GQL_CONNECT_TIMEOUT_MS + 507 });
    }

    #[test]
    fn a_failed_attempt_backs_off_with_growing_waits() {
        let mut c = GraphqlWs::new(POLICY, Value::Null);
        c.start(0);
        let mut now = 0;
        let mut waits = vec![];
        for conn in 1..=8 {
            c.handle(now, 0, Input::ConnectFailed { conn });
            let Phase::Waiting { retry_at_ms } = c.phase() else { panic!("{:?}", c.phase()) };
            waits.push(retry_at_ms - now);
            now = retry_at_ms;
            c.handle(now, 0, Input::Timeout);
            assert_eq!(c.conn(), Some(conn + 1));
        }
        assert_eq!(waits, vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(c.failures(), 8);
    }

    #[test]
    fn a_stable_connection_resets_the_backoff() {
        // Up for less than stable_ms: the count goes on (second step).
        let mut c = ready();
        c.handle(0, 0, Input::Closed { conn: 1, code: close::ABNORMAL, reason: "" });
        c.handle(500, 0, Input::Timeout);
        c.handle(500, 0, Input::Opened { conn: 2 });
        c.handle(500, 0, Input::Text { conn: 2, text: r#"{"type":"connection_ack"}"# });
        c.handle(500 + POLICY.stable_ms - 1, 0, Input::Closed { conn: 2, code: close::ABNORMAL, reason: "" });
        assert_eq!(c.phase(), Phase::Waiting { retry_at_ms: 500 + POLICY.stable_ms - 1 + 1_000 });
        // Up for exactly stable_ms: the next failure waits the first step again.
        let mut c = ready();
        c.handle(0, 0, Input::Closed { conn: 1, code: close::INTERNAL_SERVER_ERROR, reason: "" });
        c.handle(500, 0, Input::Timeout);
        c.handle(500, 0, Input::Opened { conn: 2 });
        c.handle(500, 0, Input::Text { conn: 2, text: r#"{"type":"connection_ack"}"# });
        c.handle(500 + POLICY.stable_ms, 0, Input::Closed { conn: 2, code: close::ABNORMAL, reason: "" });
        assert_eq!(c.phase(), Phase::Waiting { retry_at_ms: 500 + POLICY.stable_ms + 500 });
        assert_eq!(c.failures(), 1);
    }

    #[test]
    fn operations_get_unique_monotonic_ids_and_their_results() {
        let mut c = ready();
        let mut idle = GraphqlWs::new(POLICY, Value::Null);
        assert_eq!(idle.subscribe(&op()), Err(GqlError::NotReady));
        assert_eq!(c.subscribe(&op()), Ok("1".into()));
        let m = Operation { query: "mutation { m { ok } }".into(), operation_name: None, variables: Value::Null };
        assert_eq!(c.execute(&m), Ok("2".into()));
        assert_eq!(
            drain(&mut c),
            vec![
                send(
                    1,
                    r#"{"id":"1","payload":{"operationName":"S","query":"subscription S($r: String!) { s(r: $r) }","variables":{"r":"@x"}},"type":"subscribe"}"#
                ),
                send(1, r#"{"id":"2","payload":{"query":"mutation { m { ok } }"},"type":"subscribe"}"#),
            ]
        );
        c.handle(1, 0, Input::Text { conn: 1, text: r#"{"id":"1","type":"next","payload":{"data":{"s":1}}}"# });
        c.handle(2, 0, Input::Text { conn: 1, text: r#"{"id":"1","type":"next","payload":{"data":{"s":2}}}"# });
        // The mutation's one result completes it; the server's own complete after it is ignored.
        c.handle(
            3,
            0,
            Input::Text { conn: 1, text: r#"{"id":"2","type":"next","payload":{"data":{"m":{"ok":true}}}}"# },
        );
        c.handle(4, 0, Input::Text { conn: 1, text: r#"{"id":"2","type":"complete"}"# });
        c.handle(5, 0, Input::Text { conn: 1, text: r#"{"id":"1","type":"complete"}"# });
        // Frames for operations that are over, or never were, are ignored.
        c.handle(6, 0, Input::Text { conn: 1, text: r#"{"id":"1","type":"next","payload":{"data":{}}}"# });
        c.handle(6, 0, Input::Text { conn: 1, text: r#"{"id":"99","type":"error","payload":[]}"# });
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::Next { id: "1".into(), payload: json!({"data": {"s": 1}}) },
                Effect::Next { id: "1".into(), payload: json!({"data": {"s": 2}}) },
                Effect::Next { id: "2".into(), payload: json!({"data": {"m": {"ok": true}}}) },
                Effect::Completed { id: "2".into() },
                Effect::Completed { id: "1".into() },
            ]
        );
        assert_eq!(c.subscribe(&op()), Ok("3".into()));
        c.handle(7, 0, Input::Text { conn: 1, text: r#"{"id":"3","type":"error","payload":[{"message":"no"}]}"# });
        assert_eq!(
            drain(&mut c)[1..],
            [Effect::OperationError { id: "3".into(), error: OpError::Graphql(json!([{"message": "no"}])) }]
        );
    }

    #[test]
    fn completing_an_operation_tells_the_server_once() {
        let mut c = ready();
        let id = c.subscribe(&op()).unwrap();
        drain(&mut c);
        c.complete(&id);
        c.complete(&id);
        assert_eq!(drain(&mut c), vec![send(1, r#"{"id":"1","type":"complete"}"#)]);
    }

    #[test]
    fn the_operation_limit_is_enforced() {
        let mut c = ready();
        for _ in 0..GQL_MAX_OPERATIONS {
            assert!(c.subscribe(&op()).is_ok());
        }
        assert_eq!(c.subscribe(&op()), Err(GqlError::TooManyOperations));
    }

    #[test]
    fn operations_end_when_the_connection_drops_and_ids_are_never_reused() {
        let mut c = ready();
        c.subscribe(&op()).unwrap();
        c.execute(&op()).unwrap();
        drain(&mut c);
        c.handle(10, 0, Input::Closed { conn: 1, code: close::ABNORMAL, reason: "" });
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::OperationError { id: "1".into(), error: OpError::ConnectionLost },
                Effect::OperationError { id: "2".into(), error: OpError::ConnectionLost },
                Effect::StateChanged(Phase::Waiting { retry_at_ms: 510 }),
            ]
        );
        c.handle(510, 0, Input::Timeout);
        c.handle(510, 0, Input::Opened { conn: 2 });
        c.handle(510, 0, Input::Text { conn: 2, text: r#"{"type":"connection_ack"}"# });
        assert_eq!(c.subscribe(&op()), Ok("3".into()));
    }

    #[test]
    fn ping_pong_both_ways_and_a_silent_server_is_dropped() {
        let mut c = ready();
        // The server pings: we answer.
        c.handle(1_000, 0, Input::Text { conn: 1, text: r#"{"type":"ping"}"# });
        assert_eq!(drain(&mut c), vec![send(1, r#"{"type":"pong"}"#)]);
        let idle_at = 1_000 + GQL_KEEPALIVE_IDLE_MS;
        assert_eq!(c.poll_timeout(), Some(idle_at));
        c.handle(idle_at - 1, 0, Input::Timeout);
        assert_eq!(drain(&mut c), vec![]);
        c.handle(idle_at, 0, Input::Timeout);
        assert_eq!(drain(&mut c), vec![send(1, r#"{"type":"ping"}"#)]);
        assert_eq!(c.poll_timeout(), Some(idle_at + GQL_PONG_TIMEOUT_MS));
        // The pong comes: quiet again until the next idle period.
        c.handle(idle_at + 5, 0, Input::Text { conn: 1, text: r#"{"type":"pong"}"# });
        assert_eq!(c.poll_timeout(), Some(idle_at + 5 + GQL_KEEPALIVE_IDLE_MS));
        // Next time nothing answers.
        let ping_at = idle_at + 5 + GQL_KEEPALIVE_IDLE_MS;
        c.handle(ping_at, 0, Input::Timeout);
        drain(&mut c);
        c.handle(ping_at + GQL_PONG_TIMEOUT_MS, 0, Input::Timeout);
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::Close { conn: 1, code: close::TERMINATED, reason: "keep-alive timeout".into() },
                Effect::StateChanged(Phase::Waiting { retry_at_ms: ping_at + GQL_PONG_TIMEOUT_MS + 500 })
            ]
        );
    }

    #[test]
    fn a_refused_token_logs_in_again_once_then_backs_off() {
        let mut c = ready();
        c.handle(100, 0, Input::Closed { conn: 1, code: close::FORBIDDEN, reason: "Forbidden" });
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::TokenRefused { code: close::FORBIDDEN },
                Effect::StateChanged(Phase::Connecting),
                Effect::Connect { conn: 2 }
            ]
        );
        c.set_init_payload(json!({"token": "new"}));
        c.handle(200, 0, Input::Opened { conn: 2 });
        assert_eq!(drain(&mut c)[0], send(2, r#"{"payload":{"token":"new"},"type":"connection_init"}"#));
        // Refused again (before any ack): now it waits, the second step of the backoff.
        c.handle(300, 0, Input::Closed { conn: 2, code: close::UNAUTHORIZED, reason: "" });
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::TokenRefused { code: close::UNAUTHORIZED },
                Effect::StateChanged(Phase::Waiting { retry_at_ms: 1_300 })
            ]
        );
        // Even acknowledged in between, a refusal soon after is waited out.
        c.handle(1_300, 0, Input::Timeout);
        c.handle(1_300, 0, Input::Opened { conn: 3 });
        c.handle(1_300, 0, Input::Text { conn: 3, text: r#"{"type":"connection_ack"}"# });
        drain(&mut c);
        c.handle(1_400, 0, Input::Closed { conn: 3, code: close::FORBIDDEN, reason: "" });
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::TokenRefused { code: close::FORBIDDEN },
                Effect::StateChanged(Phase::Waiting { retry_at_ms: 1_400 + 2_000 })
            ]
        );
    }

    #[test]
    fn after_a_stable_connection_a_refusal_is_again_retried_at_once() {
        let mut c = ready();
        c.handle(0, 0, Input::Closed { conn: 1, code: close::FORBIDDEN, reason: "" });
        c.handle(0, 0, Input::Opened { conn: 2 });
        c.handle(0, 0, Input::Text { conn: 2, text: r#"{"type":"connection_ack"}"# });
        drain(&mut c);
        c.handle(POLICY.stable_ms, 0, Input::Closed { conn: 2, code: close::UNAUTHORIZED, reason: "" });
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::TokenRefused { code: close::UNAUTHORIZED },
                Effect::StateChanged(Phase::Connecting),
                Effect::Connect { conn: 3 }
            ]
        );
    }

    #[test]
    fn every_other_close_code_backs_off() {
        for code in [
            close::BAD_REQUEST,
            close::SUBPROTOCOL_NOT_ACCEPTABLE,
            close::CONNECTION_INITIALISATION_TIMEOUT,
            close::SUBSCRIBER_ALREADY_EXISTS,
            close::TOO_MANY_INITIALISATION_REQUESTS,
            close::INTERNAL_SERVER_ERROR,
            close::ABNORMAL,
            close::NORMAL,
            1001,
            4000,
        ] {
            let mut c = ready();
            c.handle(50, 0, Input::Closed { conn: 1, code, reason: "x" });
            assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Waiting { retry_at_ms: 550 })], "code {code}");
        }
    }

    #[test]
    fn a_close_during_the_handshake_backs_off_too() {
        let mut c = GraphqlWs::new(POLICY, Value::Null);
        c.start(0);
        c.handle(0, 0, Input::Opened { conn: 1 });
        drain(&mut c);
        c.handle(5, 0, Input::Closed { conn: 1, code: close::SUBPROTOCOL_NOT_ACCEPTABLE, reason: "" });
        assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Waiting { retry_at_ms: 505 })]);
    }

    #[test]
    fn inputs_about_an_old_connection_are_ignored() {
        let mut c = ready();
        c.handle(10, 0, Input::Closed { conn: 1, code: close::ABNORMAL, reason: "" });
        c.handle(510, 0, Input::Timeout);
        drain(&mut c);
        c.handle(511, 0, Input::Closed { conn: 1, code: close::ABNORMAL, reason: "" });
        c.handle(511, 0, Input::Text { conn: 1, text: r#"{"type":"connection_ack"}"# });
        c.handle(511, 0, Input::ConnectFailed { conn: 1 });
        assert_eq!(drain(&mut c), vec![]);
        assert_eq!(c.phase(), Phase::Connecting);
    }

    #[test]
    fn bad_server_messages_close_with_4004() {
        for text in [
            "nope",
            "[]",
            r#"{"type":"subscribe","id":"1"}"#,
            r#"{"type":"next","id":"1"}"#,
            r#"{"type":"next","payload":{}}"#,
            r#"{"type":"complete","id":""}"#,
            r#"{"type":5}"#,
        ] {
            let mut c = ready();
            c.handle(5, 0, Input::Text { conn: 1, text });
            assert_eq!(
                drain(&mut c),
                vec![
                    Effect::Close { conn: 1, code: close::BAD_RESPONSE, reason: "invalid message".into() },
                    Effect::StateChanged(Phase::Waiting { retry_at_ms: 505 })
                ],
                "{text}"
            );
        }
        let mut c = GraphqlWs::new(POLICY, Value::Null);
        c.start(0);
        c.handle(0, 0, Input::Opened { conn: 1 });
        drain(&mut c);
        c.handle(1, 0, Input::Text { conn: 1, text: r#"{"type":"next","id":"1","payload":{}}"# });
        assert_eq!(
            drain(&mut c)[0],
            Effect::Close { conn: 1, code: close::BAD_RESPONSE, reason: "message before connection_ack".into() }
        );
        let mut c = ready();
        let big = format!(r#"{{"type":"ping","x":"{}"}}"#, "a".repeat(MAX_EVENT_BYTES));
        c.handle(1, 0, Input::Text { conn: 1, text: &big });
        assert_eq!(
            drain(&mut c)[0],
            Effect::Close { conn: 1, code: close::MESSAGE_TOO_BIG, reason: "message too big".into() }
        );
    }

    #[test]
    fn stop_and_restart() {
        let mut c = ready();
        c.subscribe(&op()).unwrap();
        drain(&mut c);
        c.restart(10, 0, 4000, "join failed");
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::Close { conn: 1, code: 4000, reason: "join failed".into() },
                Effect::OperationError { id: "1".into(), error: OpError::ConnectionLost },
                Effect::StateChanged(Phase::Waiting { retry_at_ms: 510 })
            ]
        );
        c.restart(20, 0, 4000, "again");
        assert_eq!(drain(&mut c), vec![], "nothing to restart while waiting");
        c.stop();
        assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Stopped)]);
        assert_eq!(c.poll_timeout(), None);
        c.handle(10_000, 0, Input::Timeout);
        assert_eq!(drain(&mut c), vec![]);
        c.start(10_000);
        assert_eq!(drain(&mut c), vec![Effect::StateChanged(Phase::Connecting), Effect::Connect { conn: 2 }]);
        let mut c = ready();
        c.stop();
        assert_eq!(
            drain(&mut c),
            vec![
                Effect::Close { conn: 1, code: close::NORMAL, reason: "stopped".into() },
                Effect::StateChanged(Phase::Stopped)
            ]
        );
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close_reason(&"é".repeat(100)).len(), 122);
        assert_eq!(close_reason("short"), "short");
    }

    proptest! {
        /// Whatever happens, in any order: no panic, a timeout is always in the future of the last input or absent
        /// only when idle/stopped, a wait never exceeds the cap, and effects only name the current or an older conn.
        #[test]
        fn random_inputs_keep_the_invariants(steps in proptest::collection::vec((0u8..8, 0u64..30_000, any::<u64>(), 0u8..6), 1..60)) {
            let mut c = GraphqlWs::new(POLICY, json!({"token": "t"}));
            c.start(0);
            let mut now = 0u64;
            let texts = [
                r#"{"type":"connection_ack"}"#, r#"{"type":"ping"}"#, r#"{"type":"pong"}"#,
                r#"{"id":"1","type":"next","payload":{"data":{}}}"#, r#"{"id":"1","type":"complete"}"#, "junk",
            ];
            for (kind, dt, random, pick) in steps {
                now += dt;
                let before = c.phase();
                let conn = c.conn().unwrap_or(0);
                let text = texts[usize::from(pick) % texts.len()];
                let codes = [4401u16, 4403, 4500, 1006, 4400, 1000];
                let code = codes[usize::from(pick) % codes.len()];
                match kind {
                    0 => c.handle(now, random, Input::Opened { conn }),
                    1 | 2 => c.handle(now, random, Input::Text { conn, text }),
                    3 => c.handle(now, random, Input::Closed { conn, code, reason: "" }),
                    4 => c.handle(now, random, Input::ConnectFailed { conn }),
                    5 => { let _ = c.subscribe(&op()); }
                    _ => if let Some(t) = c.poll_timeout() { now = now.max(t); c.handle(now, random, Input::Timeout) },
                }
                for e in drain(&mut c) {
                    match e {
                        Effect::Connect { conn } | Effect::Send { conn, .. } | Effect::Close { conn, .. } => {
                            prop_assert!(conn <= c.last_conn)
                        }
                        _ => {}
                    }
                }
                match c.phase() {
                    Phase::Waiting { retry_at_ms } if before != c.phase() => {
                        prop_assert!(retry_at_ms > now && retry_at_ms - now <= POLICY.cap_ms)
                    }
                    Phase::Idle | Phase::Stopped => prop_assert!(c.poll_timeout().is_none()),
                    _ => prop_assert!(c.poll_timeout().is_some()),
                }
            }
        }
    }
}
