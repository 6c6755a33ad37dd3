//! Hubs a delivery failed to reach. The events a failed call carried are lost to that hub, and the
//! events that follow would reach it with a hole before them, so the hub is owed one
//! `context.resync` notice per context it lost (`docs/events.md`, "Lost events"): until the notice
//! is taken, the hub is sent nothing else of this conversation (what it misses meanwhile is what
//! the notice covers), and the notice is sent again with backoff ([`HUB_RETRY_BACKOFF`]). After
//! [`HUB_RETRY_MAX_ATTEMPTS`] failed attempts the hub is given up on (the shell logs it) and
//! later events go to it again. At most [`MAX_OWED_HUBS`] hubs are owed at once: past that, the
//! oldest debt is given up on.
//!
//! Memory only, like the outbox it completes: an object that is evicted forgets both.

use crate::outbox::RESYNC_EVENT;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use switchboard_core::backoff::{Backoff, BackoffPolicy};
use switchboard_core::hub::Delivery;

/// A notice that could not be delivered is tried again after 1 s, doubling to 1 min...
pub const HUB_RETRY_BACKOFF: BackoffPolicy = BackoffPolicy { initial_ms: 1_000, cap_ms: 60_000, stable_ms: 0 };
/// ...this many attempts in all (about 5 minutes), then given up on.
pub const HUB_RETRY_MAX_ATTEMPTS: u32 = 10;
/// Hubs owed a notice at once (each is one member's hub watching this conversation).
pub const MAX_OWED_HUBS: usize = 1_000;

#[derive(Debug, Clone, PartialEq)]
struct Owed {
    contexts: BTreeSet<String>,
    failures: u32,
    next_at: i64,
    /// When the debt began (the oldest is given up on first when too many are owed).
    since: i64,
}

/// What the pump owes to hubs it failed to reach.
#[derive(Debug, Default)]
pub struct HubRetry {
    owed: BTreeMap<String, Owed>,
}

/// What became of a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Failed {
    /// The notice is owed; it goes at `retry_at`.
    Owed { retry_at: i64 },
    /// Too many attempts: given up on (events go to it again). Log it: that hub lost events
    /// without being told.
    GivenUp,
}

impl HubRetry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `watcher` is owed a notice: send it nothing else until the notice is taken.
    pub fn is_owed(&self, watcher: &str) -> bool {
        self.owed.contains_key(watcher)
    }

    /// A call to `watcher` failed at `now` (a call of events of `contexts`, or its notice): the
    /// hub is owed a notice for those contexts, next tried after the backoff. The hubs given up on
    /// to stay within [`MAX_OWED_HUBS`] come back in the second part.
    pub fn failed(
        &mut self,
        watcher: &str,
        contexts: impl IntoIterator<Item = String>,
        now: i64,
    ) -> (Failed, Vec<String>) {
        let owed = self.owed.entry(watcher.to_string()).or_insert_with(|| Owed {
            contexts: BTreeSet::new(),
            failures: 0,
            next_at: now,
            since: now,
        });
        owed.contexts.extend(contexts);
        owed.failures += 1;
        if owed.failures >= HUB_RETRY_MAX_ATTEMPTS {
            self.owed.remove(watcher);
            return (Failed::GivenUp, Vec::new());
        }
        let wait = Backoff::new(HUB_RETRY_BACKOFF).ceiling_ms(owed.failures - 1) as i64;
        owed.next_at = now.saturating_add(wait);
        let retry_at = owed.next_at;
        let mut evicted = Vec::new();
        while self.owed.len() > MAX_OWED_HUBS {
            let oldest = self
                .owed
                .iter()
                .filter(|(w, _)| w.as_str() != watcher)
                .min_by_key(|(w, o)| (o.since, w.as_str()))
                .map(|(w, _)| w.clone());
            match oldest {
                Some(w) => {
                    self.owed.remove(&w);
                    evicted.push(w);
                }
                None => break,
            }
        }
        (Failed::Owed { retry_at }, evicted)
    }

    /// The notices due at `now`: per hub, one `context.resync` per context it lost. They stay owed
    /// until [`HubRetry::delivered`] (or another [`HubRetry::failed`]).
    pub fn due(&self, now: i64) -> Vec<(String, Vec<Delivery>)> {
        self.owed
            .iter()
            .filter(|(_, o)| o.next_at <= now)
            .map(|(w, o)| (w.clone(), o.contexts.iter().map(|c| notice(c)).collect()))
            .collect()
    }

    /// `watcher` took its notice: it is owed nothing, and gets events again.
    pub fn delivered(&mut self, watcher: &str) {
        self.owed.remove(watcher);
    }

    /// Whether a notice is due at `now` (cheap: for the pump's every run).
    pub fn has_due(&self, now: i64) -> bool {
        self.owed.values().any(|o| o.next_at <= now)
    }

    /// When the next notice is due (for the alarm).
    pub fn next_at(&self) -> Option<i64> {
        self.owed.values().map(|o| o.next_at).min()
    }
}

/// The notice for a context a hub lost events of.
fn notice(context: &str) -> Delivery {
    Delivery {
        context: context.to_string(),
        event: RESYNC_EVENT.to_string(),
        payload: json!({"reason": "delivery failed"}),
        ephemeral: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: &str = "/c/1";

    fn ctx() -> Vec<String> {
        vec![CTX.to_string()]
    }

    #[test]
    fn a_failed_hub_is_owed_a_notice_sent_with_backoff_until_taken() {
        let mut r = HubRetry::new();
        assert!(!r.is_owed("alice"));
        assert_eq!(r.failed("alice", ctx(), 1_000), (Failed::Owed { retry_at: 2_000 }, vec![]));
        assert!(r.is_owed("alice"));
        assert!(r.due(1_999).is_empty());
        assert!(!r.has_due(1_999) && r.has_due(2_000));
        let due = r.due(2_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, "alice");
        assert_eq!(due[0].1, vec![notice(CTX)]);
        assert_eq!(due[0].1[0].event, "context.resync");
        // The notice failed too: twice as long.
        assert_eq!(r.failed("alice", ctx(), 2_000).0, Failed::Owed { retry_at: 4_000 });
        assert_eq!(r.next_at(), Some(4_000));
        // Taken: nothing owed, events flow again.
        r.delivered("alice");
        assert!(!r.is_owed("alice") && r.next_at().is_none() && r.due(i64::MAX).is_empty());
    }

    #[test]
    fn one_notice_per_lost_context_and_a_hub_is_given_up_on_after_the_last_attempt() {
        let mut r = HubRetry::new();
        r.failed("bob", ctx(), 0);
        r.failed("bob", vec!["/c/2".to_string(), CTX.to_string()], 10);
        let due = r.due(i64::MAX);
        assert_eq!(due[0].1.iter().map(|d| d.context.as_str()).collect::<Vec<_>>(), vec![CTX, "/c/2"]);
        let mut now = 10;
        let mut last = Failed::Owed { retry_at: 0 };
        for _ in 3..HUB_RETRY_MAX_ATTEMPTS {
            last = r.failed("bob", ctx(), now).0;
            let Failed::Owed { retry_at } = last else { panic!("given up too early") };
            assert!(retry_at - now <= 60_000, "capped at a minute");
            now = retry_at;
        }
        assert!(matches!(last, Failed::Owed { .. }));
        assert_eq!(r.failed("bob", ctx(), now).0, Failed::GivenUp);
        assert!(!r.is_owed("bob"));
    }

    #[test]
    fn at_most_max_owed_hubs_the_oldest_debt_goes_first() {
        let mut r = HubRetry::new();
        for i in 0..MAX_OWED_HUBS {
            assert_eq!(r.failed(&format!("m{i:04}"), ctx(), i as i64).1, Vec::<String>::new());
        }
        let (f, evicted) = r.failed("late", ctx(), 5_000);
        assert!(matches!(f, Failed::Owed { .. }));
        assert_eq!(evicted, vec!["m0000".to_string()]);
        assert!(r.is_owed("late") && !r.is_owed("m0000") && r.is_owed("m0001"));
    }
}
