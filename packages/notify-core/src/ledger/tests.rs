use super::*;
use crate::badges::Counts;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use switchboard_notify_contract::Outcome;

const TTL: i64 = 10_000;
const LEASE: i64 = 4_000;
const B: &str = "kiloclaw:sb:C1";

fn t(now: i64) -> Timing {
    Timing { now, ttl_ms: TTL, lease_ms: LEASE }
}

#[test]
fn first_claim_records_pending_then_counts() {
    match claim(None, None, t(100)) {
        Claim::Send { record, increment } => {
            assert!(increment);
            assert_eq!(
                record,
                Record { status: Status::Pending, counted: true, expires_at: 100 + TTL, lease_until: 100 + LEASE }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn terminal_records_answer_duplicate_and_pending_ones_in_flight_until_their_lease() {
    let pending = Record { status: Status::Pending, counted: true, expires_at: 10_100, lease_until: 4_100 };
    assert_eq!(claim(Some(&pending), None, t(200)), Claim::InFlight { until: 4_100 });
    // Past its lease the attempt is abandoned: sent again, not counted again.
    assert!(matches!(claim(Some(&pending), None, t(4_100)), Claim::Send { increment: false, .. }));
    for s in [Status::Delivered, Status::SuppressedPresence, Status::SuppressedPreference, Status::NoTokens] {
        let r = Record { status: s, counted: false, expires_at: 10_100, lease_until: 0 };
        assert_eq!(claim(Some(&r), None, t(200)), Claim::Duplicate, "{s:?}");
    }
}

#[test]
fn retry_after_failure_does_not_count_again() {
    let failed = Record { status: Status::Failed, counted: true, expires_at: 10_100, lease_until: 0 };
    match claim(Some(&failed), None, t(300)) {
        Claim::Send { record, increment } => {
            assert!(!increment);
            assert_eq!(record.expires_at, 10_100, "a retry keeps the record's expiry");
            assert_eq!(record.lease_until, 300 + LEASE);
        }
        other => panic!("{other:?}"),
    }
    // An abandoned pending record (lease over) is retried the same way.
    let stale = Record { status: Status::Pending, counted: true, expires_at: 10_100, lease_until: 4_100 };
    assert!(matches!(claim(Some(&stale), None, t(4_100)), Claim::Send { increment: false, .. }));
}

#[test]
fn expired_records_read_as_absent() {
    let old = Record { status: Status::Delivered, counted: true, expires_at: 1_000, lease_until: 0 };
    assert!(matches!(claim(Some(&old), None, t(1_000)), Claim::Send { increment: true, .. }));
}

#[test]
fn suppressions_are_recorded() {
    match claim(None, Some(Suppression::Presence), t(0)) {
        Claim::Suppress { record, outcome } => {
            assert_eq!(outcome, Outcome::SuppressedPresence);
            assert_eq!(record.status, Status::SuppressedPresence);
            assert!(!record.counted);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn settle_only_moves_pending() {
    let pending = Record { status: Status::Pending, counted: true, expires_at: 9, lease_until: 5 };
    assert_eq!(settle(Some(&pending), 5, true).map(|r| r.status), Some(Status::Delivered));
    assert_eq!(settle(Some(&pending), 5, false).map(|r| r.status), Some(Status::Failed));
    // An attempt whose lease was taken over by a retry settles nothing.
    assert_eq!(settle(Some(&pending), 4, true), None);
    let delivered = Record { status: Status::Delivered, ..pending.clone() };
    assert_eq!(settle(Some(&delivered), 5, false), None);
    assert_eq!(settle(None, 5, true), None);
}

#[test]
fn status_names_round_trip() {
    for s in [
        Status::Pending,
        Status::Failed,
        Status::Delivered,
        Status::SuppressedPresence,
        Status::SuppressedPreference,
        Status::NoTokens,
    ] {
        assert_eq!(Status::parse(s.as_str()), Some(s));
        if s.is_terminal() {
            // Terminal statuses carry the contract's outcome names.
            assert!(
                serde_json::to_value(match s {
                    Status::Delivered => Outcome::Delivered,
                    Status::SuppressedPresence => Outcome::SuppressedPresence,
                    Status::SuppressedPreference => Outcome::SuppressedPreference,
                    _ => Outcome::NoTokens,
                })
                .unwrap()
                    == s.as_str()
            );
        }
    }
    assert_eq!(Status::parse("nope"), None);
}

#[test]
fn model_scenario_failure_then_retry_counts_once() {
    let mut l = Ledger::new(TTL, LEASE);
    let (d, c) = l.claim("chat:M1:bob", B, None, 0);
    assert!(matches!(d, Claim::Send { increment: true, .. }));
    assert_eq!(c, Counts { bucket: 1, total: 1 });
    let lease = lease_of(&d);
    // A concurrent replay while Expo is being called.
    assert_eq!(l.claim("chat:M1:bob", B, None, 10).0, Claim::InFlight { until: lease });
    // Expo failed; the chat side retries.
    assert!(l.settle("chat:M1:bob", lease, false));
    let (d, c) = l.claim("chat:M1:bob", B, None, 20);
    assert!(matches!(d, Claim::Send { increment: false, .. }));
    assert_eq!(c.total, 1);
    assert!(!l.settle("chat:M1:bob", lease, true), "the first attempt's token is stale");
    assert!(l.settle("chat:M1:bob", lease_of(&d), true));
    assert_eq!(l.claim("chat:M1:bob", B, None, 30).0, Claim::Duplicate);
    assert_eq!(l.badges().total(), 1);
    assert_eq!(l.alarm(), Some(TTL));
    assert_eq!(l.fire_alarm(TTL), 1);
    assert_eq!(l.alarm(), None);
}

#[test]
fn alarm_rearms_at_earliest_remaining() {
    let mut l = Ledger::new(TTL, LEASE);
    l.claim("a", B, None, 0);
    l.claim("b", B, None, 3_000);
    l.claim("c", B, Some(Suppression::Preference), 6_000);
    assert_eq!(l.alarm(), Some(TTL), "busy traffic does not postpone the first expiry");
    assert_eq!(l.fire_alarm(TTL), 1);
    assert_eq!(l.alarm(), Some(3_000 + TTL));
    assert_eq!(l.fire_alarm(3_000 + TTL), 1);
    assert_eq!(l.alarm(), Some(6_000 + TTL));
    assert_eq!(l.fire_alarm(6_000 + TTL), 1);
    assert_eq!(l.alarm(), None);
    assert_eq!(l.records().count(), 0);
}

fn lease_of(d: &Claim) -> i64 {
    match d {
        Claim::Send { record, .. } => record.lease_until,
        other => panic!("not a send: {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// Property tests
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// A (re)play of the push for message `key`, maybe suppressed.
    Claim { key: u8, suppression: Option<Suppression> },
    /// The shell dies between writing `pending` and changing the badge.
    CrashingClaim { key: u8 },
    /// An attempt in flight finishes (index into the in-flight list).
    Finish { which: usize, delivered: bool },
    /// An attempt in flight is abandoned (its worker died); its lease runs out.
    Abandon { which: usize },
    /// Mark-read of a bucket.
    Clear { bucket: u8 },
    /// Time passes; alarms that come due fire in order.
    Advance { ms: i64 },
}

fn suppression() -> impl Strategy<Value = Option<Suppression>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(Suppression::Presence)),
        1 => Just(Some(Suppression::Preference)),
        1 => Just(Some(Suppression::NoTokens)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..6, suppression()).prop_map(|(key, suppression)| Op::Claim { key, suppression }),
        1 => (0u8..6).prop_map(|key| Op::CrashingClaim { key }),
        5 => (0usize..8, any::<bool>()).prop_map(|(which, delivered)| Op::Finish { which, delivered }),
        1 => (0usize..8).prop_map(|which| Op::Abandon { which }),
        1 => (0u8..2).prop_map(|bucket| Op::Clear { bucket }),
        4 => (0i64..3_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

fn key_name(k: u8) -> String {
    format!("chat:M{k}:bob")
}

fn bucket_of(k: u8) -> String {
    format!("kiloclaw:sb:C{}", k % 2)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random interleavings of replays, Expo results, crashes, mark-reads and time: the badge is
    /// counted at most once per record lifetime, a concurrent replay is a duplicate, a delivered
    /// record answers duplicate until it expires, the total is the sum of the buckets, and the
    /// alarm is never postponed and leaves nothing expired behind.
    #[test]
    fn ledger_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        let mut l = Ledger::new(TTL, LEASE);
        let mut now = 0i64;
        // (key, started_at) of attempts in flight.
        let mut in_flight: Vec<(u8, i64, i64)> = Vec::new();
        // Keys whose current record lifetime already counted the badge.
        let mut counted: BTreeSet<u8> = BTreeSet::new();
        let mut last_fire = i64::MIN;
        for op in ops {
            let alarm_before = l.alarm();
            let mut fired = false;
            let as_claim = match &op {
                Op::Claim { key, suppression } => Some((*key, *suppression, false)),
                Op::CrashingClaim { key } => Some((*key, None, true)),
                _ => None,
            };
            match op {
                Op::Claim { .. } | Op::CrashingClaim { .. } => {
                    let (key, suppression, crash) = as_claim.unwrap_or((0, None, false));
                    let name = key_name(key);
                    let live = l.record(&name).filter(|r| r.is_live(now)).cloned();
                    if live.is_none() {
                        counted.remove(&key);
                    }
                    let total_before = l.badges().total();
                    let (d, c) = l.claim_with(&name, &bucket_of(key), suppression, now, crash);
                    match &d {
                        Claim::Duplicate => {
                            let r = live.clone();
                            prop_assert!(r.is_some(), "duplicate without a live record");
                            prop_assert!(r.unwrap().status.is_terminal());
                            prop_assert_eq!(c.total, total_before);
                        }
                        Claim::InFlight { until } => {
                            let r = live.clone();
                            prop_assert!(r.is_some(), "in flight without a live record");
                            let r = r.unwrap();
                            prop_assert!(r.status == Status::Pending && r.lease_until > now && r.lease_until == *until);
                            prop_assert_eq!(c.total, total_before);
                        }
                        Claim::Suppress { .. } => prop_assert_eq!(c.total, total_before),
                        Claim::Send { increment, .. } => {
                            // No other attempt of this key may be in flight within its lease.
                            prop_assert!(!in_flight.iter().any(|(k, at, _)| *k == key && at + LEASE > now),
                                "concurrent replay was not a duplicate");
                            if *increment {
                                prop_assert!(!counted.contains(&key), "badge counted twice for one record");
                                if !crash {
                                    prop_assert_eq!(c.total, total_before + 1);
                                }
                            } else {
                                prop_assert_eq!(c.total, total_before);
                            }
                            counted.insert(key);
                            if !crash {
                                in_flight.push((key, now, lease_of(&d)));
                            }
                        }
                    }
                    if let Some(r) = &live {
                        if r.status == Status::Delivered {
                            prop_assert_eq!(&d, &Claim::Duplicate);
                        }
                    }
                }
                Op::Finish { which, delivered } => {
                    if !in_flight.is_empty() {
                        let (key, _, lease) = in_flight.remove(which % in_flight.len());
                        l.settle(&key_name(key), lease, delivered);
                    }
                }
                Op::Abandon { which } => {
                    if !in_flight.is_empty() {
                        in_flight.remove(which % in_flight.len());
                    }
                }
                Op::Clear { bucket } => {
                    let name = format!("kiloclaw:sb:C{bucket}");
                    let before = l.badges().counts(&name);
                    let after = l.clear(&name);
                    prop_assert_eq!(after.bucket, 0);
                    prop_assert_eq!(after.total, before.total - before.bucket);
                }
                Op::Advance { ms } => {
                    let target = now + ms;
                    while let Some(at) = l.alarm() {
                        if at > target {
                            break;
                        }
                        // An alarm set in the past (a record settled after its expiry) fires at once.
                        now = now.max(at);
                        prop_assert!(now >= last_fire);
                        l.fire_alarm(now);
                        last_fire = now;
                        fired = true;
                        prop_assert!(l.records().all(|(_, r)| r.deadline() > now), "expired record survived the alarm");
                    }
                    now = target;
                }
            }
            // The total is the sum of the buckets.
            prop_assert_eq!(l.badges().total(), l.badges().sum());
            prop_assert!(l.badges().total() >= 0);
            // Every record is covered by an alarm no later than its expiry.
            if let Some(min) = l.records().map(|(_, r)| r.deadline()).min() {
                let a = l.alarm();
                prop_assert!(a.is_some() && a.unwrap() <= min, "record {min} not covered by alarm {a:?}");
            }
            // Writes never postpone the alarm.
            if !fired {
                if let (Some(b), Some(a)) = (alarm_before, l.alarm()) {
                    prop_assert!(a <= b, "alarm postponed from {b} to {a}");
                }
            }
        }
    }

    /// Exactly once: messages replayed in any order, with Expo failing at random, then every
    /// failed one retried until delivered. Each bucket ends up counting each message that was
    /// sent exactly once, and every message ends delivered or suppressed.
    #[test]
    fn exactly_once_under_random_retry_orders(
        messages in proptest::collection::vec(suppression(), 1..10),
        events in proptest::collection::vec((0usize..10, 0usize..10, any::<bool>(), any::<bool>()), 0..80),
    ) {
        let mut l = Ledger::new(i64::MAX / 4, LEASE);
        let now = 1_000;
        let mut in_flight: Vec<(usize, i64)> = Vec::new();
        // The first decision decides whether a message counts: the suppression in effect at its
        // first claim is recorded and later replays are duplicates.
        let mut first: HashMap<usize, bool> = HashMap::new();
        for (m, f, replay, ok) in events {
            let m = m % messages.len();
            if replay || in_flight.is_empty() {
                let (d, _) = l.claim(&key_name(m as u8), &bucket_of(m as u8), messages[m], now);
                match d {
                    Claim::Send { ref record, .. } => { first.entry(m).or_insert(true); in_flight.push((m, record.lease_until)); }
                    Claim::Suppress { .. } => { first.entry(m).or_insert(false); }
                    Claim::Duplicate | Claim::InFlight { .. } => { prop_assert!(first.contains_key(&m)); }
                }
            } else {
                let (m, lease) = in_flight.remove(f % in_flight.len());
                l.settle(&key_name(m as u8), lease, ok);
            }
        }
        // Drain: finish what is in flight (failing), then retry every message until it is final.
        for (m, lease) in in_flight.drain(..) {
            l.settle(&key_name(m as u8), lease, false);
        }
        for (m, s) in messages.iter().enumerate() {
            for _ in 0..3 {
                match l.claim(&key_name(m as u8), &bucket_of(m as u8), *s, now).0 {
                    Claim::Send { ref record, .. } => { first.entry(m).or_insert(true); l.settle(&key_name(m as u8), record.lease_until, true); }
                    Claim::Suppress { .. } => { first.entry(m).or_insert(false); }
                    Claim::Duplicate => break,
                    Claim::InFlight { .. } => prop_assert!(false, "nothing is in flight after the drain"),
                }
            }
            let r = l.record(&key_name(m as u8)).unwrap();
            prop_assert!(r.status.is_terminal(), "message {m} ended {:?}", r.status);
        }
        for b in 0..2u8 {
            let want = (0..messages.len()).filter(|m| (*m as u8) % 2 == b && first.get(m) == Some(&true)).count() as i64;
            prop_assert_eq!(l.badges().counts(&format!("kiloclaw:sb:C{b}")).bucket, want);
        }
    }
}
