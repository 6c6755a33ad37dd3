//! The send-idempotency ledger's rules. A record maps (sender, clientId) to the message it created and
//! expires after a TTL. The conversation object checks and writes it in the same synchronous step as the
//! message insert, so racing repeats see one another; these functions decide what a lookup means.

/// A stored record: the message a (sender, clientId) pair created, and when the record lapses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRecord {
    pub message_id: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// A live record exists: answer the original message, create nothing, emit nothing.
    Replay { message_id: String },
    /// No live record: create the message and write a record expiring at `expires_at`.
    Create { expires_at: i64 },
}

/// What a send with a client id must do, given the record found (if any).
/// An expired record that the alarm has not yet removed counts as absent: expiry is exact, not alarm-timed.
pub fn decide(found: Option<&IdemRecord>, now_ms: i64, ttl_ms: i64) -> SendDecision {
    match found {
        Some(r) if r.expires_at > now_ms => SendDecision::Replay { message_id: r.message_id.clone() },
        _ => SendDecision::Create { expires_at: now_ms.saturating_add(ttl_ms.max(1)) },
    }
}

/// An in-memory ledger with the same semantics as the conversation object's table; used by tests
/// and by simulations of racing sends.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    records: std::collections::BTreeMap<(String, String), IdemRecord>,
}

impl MemoryLedger {
    /// One send attempt: answers the decision and, on `Create`, records `new_message_id`.
    pub fn send(
        &mut self,
        sender: &str,
        client_id: &str,
        new_message_id: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> SendDecision {
        let key = (sender.to_string(), client_id.to_string());
        let d = decide(self.records.get(&key), now_ms, ttl_ms);
        if let SendDecision::Create { expires_at } = d {
            self.records.insert(key, IdemRecord { message_id: new_message_id.to_string(), expires_at });
        }
        d
    }

    /// What the cleanup alarm does: drop every record expired at `now_ms`; answers the earliest remaining expiry.
    pub fn sweep(&mut self, now_ms: i64) -> Option<i64> {
        self.records.retain(|_, r| r.expires_at > now_ms);
        self.records.values().map(|r| r.expires_at).min()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn repeat_replays_until_expiry() {
        let mut l = MemoryLedger::default();
        assert_eq!(l.send("a", "k", "m1", 0, 100), SendDecision::Create { expires_at: 100 });
        assert_eq!(l.send("a", "k", "m2", 99, 100), SendDecision::Replay { message_id: "m1".into() });
        // Another sender's clientId is its own.
        assert!(matches!(l.send("b", "k", "m3", 50, 100), SendDecision::Create { .. }));
        // After expiry the key is free again, even before the alarm swept it.
        assert_eq!(l.send("a", "k", "m4", 100, 100), SendDecision::Create { expires_at: 200 });
    }

    #[test]
    fn sweep_removes_expired_and_reports_next() {
        let mut l = MemoryLedger::default();
        l.send("a", "1", "m1", 0, 10);
        l.send("a", "2", "m2", 5, 10);
        assert_eq!(l.sweep(10), Some(15));
        assert_eq!(l.len(), 1);
        assert_eq!(l.sweep(15), None);
        assert!(l.is_empty());
    }

    proptest! {
        /// Any interleaving of repeated sends of the same key within the TTL creates exactly one message.
        #[test]
        fn one_message_per_key(times in proptest::collection::vec(0i64..1000, 1..50)) {
            let mut l = MemoryLedger::default();
            let mut created = 0;
            let mut first = None;
            let mut sorted = times.clone();
            sorted.sort();
            for (i, t) in sorted.iter().enumerate() {
                match l.send("a", "k", &format!("m{i}"), *t, 10_000) {
                    SendDecision::Create { .. } => { created += 1; first = Some(format!("m{i}")); }
                    SendDecision::Replay { message_id } => prop_assert_eq!(Some(message_id), first.clone()),
                }
            }
            prop_assert_eq!(created, 1);
        }
    }
}
