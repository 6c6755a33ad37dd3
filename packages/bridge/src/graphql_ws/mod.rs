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
//!
//! Files: `interface` (inputs, effects, operations, errors), `state` (the connection's states), `client` (the
//! caller's calls), `connection` (frames, timers, refusals and backoff), `server_message` (what a server may send).

mod client;
mod connection;
mod interface;
mod server_message;
mod state;
#[cfg(test)]
mod tests;

pub use interface::{Effect, GqlError, Input, OpError, Operation, Phase};

use serde_json::Value;
use state::{Kind, State};
use std::collections::{BTreeMap, VecDeque};
use switchboard_core::backoff::Backoff;

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
