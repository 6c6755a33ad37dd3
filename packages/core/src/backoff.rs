//! Reconnect backoff for outbound connections (the bridges' protocol clients).
//!
//! Jittered exponential backoff: the n-th consecutive failure waits a random time in
//! `[d/2, d]` where `d = min(initial · 2ⁿ, cap)` ("equal jitter": never zero, so a flapping peer
//! is not hammered, and spread so many bridges reconnecting after a deploy do not arrive together).
//! A connection that stayed up for `stable_ms` resets the count. Time and randomness are arguments.

/// The policy: all durations in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial_ms: u64,
    pub cap_ms: u64,
    /// A connection up at least this long resets the failure count.
    pub stable_ms: u64,
}

impl BackoffPolicy {
    /// The bridges' policy: 1 s doubling to a 60 s cap, reset after 60 s up.
    pub const BRIDGE: BackoffPolicy = BackoffPolicy { initial_ms: 1_000, cap_ms: 60_000, stable_ms: 60_000 };
}

/// Consecutive failures and when the current connection came up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub policy: BackoffPolicy,
    failures: u32,
    up_since_ms: Option<u64>,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff { policy, failures: 0, up_since_ms: None }
    }

    /// Restores a count kept in storage.
    pub fn with_failures(policy: BackoffPolicy, failures: u32) -> Self {
        Backoff { policy, failures, up_since_ms: None }
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The connection is up (handshake done) at `now_ms`.
    pub fn connected(&mut self, now_ms: u64) {
        self.up_since_ms = Some(now_ms);
    }

    /// The connection failed or dropped at `now_ms`: returns how long to wait before the next
    /// attempt. `random` is any 64 random bits.
    pub fn failed(&mut self, now_ms: u64, random: u64) -> u64 {
        if let Some(up) = self.up_since_ms.take() {
            if now_ms.saturating_sub(up) >= self.policy.stable_ms {
                self.failures = 0;
            }
        }
        let ceiling = self.ceiling_ms(self.failures);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + random % (ceiling - half + 1)
    }

    /// The upper bound of the wait after `failures` earlier consecutive failures.
    pub fn ceiling_ms(&self, failures: u32) -> u64 {
        let shift = failures.min(32);
        self.policy.initial_ms.saturating_mul(1u64 << shift).min(self.policy.cap_ms).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_to_the_cap() {
        let mut b = Backoff::new(BackoffPolicy::BRIDGE);
        let max_waits: Vec<u64> = (0..9).map(|_| b.failed(0, u64::MAX)).collect();
        // random = u64::MAX lands somewhere in [d/2, d]; the ceilings themselves:
        let ceilings: Vec<u64> = (0..9).map(|n| b.ceiling_ms(n)).collect();
        assert_eq!(ceilings, vec![1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
        for (w, c) in max_waits.iter().zip(&ceilings) {
            assert!(*w >= c / 2 && w <= c, "{w} not in [{}, {c}]", c / 2);
        }
    }

    #[test]
    fn a_stable_connection_resets_the_count() {
        let mut b = Backoff::new(BackoffPolicy::BRIDGE);
        for _ in 0..5 {
            b.failed(0, 0);
        }
        assert_eq!(b.failures(), 5);
        b.connected(1_000);
        // up for 59 s: not stable, the count goes on
        assert_eq!(b.failed(60_000 - 1, 0), 16_000);
        b.connected(100_000);
        // up for 60 s: stable, back to the first step
        assert_eq!(b.failed(160_000, 0), 500);
        assert_eq!(b.failures(), 1);
    }

    proptest! {
        #[test]
        fn every_wait_is_within_half_and_whole_ceiling(failures in 0u32..100, random: u64) {
            let mut b = Backoff::with_failures(BackoffPolicy::BRIDGE, failures);
            let c = b.ceiling_ms(failures);
            let w = b.failed(0, random);
            prop_assert!(w >= c / 2 && w <= c && (500..=BackoffPolicy::BRIDGE.cap_ms).contains(&w));
        }
    }
}
