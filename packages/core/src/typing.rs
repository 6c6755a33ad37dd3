//! Typing indicators with a server-side timeout (kilo-chat has none) and a throttle on broadcasts.
//! A `typing` starts or refreshes a member's typing state; the state ends with `typing.stop`, or by
//! itself `TIMEOUT_MS` after the last refresh. A member's `typing` is broadcast at most once per
//! throttle (`limits::DEFAULT_TYPING_THROTTLE_MS`, var `TYPING_THROTTLE_MS`), **whatever stops come
//! between**: the time of the last broadcast outlives the state, so `typing`/`typing.stop` pairs
//! sent in a loop make one `typing` and one `typing.stop` per throttle, not one per pair.

/// A typing state ends by itself this long after its last refresh.
pub const TIMEOUT_MS: i64 = 6_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typing {
    pub expires_at: i64,
    pub last_broadcast_at: i64,
}

/// What a `typing` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Store this state and broadcast `typing`.
    Broadcast(Typing),
    /// Store this state (a longer timeout); say nothing.
    Refresh(Typing),
    /// Within the throttle after a stop: nothing is stored and nothing is said (others were told
    /// the member stopped; they hear of them again once the throttle has passed).
    Quiet,
}

/// A `typing` at `now`, given the member's state (`current`), when their `typing` was last
/// broadcast (`last_broadcast_at`, which a stop does not forget) and the throttle.
pub fn start(current: Option<Typing>, last_broadcast_at: Option<i64>, now: i64, throttle_ms: i64) -> Start {
    let current = current.filter(|t| t.expires_at > now);
    let last = match (current.map(|t| t.last_broadcast_at), last_broadcast_at) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let throttled = last.is_some_and(|l| now >= l && now - l < throttle_ms);
    match (throttled, current, last) {
        (false, _, _) | (true, _, None) => {
            Start::Broadcast(Typing { expires_at: now + TIMEOUT_MS, last_broadcast_at: now })
        }
        (true, Some(_), Some(l)) => Start::Refresh(Typing { expires_at: now + TIMEOUT_MS, last_broadcast_at: l }),
        (true, None, Some(_)) => Start::Quiet,
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

    const THROTTLE: i64 = 3_000;

    fn stored(s: Start) -> Typing {
        match s {
            Start::Broadcast(t) | Start::Refresh(t) => t,
            Start::Quiet => panic!("nothing stored"),
        }
    }

    #[test]
    fn throttles_and_times_out() {
        let s = start(None, None, 0, THROTTLE);
        assert!(matches!(s, Start::Broadcast(_)));
        let t = stored(s);
        assert_eq!(t.expires_at, 6_000);
        let s = start(Some(t), Some(0), 1_000, THROTTLE);
        assert!(matches!(s, Start::Refresh(_)), "repeat within the throttle is quiet");
        let t = stored(s);
        assert_eq!(t.expires_at, 7_000, "but refreshes the timeout");
        let s = start(Some(t), Some(0), 3_000, THROTTLE);
        assert!(matches!(s, Start::Broadcast(_)), "after the throttle it is broadcast again");
        let t = stored(s);
        assert!(!expired(t, 8_999));
        assert!(expired(t, 9_000));
        // After expiry (longer than the throttle) a new typing broadcasts at once.
        assert!(matches!(start(Some(t), Some(3_000), 9_500, THROTTLE), Start::Broadcast(_)));
    }

    #[test]
    fn stops_do_not_reset_the_throttle() {
        // typing, stop, typing, stop... every 100 ms for 10 s: one typing broadcast per 3 s.
        let mut current = None;
        let mut last = None;
        let mut typing_broadcasts = Vec::new();
        let mut stop_broadcasts = 0;
        for i in 0..100 {
            let now = i * 100;
            if i % 2 == 0 {
                match start(current, last, now, THROTTLE) {
                    Start::Broadcast(t) => {
                        typing_broadcasts.push(now);
                        last = Some(t.last_broadcast_at);
                        current = Some(t);
                    }
                    Start::Refresh(t) => current = Some(t),
                    Start::Quiet => {}
                }
            } else {
                if stop(current, now) {
                    stop_broadcasts += 1;
                }
                current = None;
            }
        }
        assert_eq!(typing_broadcasts, vec![0, 3_000, 6_000, 9_000]);
        assert_eq!(stop_broadcasts, 4, "a stop is said only after a typing was");
    }

    #[test]
    fn stop_only_when_typing() {
        assert!(!stop(None, 0));
        let t = stored(start(None, None, 0, THROTTLE));
        assert!(stop(Some(t), 100));
        assert!(!stop(Some(t), 6_000));
    }

    #[test]
    fn a_clock_going_back_is_not_throttled_forever() {
        assert!(matches!(start(None, Some(10_000), 5_000, THROTTLE), Start::Broadcast(_)));
    }
}
