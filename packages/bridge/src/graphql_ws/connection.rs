//! A connection's life inside the client: operations sent, timers, frames received, refusals and backoff.

use super::server_message::ServerMessage;
use super::state::{Kind, State};
use super::{close, ConnId, Effect, GqlError, GraphqlWs, OpError, Operation};
use crate::limits::{
    GQL_CONNECT_TIMEOUT_MS, GQL_KEEPALIVE_IDLE_MS, GQL_MAX_OPERATIONS, GQL_PONG_TIMEOUT_MS, MAX_CLOSE_REASON_BYTES,
    MAX_EVENT_BYTES,
};
use serde_json::{json, Value};

impl GraphqlWs {
    pub(super) fn operation(&mut self, op: &Operation, kind: Kind) -> Result<String, GqlError> {
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

    pub(super) fn on_timeout(&mut self, now_ms: u64, random: u64) {
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

    pub(super) fn on_text(&mut self, now_ms: u64, random: u64, conn: ConnId, text: &str) {
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

    pub(super) fn on_refused(&mut self, now_ms: u64, random: u64, code: u16) {
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

    pub(super) fn was_stable(&self, now_ms: u64) -> bool {
        self.acked_at.is_some_and(|at| now_ms.saturating_sub(at) >= self.backoff.policy.stable_ms)
    }

    pub(super) fn connect(&mut self, now_ms: u64) {
        self.last_conn += 1;
        let conn = self.last_conn;
        self.set_state(State::Connecting { conn, deadline: now_ms.saturating_add(GQL_CONNECT_TIMEOUT_MS) });
        self.effects.push_back(Effect::Connect { conn });
    }

    pub(super) fn back_off(&mut self, now_ms: u64, random: u64) {
        self.lose_operations();
        if self.was_stable(now_ms) {
            self.refusals = 0;
        }
        self.acked_at = None;
        let wait = self.backoff.failed(now_ms, random);
        self.set_state(State::Waiting { retry_at: now_ms.saturating_add(wait) });
    }

    /// Closes the open socket, if any, and ends the operations.
    pub(super) fn end_connection(&mut self, code: u16, reason: &str) {
        if let Some(conn) = self.state.open_conn() {
            self.effects.push_back(Effect::Close { conn, code, reason: close_reason(reason) });
        }
        self.lose_operations();
    }

    pub(super) fn lose_operations(&mut self) {
        for (id, _) in std::mem::take(&mut self.ops) {
            self.effects.push_back(Effect::OperationError { id, error: OpError::ConnectionLost });
        }
    }

    pub(super) fn set_state(&mut self, state: State) {
        let changed = self.state.phase() != state.phase();
        self.state = state;
        if changed {
            self.effects.push_back(Effect::StateChanged(state.phase()));
        }
    }

    pub(super) fn send(&mut self, conn: ConnId, message: Value) {
        self.effects.push_back(Effect::Send { conn, text: message.to_string() });
    }
}

/// A close reason cut to what a close frame may carry (never inside a character).
pub(super) fn close_reason(reason: &str) -> String {
    let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}
