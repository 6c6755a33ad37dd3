//! The per-user object's one alarm: it removes expired idempotency records and checks Expo receipts
//! that have come due.
//!
//! The rule (kilo-chat's, kept): a write sets the alarm only when none is set, so a busy stream of
//! messages never pushes cleanup forward. We add one refinement: a write may also bring the alarm
//! *earlier* (a receipt due before the next expiry, or a TTL shortened by configuration); it is never
//! moved later. When the alarm fires, it deletes what expired and re-arms at the earliest remaining
//! expiry or receipt. So no record outlives its TTL by more than one alarm period.

/// Whether a write that needs the alarm at `wanted` should set it, given the one set now (if any).
pub fn should_set(current: Option<i64>, wanted: i64) -> bool {
    match current {
        None => true,
        Some(c) => wanted < c,
    }
}

/// After the alarm fired and deleted what expired: when to fire next, if at all.
pub fn next_fire(earliest_record_expiry: Option<i64>, earliest_receipt_due: Option<i64>) -> Option<i64> {
    match (earliest_record_expiry, earliest_receipt_due) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_only_when_none_or_sooner() {
        assert!(should_set(None, 100));
        assert!(!should_set(Some(100), 100));
        assert!(!should_set(Some(100), 5_000));
        assert!(should_set(Some(100), 50));
    }

    #[test]
    fn earliest_remaining() {
        assert_eq!(next_fire(None, None), None);
        assert_eq!(next_fire(Some(10), None), Some(10));
        assert_eq!(next_fire(None, Some(7)), Some(7));
        assert_eq!(next_fire(Some(10), Some(7)), Some(7));
    }
}
