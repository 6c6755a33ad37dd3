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
    /// The user ids we posted as before (Kosmi logs in anew as another anonymous user): what they
    /// said is ours too, e.g. in the history a room sends on join. At most `MAX_PAST_OWN_IDS`.
    past: VecDeque<String>,
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
        if self.past.iter().any(|p| p == user_id) {
            return true;
        }
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

    /// A new login is a new user (Kosmi's anonymous logins): the current one is kept among the past
    /// ones (its messages are still ours), and the new one is learned from its first echo.
    pub fn forget_user(&mut self) {
        if let Some(id) = self.own_user_id.take() {
            self.remember(id);
        }
    }

    /// Every user id we are known to have posted as (current first), to keep across restarts.
    pub fn own_user_ids(&self) -> Vec<String> {
        self.own_user_id.iter().chain(self.past.iter()).cloned().collect()
    }

    /// Ids we posted as before this instance (from storage): their messages are ours.
    pub fn with_past_user_ids(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        for id in ids {
            self.remember(id);
        }
        self
    }

    fn remember(&mut self, id: String) {
        if self.past.contains(&id) {
            return;
        }
        if self.past.len() >= MAX_PAST_OWN_IDS {
            self.past.pop_back();
        }
        self.past.push_front(id);
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

    #[test]
    fn the_ids_we_posted_as_stay_ours_across_logins_and_restarts() {
        let mut f = EchoFilter::default();
        f.sent(0, "<alice> hi");
        assert!(f.is_echo(1, "anon-1", "<alice> hi"));
        f.forget_user(); // a new anonymous login
        assert!(f.is_echo(2, "anon-1", "<alice> an old one, in the history on join"));
        assert!(!f.is_echo(2, "viewer", "hello"));
        // A restart: what storage kept.
        let kept = f.own_user_ids();
        assert_eq!(kept, vec!["anon-1".to_string()]);
        let mut g = EchoFilter::default().with_past_user_ids(kept);
        assert!(g.is_echo(3, "anon-1", "<bob> said before the restart"));
        // Bounded: the oldest ids go first.
        let mut h = EchoFilter::default();
        for i in 0..=MAX_PAST_OWN_IDS {
            h = h.with_past_user_ids([format!("anon-{i}")]);
        }
        assert_eq!(h.own_user_ids().len(), MAX_PAST_OWN_IDS);
        assert!(!h.is_echo(4, "anon-0", "x") && h.is_echo(4, &format!("anon-{MAX_PAST_OWN_IDS}"), "x"));
    }
}
