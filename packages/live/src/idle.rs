//! The publisher's idle timeout and the publish's longest duration. The worker pumps the client's
//! body into the stream it forwards to the channel and ends that stream itself when the client sends
//! nothing for the idle timeout (`"ended": "idle_timeout"`) or the publish has run for its maximum
//! duration (`"ended": "max_duration"`).

use crate::Ended;

/// The time since the publisher's last chunk, and since the publish started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleTimer {
    idle_ms: i64,
    last_ms: i64,
    /// When the publish must end whatever arrives.
    end_ms: i64,
}

impl IdleTimer {
    /// A body that started at `now_ms`; `idle_ms` is at least 1, and so is `max_ms`.
    pub fn new(idle_ms: i64, max_ms: i64, now_ms: i64) -> Self {
        IdleTimer { idle_ms: idle_ms.max(1), last_ms: now_ms, end_ms: now_ms.saturating_add(max_ms.max(1)) }
    }

    /// Why the body is ended at `now_ms` (when [`IdleTimer::expired`]): its maximum duration, or idleness.
    pub fn ending(&self, now_ms: i64) -> Ended {
        if now_ms >= self.end_ms {
            Ended::MaxDuration
        } else {
            Ended::IdleTimeout
        }
    }

    /// A chunk arrived.
    pub fn chunk(&mut self, now_ms: i64) {
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// When the body is ended if nothing arrives meanwhile.
    pub fn deadline(&self) -> i64 {
        self.last_ms.saturating_add(self.idle_ms).min(self.end_ms)
    }

    /// How long to wait for the next chunk (0: the body is idle now).
    pub fn wait_ms(&self, now_ms: i64) -> u64 {
        self.deadline().saturating_sub(now_ms).max(0) as u64
    }

    /// Whether the body has been silent for the idle timeout.
    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.deadline()
    }
}
