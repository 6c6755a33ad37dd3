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

/// Members per step by which a conversation's list-flush period is stretched.
pub const FLUSH_STEP_MEMBERS: usize = 25;

/// How long new activity waits before members' lists learn of it: `base_ms`, stretched by one step
/// per `FLUSH_STEP_MEMBERS` members. A pass costs one call per member, so a big room flushes less
/// often: its members' objects see about one call each per period, whatever the message rate, and
/// the passes stay a small share of the room's work (1,000 members: 41 periods of 1 s).
pub fn flush_period_ms(base_ms: i64, members: usize) -> i64 {
    base_ms.max(0) * (1 + (members / FLUSH_STEP_MEMBERS) as i64)
}

/// The shortest pause between two batches of a list-flush pass.
pub const MIN_FLUSH_BATCH_GAP_MS: i64 = 100;

/// The pause between two batches of one list-flush pass over `members` members, `batch` at a time,
/// when passes start `period_ms` apart: the pass is spread over about one period, so a big room's
/// calls to its members' objects come as a steady trickle rather than a burst that delays the
/// room's own messages. Never below `MIN_FLUSH_BATCH_GAP_MS`.
pub fn flush_batch_gap_ms(members: usize, batch: usize, period_ms: i64) -> i64 {
    let batches = members.div_ceil(batch.max(1)).max(1) as i64;
    (period_ms / batches).max(MIN_FLUSH_BATCH_GAP_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_period_grows_with_the_room() {
        assert_eq!(flush_period_ms(1_000, 2), 1_000);
        assert_eq!(flush_period_ms(1_000, 25), 2_000);
        assert_eq!(flush_period_ms(1_000, 100), 5_000);
        assert_eq!(flush_period_ms(1_000, 1_000), 41_000);
        assert_eq!(flush_period_ms(-5, 1_000), 0);
    }

    #[test]
    fn flush_passes_spread_over_a_period() {
        // 1,000 members, 50 a batch, an 11 s period: 20 batches 550 ms apart.
        assert_eq!(flush_batch_gap_ms(1000, 50, 11_000), 550);
        assert_eq!(flush_batch_gap_ms(1001, 50, 11_000), 523);
        // Small rooms and short periods keep the floor.
        assert_eq!(flush_batch_gap_ms(10, 50, 1_000), 1_000);
        assert_eq!(flush_batch_gap_ms(1000, 50, 100), MIN_FLUSH_BATCH_GAP_MS);
        assert_eq!(flush_batch_gap_ms(0, 0, 0), MIN_FLUSH_BATCH_GAP_MS);
    }

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
