//! Rate control.
//!
//! - Saturation (closed loop): keep `window` messages in flight, a message leaving the window when all
//!   N of its deliveries have arrived. The server is never idle and its queue stays bounded, so the
//!   delivered rate is the highest rate it can sustain.
//! - Latency (open loop): send on a fixed schedule at a given rate, whatever the answers do. The timer
//!   wakes with about 1 ms granularity, so each wake sends every message that is due by then
//!   (`Schedule::due`); a stall is caught up at most `max_burst` messages at a time and the skipped
//!   slots are counted, never silently dropped.

use std::time::Duration;

/// Messages in flight for the closed loop at fan-out `n`: about `target_deliveries` deliveries
/// outstanding, and between `min` and `max` messages.
pub fn window(n: usize, target_deliveries: usize, min: usize, max: usize) -> usize {
    let n = n.max(1);
    target_deliveries.div_ceil(n).clamp(min.max(1), max.max(min.max(1)))
}

/// Half of a measured maximum rate (messages/s), never below `floor`.
pub fn half_rate(max_msgs_per_s: f64, floor: f64) -> f64 {
    if max_msgs_per_s.is_finite() {
        (max_msgs_per_s / 2.0).max(floor)
    } else {
        floor
    }
}

/// An open-loop send schedule: message k is due at `k / rate` seconds after the start.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    interval_ns: f64,
    max_burst: u64,
}

/// What to do at a wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Send this many messages now.
    pub send: u64,
    /// Slots given up because the sender fell more than `max_burst` behind.
    pub skipped: u64,
}

impl Schedule {
    pub fn new(rate_per_s: f64, max_burst: u64) -> Schedule {
        let rate = if rate_per_s.is_finite() && rate_per_s > 0.0 { rate_per_s } else { 1.0 };
        Schedule { interval_ns: 1e9 / rate, max_burst: max_burst.max(1) }
    }

    /// When slot `k` is due, from the start.
    pub fn due_at(&self, k: u64) -> Duration {
        Duration::from_nanos((k as f64 * self.interval_ns).round() as u64)
    }

    /// How many slots are due by `elapsed` (slot 0 is due at once).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        (elapsed.as_nanos() as f64 / self.interval_ns).floor() as u64 + 1
    }

    /// Given `taken` slots already used (sent or skipped), what to do at `elapsed`.
    pub fn due(&self, taken: u64, elapsed: Duration) -> Due {
        let due = self.due_by(elapsed).saturating_sub(taken);
        if due > self.max_burst {
            Due { send: self.max_burst, skipped: due - self.max_burst }
        } else {
            Due { send: due, skipped: 0 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sizes() {
        assert_eq!(window(10, 8000, 2, 64), 64);
        assert_eq!(window(1000, 8000, 2, 64), 8);
        assert_eq!(window(5000, 8000, 2, 64), 2);
        assert_eq!(window(0, 8000, 2, 64), 64);
        assert_eq!(window(3000, 8000, 2, 64), 3);
        // min above max: min wins
        assert_eq!(window(10, 10, 5, 3), 5);
    }

    #[test]
    fn half() {
        assert_eq!(half_rate(100.0, 1.0), 50.0);
        assert_eq!(half_rate(1.0, 2.0), 2.0);
        assert_eq!(half_rate(f64::NAN, 2.0), 2.0);
    }

    #[test]
    fn schedule_times() {
        let s = Schedule::new(1000.0, 10);
        assert_eq!(s.due_at(0), Duration::ZERO);
        assert_eq!(s.due_at(1), Duration::from_millis(1));
        assert_eq!(s.due_at(2500), Duration::from_millis(2500));
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_micros(999)), 1);
        assert_eq!(s.due_by(Duration::from_millis(1)), 2);
        assert_eq!(s.due_by(Duration::from_millis(10)), 11);
    }

    #[test]
    fn schedule_sends_what_is_due_and_caps_bursts() {
        let s = Schedule::new(2000.0, 5); // one slot per 0.5 ms
                                          // At start: slot 0.
        assert_eq!(s.due(0, Duration::ZERO), Due { send: 1, skipped: 0 });
        // A 1 ms tick later: slots 1 and 2 are due.
        assert_eq!(s.due(1, Duration::from_millis(1)), Due { send: 2, skipped: 0 });
        // Nothing new before the next slot.
        assert_eq!(s.due(3, Duration::from_micros(1400)), Due { send: 0, skipped: 0 });
        // A 10 ms stall: 20 slots due, 5 sent, 15 skipped.
        assert_eq!(s.due(3, Duration::from_micros(11_400)), Due { send: 5, skipped: 15 });
        // Over a long run the slots used match rate x time exactly.
        let mut taken = 0;
        for ms in 0..=1000u64 {
            let d = s.due(taken, Duration::from_millis(ms));
            taken += d.send + d.skipped;
            assert_eq!(d.skipped, 0);
        }
        assert_eq!(taken, 2001);
    }

    #[test]
    fn bad_rates_do_not_divide_by_zero() {
        let s = Schedule::new(0.0, 1);
        assert_eq!(s.due_at(1), Duration::from_secs(1));
        let s = Schedule::new(f64::INFINITY, 1);
        assert_eq!(s.due_at(1), Duration::from_secs(1));
    }
}
