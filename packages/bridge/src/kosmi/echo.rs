//! Echo suppression: recognizing our own sends coming back (see the module documentation).

use crate::limits::*;
use std::collections::VecDeque;

/// Recognizes our own messages coming back (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EchoFilter {
    /// Bodies sent and not yet seen again, with when they were sent; oldest first.
    pub(super) sent: VecDeque<(String, u64)>,
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
