//! What goes in and out: the phase, inputs, effects, operations and their errors.

use super::ConnId;
use crate::limits::GQL_MAX_OPERATIONS;
use serde_json::{Map, Value};
use std::fmt;

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
    pub(super) fn payload(&self) -> Value {
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
