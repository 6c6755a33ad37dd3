//! Echo suppression: recognizing our own sends coming back. A room shows what the bridge posts to
//! everyone in it, the bridge's own subscription included, so each text we send is remembered
//! (at most `ECHO_MEMORY`, for `ECHO_WINDOW_MS`); a message with one of those texts teaches us our
//! own user id on the platform, and from then on every message of that user is ours (dropped, not
//! brought in as a new message). Used by the Kosmi relay and the Kick bridge's outbound relay.

use crate::limits::*;
use std::collections::VecDeque;

/// Recognizes our own messages coming back (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EchoFilter {
    /// Bodies sent and not yet seen again, with when they were sent; oldest first.
    pub(crate) sent: VecDeque<(String, u64)>,
    /// Our user id on the platform, once an echo taught it.
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

    /// A send of `body` failed: it will not come back (the newest such body is forgotten).
    pub fn unsent(&mut self, body: &str) {
        let body = body.trim();
        if let Some(i) = self.sent.iter().rposition(|(b, _)| b == body) {
            self.sent.remove(i);
        }
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

    /// A new login is a new user (Kosmi's anonymous logins).
    pub fn forget_user(&mut self) {
        self.own_user_id = None;
    }

    fn expire(&mut self, now_ms: u64) {
        self.sent.retain(|(_, at)| now_ms.saturating_sub(*at) < ECHO_WINDOW_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_that_failed_is_not_taken_for_an_echo() {
        let mut f = EchoFilter::default();
        f.sent(0, "<alice> hi");
        f.sent(1, "<alice> hi");
        f.unsent("<alice> hi");
        // One of the two went: its echo is ours; the failed one cannot come back.
        assert!(f.is_echo(2, "bot", "<alice> hi"));
        f.forget_user();
        assert!(!f.is_echo(3, "viewer", "<alice> hi"), "a viewer saying the same is not us");
        f.unsent("never sent");
        assert!(f.sent.is_empty());
    }
}
