//! The caller's calls: construction, what the client is doing, start / stop / restart, operations, inputs.

use super::state::{Kind, State};
use super::{close, ConnId, Effect, GqlError, GraphqlWs, Input, Operation, Phase};
use crate::limits::{GQL_ACK_TIMEOUT_MS, GQL_KEEPALIVE_IDLE_MS};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use switchboard_core::backoff::{Backoff, BackoffPolicy};

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
}
