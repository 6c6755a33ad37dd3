//! The conversation object's one alarm serves two duties: removing expired idempotency records and
//! flushing new activity to members' conversation lists. These functions pick when it should fire.

/// When the alarm should fire: the earliest of the next record expiry and the pending activity flush.
pub fn next_fire(earliest_expiry: Option<i64>, activity_flush_at: Option<i64>) -> Option<i64> {
    match (earliest_expiry, activity_flush_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether to (re)set the alarm: only when none is set, or when we need it sooner. Never postpones an
/// alarm, so a busy conversation cannot push cleanup away forever.
pub fn should_set(current: Option<i64>, wanted: Option<i64>) -> bool {
    match (current, wanted) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(c), Some(w)) => w < c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_earliest() {
        assert_eq!(next_fire(None, None), None);
        assert_eq!(next_fire(Some(5), None), Some(5));
        assert_eq!(next_fire(None, Some(7)), Some(7));
        assert_eq!(next_fire(Some(9), Some(7)), Some(7));
    }

    #[test]
    fn never_postpones() {
        assert!(should_set(None, Some(10)));
        assert!(should_set(Some(10), Some(5)));
        assert!(!should_set(Some(10), Some(10)));
        assert!(!should_set(Some(10), Some(20)));
        assert!(!should_set(None, None));
    }
}
