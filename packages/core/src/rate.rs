//! Token buckets in virtual time: the rate limits of the service.
//!
//! A [`Rate`] says "`tokens` per `per_ms`, in bursts of up to `burst`". A [`Bucket`] starts full
//! and refills continuously; each action takes one token, and an action that finds less than one
//! is refused with how long until one is there ([`RetryAfterMs`]). Time is an argument (`now_ms`),
//! so every rule is tested without sleeping. The arithmetic is exact integers: the level is kept
//! in "token-milliseconds" (one token = `per_ms` units, refilled at `tokens` units per ms).
//!
//! [`Buckets`] is a bounded map of buckets by key, kept in an object's memory. A bucket that has
//! refilled completely is the same as no bucket at all, so when the map is full those are dropped
//! first; if every bucket is in use, an arbitrary one is dropped (it starts full again: only more
//! lenient). An object that is evicted or hibernates loses its buckets the same way.
//!
//! Sockets use [`Buckets::frame`]: a frame over the limit is refused (the shell answers an error
//! frame), and a connection that keeps sending over the limit (`strikes` refusals without its
//! bucket ever refilling completely in between) is to be closed.

use std::collections::HashMap;
use std::fmt;

/// How long until the next token, in milliseconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfterMs(pub u64);

impl RetryAfterMs {
    /// Whole seconds, rounded up (the `Retry-After` header).
    pub fn secs(self) -> u64 {
        self.0.div_ceil(1000).max(1)
    }
}

/// `tokens` per `per_ms`, in bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub tokens: u64,
    pub per_ms: u64,
    pub burst: u64,
}

impl Rate {
    /// `tokens` per second, bursts of `burst`.
    pub const fn per_sec(tokens: u64, burst: u64) -> Rate {
        Rate { tokens, per_ms: 1000, burst }
    }

    /// `tokens` per minute, bursts of `burst`.
    pub const fn per_min(tokens: u64, burst: u64) -> Rate {
        Rate { tokens, per_ms: 60_000, burst }
    }

    /// Parses `"<tokens>/<period>,<burst>"`, the period a number with a unit `ms`, `s`, `m` or `h`
    /// (`"10/1s,30"`: ten per second, bursts of thirty). All three numbers must be positive; the
    /// burst at least 1 and at most 1,000,000, the period at most a day.
    pub fn parse(s: &str) -> Result<Rate, String> {
        let bad = || format!("{s:?} is not <tokens>/<period>,<burst> (e.g. \"10/1s,30\")");
        let (rate, burst) = s.trim().split_once(',').ok_or_else(bad)?;
        let (tokens, period) = rate.trim().split_once('/').ok_or_else(bad)?;
        let tokens: u64 = tokens.trim().parse().map_err(|_| bad())?;
        let burst: u64 = burst.trim().parse().map_err(|_| bad())?;
        let period = period.trim();
        let split = period.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = period.split_at(split);
        let n: u64 = n.parse().map_err(|_| bad())?;
        let unit_ms = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        let per_ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
        if tokens == 0 || burst == 0 || per_ms == 0 || burst > 1_000_000 || per_ms > 86_400_000 || tokens > 1_000_000 {
            return Err(bad());
        }
        Ok(Rate { tokens, per_ms, burst })
    }

    fn capacity(self) -> u64 {
        self.burst.saturating_mul(self.per_ms)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.per_ms {
            1000 => write!(f, "{} per second (bursts of {})", self.tokens, self.burst),
            60_000 => write!(f, "{} per minute (bursts of {})", self.tokens, self.burst),
            ms => write!(f, "{} per {} ms (bursts of {})", self.tokens, ms, self.burst),
        }
    }
}

/// One token bucket. It does not hold its [`Rate`]: each call passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// In token-milliseconds: one token is `rate.per_ms` of them.
    level: u64,
    last_ms: i64,
}

impl Bucket {
    /// A full bucket at `now_ms`.
    pub fn full(rate: Rate, now_ms: i64) -> Bucket {
        Bucket { level: rate.capacity(), last_ms: now_ms }
    }

    fn refill(&mut self, rate: Rate, now_ms: i64) {
        // A clock that goes backwards refills nothing (and never panics).
        let elapsed = now_ms.saturating_sub(self.last_ms).max(0) as u64;
        self.last_ms = self.last_ms.max(now_ms);
        self.level = self.level.saturating_add(elapsed.saturating_mul(rate.tokens)).min(rate.capacity());
    }

    /// Takes one token at `now_ms`, or answers how long until one is there.
    pub fn take(&mut self, rate: Rate, now_ms: i64) -> Result<(), RetryAfterMs> {
        self.refill(rate, now_ms);
        if self.level >= rate.per_ms {
            self.level -= rate.per_ms;
            Ok(())
        } else {
            Err(RetryAfterMs((rate.per_ms - self.level).div_ceil(rate.tokens.max(1)).max(1)))
        }
    }

    /// Whether the bucket has refilled completely at `now_ms` (it is then the same as a new one).
    pub fn is_full(&self, rate: Rate, now_ms: i64) -> bool {
        let mut b = *self;
        b.refill(rate, now_ms);
        b.level >= rate.capacity()
    }
}

/// What to do with a socket's frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameVerdict {
    /// Handle it.
    Pass,
    /// Refuse it with an error frame; the connection may go on.
    Refuse(RetryAfterMs),
    /// The connection keeps flooding: close it.
    Close,
}

/// One connection's frame bucket and its strikes (frames refused since the bucket was last full):
/// for sockets whose state the caller keeps itself (`Buckets::frame` keeps it by key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameGate {
    bucket: Bucket,
    strikes: u32,
}

impl FrameGate {
    /// A gate whose bucket is full at `now_ms`.
    pub fn new(rate: Rate, now_ms: i64) -> FrameGate {
        FrameGate { bucket: Bucket::full(rate, now_ms), strikes: 0 }
    }

    /// A frame at `now_ms`: pass, refuse, or (after `max_strikes` refusals with no pause long
    /// enough to refill the bucket) close.
    pub fn check(&mut self, rate: Rate, max_strikes: u32, now_ms: i64) -> FrameVerdict {
        if self.bucket.is_full(rate, now_ms) {
            self.strikes = 0;
        }
        match self.bucket.take(rate, now_ms) {
            Ok(()) => FrameVerdict::Pass,
            Err(retry) => {
                self.strikes = self.strikes.saturating_add(1);
                if self.strikes >= max_strikes {
                    FrameVerdict::Close
                } else {
                    FrameVerdict::Refuse(retry)
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    gate: FrameGate,
    /// The rate it was last used with (to tell whether it is full when the map must shrink).
    rate: Rate,
}

/// Buckets by key, at most `cap` of them (see the module comment).
#[derive(Debug)]
pub struct Buckets {
    map: HashMap<String, Entry>,
    cap: usize,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::new(crate::limits::MAX_RATE_BUCKETS)
    }
}

impl Buckets {
    pub fn new(cap: usize) -> Self {
        Buckets { map: HashMap::new(), cap: cap.max(1) }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn entry(&mut self, key: &str, rate: Rate, now_ms: i64) -> &mut Entry {
        if !self.map.contains_key(key) && self.map.len() >= self.cap {
            // Full buckets are the same as none.
            self.map.retain(|_, e| !e.gate.bucket.is_full(e.rate, now_ms));
            if self.map.len() >= self.cap {
                if let Some(k) = self.map.keys().next().cloned() {
                    self.map.remove(&k);
                }
            }
        }
        let e = self.map.entry(key.to_string()).or_insert_with(|| Entry { gate: FrameGate::new(rate, now_ms), rate });
        e.rate = rate;
        e
    }

    /// Takes one token from `key`'s bucket.
    pub fn take(&mut self, key: &str, rate: Rate, now_ms: i64) -> Result<(), RetryAfterMs> {
        self.entry(key, rate, now_ms).gate.bucket.take(rate, now_ms)
    }

    /// A frame from the connection `key`: pass, refuse, or (after `strikes` refusals with no pause
    /// long enough to refill the bucket) close.
    pub fn frame(&mut self, key: &str, rate: Rate, strikes: u32, now_ms: i64) -> FrameVerdict {
        let verdict = self.entry(key, rate, now_ms).gate.check(rate, strikes, now_ms);
        if verdict == FrameVerdict::Close {
            self.map.remove(key);
        }
        verdict
    }

    /// Forgets a key (its connection closed).
    pub fn forget(&mut self, key: &str) {
        self.map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDS: Rate = Rate::per_sec(10, 30);

    #[test]
    fn burst_then_refill_in_virtual_time() {
        let mut b = Bucket::full(SENDS, 0);
        for _ in 0..30 {
            assert_eq!(b.take(SENDS, 0), Ok(()));
        }
        assert_eq!(b.take(SENDS, 0), Err(RetryAfterMs(100)), "one token every 100 ms");
        assert_eq!(b.take(SENDS, 99), Err(RetryAfterMs(1)));
        assert_eq!(b.take(SENDS, 100), Ok(()));
        assert_eq!(b.take(SENDS, 100), Err(RetryAfterMs(100)));
        // A second's pause gives ten more, not more than the burst.
        for _ in 0..10 {
            assert_eq!(b.take(SENDS, 1_100), Ok(()));
        }
        assert!(b.take(SENDS, 1_100).is_err());
        assert!(b.is_full(SENDS, 1_100 + 3_000));
        assert!(!b.is_full(SENDS, 1_100 + 2_999));
    }

    #[test]
    fn slow_rates_refill_exactly() {
        // 20 per minute: one every 3 s, even when asked every millisecond.
        let r = Rate::per_min(20, 1);
        let mut b = Bucket::full(r, 0);
        assert!(b.take(r, 0).is_ok());
        for t in 1..3_000 {
            assert!(b.take(r, t).is_err(), "at {t}");
        }
        assert!(b.take(r, 3_000).is_ok());
        assert_eq!(b.take(r, 3_000), Err(RetryAfterMs(3_000)));
    }

    #[test]
    fn clock_going_back_refills_nothing() {
        let r = Rate::per_sec(1, 1);
        let mut b = Bucket::full(r, 10_000);
        assert!(b.take(r, 10_000).is_ok());
        assert!(b.take(r, 5_000).is_err());
        assert!(b.take(r, 10_999).is_err());
        assert!(b.take(r, 11_000).is_ok());
    }

    #[test]
    fn retry_after_seconds_round_up() {
        assert_eq!(RetryAfterMs(1).secs(), 1);
        assert_eq!(RetryAfterMs(1000).secs(), 1);
        assert_eq!(RetryAfterMs(1001).secs(), 2);
    }

    #[test]
    fn parses_rates() {
        assert_eq!(Rate::parse("10/1s,30"), Ok(SENDS));
        assert_eq!(Rate::parse(" 20 / 1m , 5 "), Ok(Rate::per_min(20, 5)));
        assert_eq!(Rate::parse("1/500ms,2"), Ok(Rate { tokens: 1, per_ms: 500, burst: 2 }));
        assert_eq!(Rate::parse("100/24h,100"), Ok(Rate { tokens: 100, per_ms: 86_400_000, burst: 100 }));
        for bad in ["", "10", "10/s,3", "0/1s,3", "10/1s,0", "10/0s,1", "x/1s,1", "10/1d,1", "10/25h,1", "-1/1s,1"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn buckets_are_per_key_and_bounded() {
        let r = Rate::per_sec(1, 1);
        let mut m = Buckets::new(2);
        assert!(m.take("a", r, 0).is_ok());
        assert!(m.take("a", r, 0).is_err());
        assert!(m.take("b", r, 0).is_ok(), "another key has its own bucket");
        assert_eq!(m.len(), 2);
        // A third key in a full map drops one: never more than the cap.
        assert!(m.take("c", r, 0).is_ok());
        assert!(m.len() <= 2);
        // When the map is full, buckets that refilled completely go first (they are the same as none).
        let mut m = Buckets::new(2);
        assert!(m.take("slow", Rate::per_min(1, 1), 0).is_ok());
        assert!(m.take("fast", r, 0).is_ok());
        assert!(m.take("new", r, 1_000).is_ok(), "fast has refilled and makes room");
        assert!(m.take("slow", Rate::per_min(1, 1), 1_000).is_err(), "slow was kept, still empty");
    }

    #[test]
    fn flooding_connection_is_closed_but_a_pause_forgives() {
        let r = Rate::per_sec(2, 2);
        let mut m = Buckets::default();
        assert_eq!(m.frame("c", r, 3, 0), FrameVerdict::Pass);
        assert_eq!(m.frame("c", r, 3, 0), FrameVerdict::Pass);
        assert_eq!(m.frame("c", r, 3, 0), FrameVerdict::Refuse(RetryAfterMs(500)));
        assert_eq!(m.frame("c", r, 3, 0), FrameVerdict::Refuse(RetryAfterMs(500)));
        // A pause long enough to refill the bucket clears the strikes.
        assert_eq!(m.frame("c", r, 3, 1_000), FrameVerdict::Pass);
        assert_eq!(m.frame("c", r, 3, 1_000), FrameVerdict::Pass);
        assert_eq!(m.frame("c", r, 3, 1_000), FrameVerdict::Refuse(RetryAfterMs(500)));
        assert_eq!(m.frame("c", r, 3, 1_000), FrameVerdict::Refuse(RetryAfterMs(500)));
        // Sending at twice the rate never lets it refill: the strikes add up to a close.
        assert_eq!(m.frame("c", r, 3, 1_500), FrameVerdict::Pass);
        assert_eq!(m.frame("c", r, 3, 1_500), FrameVerdict::Close);
        assert!(m.is_empty(), "a closed connection's bucket is gone");
    }
}
