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

/// When the next socket credential expires, as far as the object knows, so an alarm run looks at
/// its sockets' attachments (one deserialization each: ~1,000 in a big room, every few seconds
/// while a list flush runs) only when one may have expired. Memory only: unknown after
/// hibernation, which means one look.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryWatch {
    /// `None`: unknown (look). `Some(None)`: no socket has an expiry. `Some(Some(t))`: the earliest.
    known: Option<Option<i64>>,
}

impl ExpiryWatch {
    /// Whether the sockets must be looked at `now`: unknown, or an expiry is due.
    pub fn due(&self, now: i64) -> bool {
        match self.known {
            None => true,
            Some(None) => false,
            Some(Some(at)) => at <= now,
        }
    }

    /// The earliest expiry known (the alarm must fire by then).
    pub fn next(&self) -> Option<i64> {
        self.known.flatten()
    }

    /// The look is done: `next` is the earliest expiry left (`None`: none).
    pub fn looked(&mut self, next: Option<i64>) {
        self.known = Some(next);
    }

    /// A socket was accepted whose credential expires at `until`.
    pub fn opened(&mut self, until: Option<i64>) {
        if let (Some(known), Some(u)) = (self.known, until) {
            self.known = Some(Some(known.map_or(u, |k| k.min(u))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_are_looked_at_only_when_an_expiry_may_be_due() {
        let mut w = ExpiryWatch::default();
        assert!(w.due(0), "unknown after a start or hibernation");
        // An accept while unknown stays unknown: the next alarm looks anyway.
        w.opened(Some(50));
        assert!(w.due(0));
        w.looked(None);
        assert!(!w.due(i64::MAX), "no socket expires");
        w.opened(None);
        assert!(!w.due(i64::MAX));
        w.opened(Some(100));
        assert!(!w.due(99));
        assert!(w.due(100));
        w.opened(Some(200));
        assert!(w.due(100), "the earliest counts");
        w.looked(Some(200));
        assert!(!w.due(150));
        assert_eq!(w.next(), Some(200));
        w.opened(Some(120));
        assert!(w.due(120));
    }

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
