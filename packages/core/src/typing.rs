//! Typing indicators with a server-side timeout (kilo-chat has none) and a throttle on repeats.
//! A `typing` starts or refreshes a member's typing state; it is broadcast at most once per
//! `THROTTLE_MS`; the state ends with `typing.stop`, or by itself `TIMEOUT_MS` after the last refresh.

/// A typing state ends by itself this long after its last refresh.
pub const TIMEOUT_MS: i64 = 6_000;
/// Repeated `typing` from one member is broadcast at most this often.
pub const THROTTLE_MS: i64 = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typing {
    pub expires_at: i64,
    pub last_broadcast_at: i64,
}

/// A `typing` at `now`: the new state, and whether to broadcast `typing`.
pub fn start(current: Option<Typing>, now: i64) -> (Typing, bool) {
    match current {
        Some(t) if t.expires_at > now && now - t.last_broadcast_at < THROTTLE_MS => {
            (Typing { expires_at: now + TIMEOUT_MS, last_broadcast_at: t.last_broadcast_at }, false)
        }
        _ => (Typing { expires_at: now + TIMEOUT_MS, last_broadcast_at: now }, true),
    }
}

/// A `typing.stop` at `now`: whether to broadcast `typing.stop` (only if the member was typing).
pub fn stop(current: Option<Typing>, now: i64) -> bool {
    matches!(current, Some(t) if t.expires_at > now)
}

/// Whether a state has run out at `now` (broadcast `typing.stop` and forget it).
pub fn expired(t: Typing, now: i64) -> bool {
    t.expires_at <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_and_times_out() {
        let (t, b) = start(None, 0);
        assert!(b);
        assert_eq!(t.expires_at, 6_000);
        let (t, b) = start(Some(t), 1_000);
        assert!(!b, "repeat within the throttle is quiet");
        assert_eq!(t.expires_at, 7_000, "but refreshes the timeout");
        let (t, b) = start(Some(t), 2_500);
        assert!(b, "after the throttle it is broadcast again");
        assert!(!expired(t, 8_499));
        assert!(expired(t, 8_500));
        // After expiry a new typing broadcasts at once.
        let (_, b) = start(Some(t), 9_000);
        assert!(b);
    }

    #[test]
    fn stop_only_when_typing() {
        assert!(!stop(None, 0));
        let (t, _) = start(None, 0);
        assert!(stop(Some(t), 100));
        assert!(!stop(Some(t), 6_000));
    }
}
