//! The connection's states, and what kind an operation is.

use super::{ConnId, Phase};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Subscription,
    /// A query or mutation: one result, then done.
    Single,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Idle,
    Stopped,
    Connecting { conn: ConnId, deadline: u64 },
    AwaitingAck { conn: ConnId, deadline: u64 },
    Ready { conn: ConnId, last_rx: u64, ping_deadline: Option<u64> },
    Waiting { retry_at: u64 },
}

impl State {
    pub(super) fn phase(self) -> Phase {
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
    pub(super) fn open_conn(self) -> Option<ConnId> {
        match self {
            State::AwaitingAck { conn, .. } | State::Ready { conn, .. } => Some(conn),
            _ => None,
        }
    }

    pub(super) fn current_conn(self) -> Option<ConnId> {
        match self {
            State::Connecting { conn, .. } => Some(conn),
            s => s.open_conn(),
        }
    }
}
