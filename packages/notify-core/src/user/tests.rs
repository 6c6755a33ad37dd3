//! The user's object's rules, natively, with virtual time: claims and settles over an in-memory
//! SQLite, the all-or-nothing claim, and the alarm's sweep and receipt checks.

use super::receipts::DueReceipt;
use super::{ClaimAnswer, Config, PendingReceipt, User, UserCommand};
use crate::config::PENDING_LEASE_MS;
use crate::expo::{Receipt, DEVICE_NOT_REGISTERED, MAX_RECEIPT_ATTEMPTS};
use crate::ledger::Suppression;
use std::collections::BTreeMap;
use switchboard_core::store::Store;
use switchboard_notify_contract::Outcome;
use switchboard_sqlite_store::{FailingStore, SqliteStore};

const T0: i64 = 1_700_000_000_000;
const TTL: i64 = 60_000;
const DELAY: i64 = 900_000;
const CONFIG: Config = Config { idem_ttl_ms: TTL, receipt_delay_ms: DELAY, lease_ms: PENDING_LEASE_MS };

fn user() -> User<SqliteStore> {
    User::open(SqliteStore::new(), CONFIG).unwrap()
}

fn claim<S: Store>(u: &User<S>, key: &str, bucket: &str, now: i64) -> (ClaimAnswer, Option<i64>) {
    let d = u.claim(key, bucket, None, now).unwrap();
    (d.answer, d.alarm_at)
}

fn receipt(ticket: &str) -> PendingReceipt {
    PendingReceipt { ticket_id: ticket.into(), token: format!("tok-{ticket}") }
}

#[test]
fn a_send_counts_the_badge_once_and_replays_are_duplicates() {
    let u = user();
    let (a, alarm) = claim(&u, "k1", "c1", T0);
    assert_eq!(a, ClaimAnswer::Send { lease: T0 + PENDING_LEASE_MS, badge: 1 });
    // A pending record lives until the later of its expiry and its lease.
    assert_eq!(alarm, Some(T0 + TTL.max(PENDING_LEASE_MS)));
    assert_eq!(
        claim(&u, "k1", "c1", T0 + 1).0,
        ClaimAnswer::InFlight { until: T0 + PENDING_LEASE_MS },
        "within the lease"
    );
    u.settle("alice", "k1", T0 + PENDING_LEASE_MS, true, &[], T0 + 2).unwrap();
    assert_eq!(claim(&u, "k1", "c1", T0 + 3).0, ClaimAnswer::Duplicate, "delivered");
    assert_eq!(claim(&u, "k2", "c2", T0 + 4).0, ClaimAnswer::Send { lease: T0 + 4 + PENDING_LEASE_MS, badge: 2 });
    let b = u.badges().unwrap();
    assert_eq!(b.total, 2);
    assert_eq!(
        b.buckets.iter().map(|c| (c.badge_bucket.as_str(), c.badge_count)).collect::<Vec<_>>(),
        vec![("c1", 1), ("c2", 1)]
    );
    assert_eq!(u.clear("c1").unwrap().badge_count, 1);
    assert_eq!(u.badges().unwrap().buckets.len(), 1);
}

/// The fault test's lost pushes (#18): an attempt claims (the badge counts), then a crash kills it
/// before Expo is called. A replay within the lease must not be taken for done (it answered
/// `duplicate` before, and the chat side dropped the push): it is `in_flight` until the lease
/// ends, and then sent without counting the badge again.
#[test]
fn an_attempt_cut_short_is_in_flight_until_its_lease_ends_then_sent_once_without_counting_again() {
    let lease_ms = 15_000;
    let u = User::open(SqliteStore::new(), Config { lease_ms, ..CONFIG }).unwrap();
    assert_eq!(claim(&u, "k", "c", T0).0, ClaimAnswer::Send { lease: T0 + lease_ms, badge: 1 });
    // The crash: no settle. Replays while the lease runs.
    for at in [T0 + 1, T0 + lease_ms - 1] {
        assert_eq!(claim(&u, "k", "c", at).0, ClaimAnswer::InFlight { until: T0 + lease_ms });
    }
    let (a, _) = claim(&u, "k", "c", T0 + lease_ms);
    assert_eq!(a, ClaimAnswer::Send { lease: T0 + 2 * lease_ms, badge: 1 }, "sent again, counted once");
    u.settle("alice", "k", T0 + 2 * lease_ms, true, &[], T0 + lease_ms + 1).unwrap();
    assert_eq!(claim(&u, "k", "c", T0 + 3 * lease_ms).0, ClaimAnswer::Duplicate);
    assert_eq!(u.badges().unwrap().total, 1);
}

#[test]
fn a_suppressed_claim_records_without_counting() {
    let u = user();
    let d = u.claim("k", "c", Some(Suppression::Presence), T0).unwrap();
    assert_eq!(d.answer, ClaimAnswer::Suppressed { outcome: Outcome::SuppressedPresence });
    assert_eq!(d.alarm_at, Some(T0 + TTL));
    assert_eq!(u.badges().unwrap().total, 0);
    assert_eq!(claim(&u, "k", "c", T0 + 1).0, ClaimAnswer::Duplicate);
}

#[test]
fn a_claim_that_fails_at_any_statement_leaves_no_record_and_no_badge() {
    let u = User::open(FailingStore::new(), CONFIG).unwrap();
    claim(&u, "k0", "c", T0);
    // How many statements a counting claim takes, measured on a healthy run.
    u.store().count.set(0);
    claim(&u, "k1", "c", T0 + 1);
    let statements = u.store().count.get();
    assert!(statements >= 4, "{statements}");
    for n in 1..=statements {
        let before = u.store().inner.dump();
        u.store().fail_in(n);
        let r = u.claim(&format!("f{n}"), "c", None, T0 + 10);
        assert!(r.is_err(), "statement {n} failed but the claim succeeded");
        u.store().healthy();
        assert_eq!(u.store().inner.dump(), before, "statement {n} left a trace");
    }
    // The failed keys left nothing: the next claim of one counts once, from a total of 2.
    assert_eq!(claim(&u, "f1", "c", T0 + 20).0, ClaimAnswer::Send { lease: T0 + 20 + PENDING_LEASE_MS, badge: 3 });
    let inspected = u.inspect(T0 + 21, None).unwrap();
    assert_eq!(inspected.records.len(), 3);
    assert_eq!(inspected.badges.total, 3);
}

#[test]
fn a_settle_that_fails_keeps_neither_the_record_change_nor_the_receipts() {
    let u = User::open(FailingStore::new(), CONFIG).unwrap();
    let (ClaimAnswer::Send { lease, .. }, _) = claim(&u, "k", "c", T0) else { panic!("send expected") };
    let before = u.store().inner.dump();
    u.store().fail_in(3); // after the read and the record's write: the receipt's insert
    assert!(u.settle("alice", "k", lease, true, &[receipt("t1")], T0 + 1).is_err());
    u.store().healthy();
    assert_eq!(u.store().inner.dump(), before);
}

#[test]
fn the_alarm_sweeps_records_at_their_deadline() {
    let u = user();
    let d = u.claim("s", "c", Some(Suppression::NoTokens), T0).unwrap();
    let deadline = d.alarm_at.unwrap();
    claim(&u, "p", "c", T0 + 10);
    // The next alarm is the earliest deadline.
    assert_eq!(u.next_alarm(T0 + 20, None), Some(deadline));
    assert_eq!(u.sweep(deadline - 1).unwrap(), 0, "not yet");
    assert_eq!(u.sweep(deadline).unwrap(), 1, "the suppressed record's deadline");
    let left = u.inspect(deadline, None).unwrap();
    assert_eq!(left.records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), vec!["p"]);
    assert!(left.records.iter().all(|r| r.deadline > deadline));
    let p_deadline = left.records[0].deadline;
    assert_eq!(u.next_alarm(deadline, None), Some(p_deadline));
    // An alarm a write asked for meanwhile wins when sooner; never before now + 1.
    assert_eq!(u.next_alarm(deadline, Some(deadline + 5)), Some(deadline + 5));
    assert_eq!(u.next_alarm(p_deadline + 10, None), Some(p_deadline + 11));
    u.sweep(p_deadline).unwrap();
    assert_eq!(u.next_alarm(p_deadline, None), None, "nothing left: no alarm");
    // A swept key is claimed afresh (and counted again).
    assert!(matches!(claim(&u, "p", "c", p_deadline + 1).0, ClaimAnswer::Send { badge: 2, .. }));
}

#[test]
fn receipts_are_checked_when_due_and_asked_again_until_the_limit() {
    let u = user();
    let (ClaimAnswer::Send { lease, .. }, _) = claim(&u, "k", "c", T0) else { panic!("send expected") };
    let settled =
        u.settle("alice", "k", lease, true, &[receipt("ok"), receipt("dead"), receipt("late")], T0 + 5).unwrap();
    // The delivered record's expiry comes before the receipts.
    assert_eq!(settled.alarm_at, Some((T0 + TTL).min(T0 + 5 + DELAY)));
    let due_at = T0 + 5 + DELAY;
    assert!(u.receipts_due(due_at - 1).unwrap().is_empty(), "not due yet");
    let due = u.receipts_due(due_at).unwrap();
    assert_eq!(due.len(), 3);
    let mut answered = BTreeMap::new();
    answered.insert("ok".to_string(), Receipt::Ok);
    answered.insert(
        "dead".to_string(),
        Receipt::Error { error: Some(DEVICE_NOT_REGISTERED.into()), message: "gone".into() },
    );
    let checked = u.receipts_checked(&due, Some(&answered), due_at).unwrap();
    assert_eq!(checked.dead_tokens, vec![("alice".to_string(), "tok-dead".to_string())]);
    // The one not ready is asked again a delay later.
    let left = u.inspect(due_at, None).unwrap().receipts;
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].ticket_id.as_str(), left[0].attempts, left[0].due_at), ("late", 1, due_at + DELAY));
    u.sweep(due_at).unwrap();
    assert_eq!(u.next_alarm(due_at, None), Some(due_at + DELAY));
    // Expo cannot be reached: asked again, until the attempts run out.
    let mut now = due_at + DELAY;
    for attempt in 2..=MAX_RECEIPT_ATTEMPTS {
        let due: Vec<DueReceipt> = u.receipts_due(now).unwrap();
        assert_eq!(due.len(), 1, "attempt {attempt}");
        u.receipts_checked(&due, None, now).unwrap();
        now += DELAY;
    }
    assert!(u.inspect(now, None).unwrap().receipts.is_empty(), "dropped after {MAX_RECEIPT_ATTEMPTS} attempts");
    assert_eq!(u.next_alarm(now, None), None);
}

#[test]
fn commands_answer_their_typed_answers() {
    let u = user();
    let cmd: UserCommand =
        serde_json::from_str(r#"{"op":"claim","user_id":"alice","key":"k","bucket":"c","suppression":null}"#).unwrap();
    let d = u.handle(cmd, T0, None).unwrap();
    let v = serde_json::to_value(&d.answer).unwrap();
    assert_eq!(v["decision"], "send");
    assert_eq!(v["badge"], 1);
    let d = u.handle(UserCommand::Clear { bucket: "c".into() }, T0, None).unwrap();
    assert_eq!(serde_json::to_value(&d.answer).unwrap(), serde_json::json!({"badgeCount": 0}));
    let d = u.handle(UserCommand::Inspect, T0, Some(T0 + 7)).unwrap();
    let v = serde_json::to_value(&d.answer).unwrap();
    assert_eq!(v["alarmAt"], T0 + 7);
    assert_eq!(v["records"][0]["key"], "k");
    assert_eq!(v["records"][0]["leaseUntil"], T0 + PENDING_LEASE_MS);
}

/// A settle answers the user's total unread as it is now: a mark-read while the push was on its way
/// to Expo lowered it, and what the chat side announces must not put the old total back.
#[test]
fn a_settle_answers_the_total_as_it_is_now() {
    let u = user();
    let (a, _) = claim(&u, "k1", "c1", T0);
    assert_eq!(a, ClaimAnswer::Send { lease: T0 + PENDING_LEASE_MS, badge: 1 });
    assert_eq!(u.clear("c1").unwrap().badge_count, 0, "read while the push was being sent");
    let d = u.settle("alice", "k1", T0 + PENDING_LEASE_MS, true, &[], T0 + 2).unwrap();
    assert_eq!(d.answer.badge_total, Some(0));
    // Another conversation's push counted meanwhile: that is the total.
    claim(&u, "k2", "c2", T0 + 3);
    claim(&u, "k3", "c3", T0 + 4);
    let d = u.settle("alice", "k2", T0 + 3 + PENDING_LEASE_MS, true, &[], T0 + 5).unwrap();
    assert_eq!(d.answer.badge_total, Some(2));
}
