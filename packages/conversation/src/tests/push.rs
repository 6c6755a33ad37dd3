//! Pushes that survive: recorded with the message, delivered by the alarm, retried with backoff
//! after a failure or a crash mid-delivery, dead-lettered after `PUSH_MAX_ATTEMPTS`, and always
//! the same request (so the notifications worker's ledger, keyed by message and user, counts a
//! badge once).

use super::*;
use crate::push::{
    PushSettled, PUSH_BACKOFF, PUSH_CLAIM_MS, PUSH_DEAD_KEEP_MS, PUSH_HELD_MAX_WAIT_MS, PUSH_HELD_MIN_WAIT_MS,
    PUSH_MAX_ATTEMPTS,
};
use switchboard_notify_contract::{Outcome, RecipientOutcome, SendPushResult};

fn outbox_rows(c: &Conversation<SqliteStore>) -> i64 {
    c.store().scalar("SELECT COUNT(*) AS v FROM push_outbox", &[]).unwrap().unwrap_or(0)
}

#[test]
fn a_push_is_recorded_with_its_message_and_delivered_by_the_alarm() {
    let c = conversation();
    create(&c, &["bob"]);
    let (r, e) = send(&c, "alice", "hi", None, T0);
    r.unwrap();
    let recorded = e.push.clone().unwrap();
    assert_eq!(outbox_rows(&c), 1, "recorded in the send's transaction");
    assert_eq!(e.alarm_at, Some(T0));
    // A duplicate send records nothing more.
    let (_, e) = send(&c, "alice", "hi", Some("k"), T0 + 1);
    let (_, again) = send(&c, "alice", "hi", Some("k"), T0 + 2);
    assert!(e.push.is_some() && again.push.is_none());
    assert_eq!(outbox_rows(&c), 2);
    // The alarm hands both out, oldest first, exactly as recorded.
    let a = c.alarm_start(T0 + 3).unwrap();
    assert_eq!(a.pushes.len(), 2);
    assert_eq!(a.pushes[0], recorded);
    // Claimed: an alarm meanwhile hands out nothing.
    assert!(c.alarm_start(T0 + 4).unwrap().pushes.is_empty());
    for p in &a.pushes {
        assert_eq!(c.push_settled(p, &delivered(), T0 + 5, 1).unwrap(), PushSettled::Delivered);
    }
    assert_eq!(outbox_rows(&c), 0);
    assert_eq!(c.push_settled(&recorded, &delivered(), T0 + 6, 1).unwrap(), PushSettled::Unknown);
}

#[test]
fn a_delivery_lost_mid_way_is_handed_out_again_after_its_claim() {
    let c = conversation();
    create(&c, &["bob"]);
    let (_, e) = send(&c, "alice", "hi", None, T0);
    let first = c.alarm_start(T0).unwrap().pushes;
    assert_eq!(first.len(), 1);
    // The object restarted before settling (nothing recorded the outcome): the alarm fires again
    // by the end of the claim, and hands out the same request.
    assert_eq!(c.alarm_finish(T0, None).unwrap(), Some(T0 + 1_000), "the list flush first");
    let again = c.alarm_start(T0 + PUSH_CLAIM_MS).unwrap().pushes;
    assert_eq!(again, first);
    assert_eq!(again[0], e.push.unwrap(), "the same request: the ledger's key is the same");
}

#[test]
fn failures_back_off_then_dead_letter_and_nothing_is_retried_after() {
    let c = conversation();
    create(&c, &["bob"]);
    send(&c, "alice", "hi", None, T0).0.unwrap();
    let mut now = T0;
    let mut previous_wait = 0;
    for attempt in 1..=PUSH_MAX_ATTEMPTS {
        let a = c.alarm_start(now).unwrap();
        assert_eq!(a.pushes.len(), 1, "attempt {attempt}");
        match c.push_settled(&a.pushes[0], &Err("rpc failed".into()), now, 0xdead_beef).unwrap() {
            PushSettled::Retry { at, attempts } => {
                assert_eq!(attempts, attempt);
                let wait = (at - now) as u64;
                let ceiling = PUSH_BACKOFF.initial_ms << (attempt - 1);
                assert!(
                    wait <= ceiling.min(PUSH_BACKOFF.cap_ms) && wait >= ceiling.min(PUSH_BACKOFF.cap_ms) / 2,
                    "{wait}"
                );
                assert!(wait as i64 >= previous_wait / 2);
                previous_wait = wait as i64;
                // The alarm is asked for then (or sooner, for the list flush).
                let next = c.alarm_finish(now, None).unwrap().unwrap();
                assert!(next <= at);
                now = at;
            }
            PushSettled::Dead { attempts } => {
                assert_eq!((attempt, attempts), (PUSH_MAX_ATTEMPTS, PUSH_MAX_ATTEMPTS));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(c.dead_pushes().unwrap(), 1);
    let error = c.store().rows_json("SELECT last_error FROM push_outbox", &[]).unwrap();
    assert!(error.contains("rpc failed"), "{error}");
    // Never handed out again; kept for operators, then swept.
    assert!(c.alarm_start(now + 3_600_000).unwrap().pushes.is_empty());
    assert_eq!(outbox_rows(&c), 1);
    c.alarm_start(now + PUSH_DEAD_KEEP_MS + 1).unwrap();
    assert_eq!((outbox_rows(&c), c.dead_pushes().unwrap()), (0, 0));
}

fn answer(outcomes: &[(&str, Outcome, Option<i64>)]) -> Result<SendPushResult, String> {
    let outcomes = outcomes
        .iter()
        .map(|(u, o, retry_at)| RecipientOutcome {
            user_id: u.to_string(),
            outcome: *o,
            badge_count: None,
            retry_at: *retry_at,
        })
        .collect();
    Ok(SendPushResult { version: 1, skipped: None, outcomes })
}

/// The fault test's lost pushes (#18, `FAULTS_SEED=1795985487029`): a crash killed a delivery after
/// the notifications worker's ledger had claimed the push (and counted the badge) and before Expo
/// was called. The retry was answered `duplicate` and the outbox dropped the push. Now the ledger
/// answers `pending` until the dead attempt's lease ends, and the outbox keeps the push, asks
/// again then (no attempt counted), and settles it only when it is done.
#[test]
fn a_push_held_by_an_attempt_a_crash_cut_short_is_asked_again_when_its_lease_ends() {
    let c = conversation();
    create(&c, &["bob"]);
    let (_, e) = send(&c, "alice", "hi", None, T0);
    let recorded = e.push.unwrap();
    let first = c.alarm_start(T0).unwrap().pushes;
    let lease_end = T0 + 120_000;
    let held = c.push_settled(&first[0], &answer(&[("bob", Outcome::Pending, Some(lease_end))]), T0 + 5, 1).unwrap();
    assert_eq!(held, PushSettled::Held { at: lease_end });
    assert_eq!(outbox_rows(&c), 1, "kept");
    let attempts = c.store().scalar("SELECT attempts AS v FROM push_outbox", &[]).unwrap();
    assert_eq!(attempts, Some(0), "being held is not a failed attempt");
    // The alarm is asked for by then, and nothing is handed out before.
    assert!(c.alarm_finish(T0 + 5, None).unwrap().unwrap() <= lease_end);
    assert!(c.alarm_start(lease_end - 1).unwrap().pushes.is_empty());
    let again = c.alarm_start(lease_end).unwrap().pushes;
    assert_eq!(again, vec![recorded], "the same request: the ledger counts nothing twice");
    let done = answer(&[("bob", Outcome::Delivered, None)]);
    assert_eq!(c.push_settled(&again[0], &done, lease_end + 1, 1).unwrap(), PushSettled::Delivered);
    assert_eq!(outbox_rows(&c), 0);
    // A lease end far out (or in the past) is not believed beyond the bounds.
    let (_, e) = send(&c, "alice", "again", None, T0 + 200_000);
    let p = e.push.unwrap();
    c.alarm_start(T0 + 200_000).unwrap();
    let far = answer(&[("bob", Outcome::Pending, Some(i64::MAX))]);
    assert_eq!(
        c.push_settled(&p, &far, T0 + 200_000, 1).unwrap(),
        PushSettled::Held { at: T0 + 200_000 + PUSH_HELD_MAX_WAIT_MS }
    );
    c.alarm_start(T0 + 200_000 + PUSH_HELD_MAX_WAIT_MS).unwrap();
    let past = answer(&[("bob", Outcome::Pending, Some(0))]);
    let now = T0 + 200_001 + PUSH_HELD_MAX_WAIT_MS;
    assert_eq!(c.push_settled(&p, &past, now, 1).unwrap(), PushSettled::Held { at: now + PUSH_HELD_MIN_WAIT_MS });
}

/// A restart (a crash, an eviction) mid-delivery ends the claim with the instance that held it:
/// the next instance hands the push out at its first alarm, not after the claim would have run out.
#[test]
fn after_a_restart_mid_delivery_the_next_instance_hands_the_push_out_at_once() {
    let mut c = conversation();
    create(&c, &["bob"]);
    let (_, e) = send(&c, "alice", "hi", None, T0);
    assert_eq!(c.alarm_start(T0).unwrap().pushes.len(), 1);
    // The same instance holds it for its claim.
    assert!(c.alarm_start(T0 + 1).unwrap().pushes.is_empty());
    assert_eq!(c.next_push_at().unwrap(), Some(T0 + PUSH_CLAIM_MS));
    let store = std::mem::replace(&mut c.store, SqliteStore::new());
    let restarted = Conversation::new(store, CONFIG);
    assert_eq!(restarted.next_push_at().unwrap(), Some(T0), "due now");
    assert_eq!(restarted.alarm_start(T0 + 2).unwrap().pushes, vec![e.push.unwrap()]);
}

/// Only the recipients whose push is not done are asked again; a failure among them counts an
/// attempt and waits at least until a held one's lease ends.
#[test]
fn only_the_recipients_not_done_are_asked_again() {
    let c = conversation();
    create(&c, &["bob", "carol", "dave"]);
    send(&c, "alice", "hi", None, T0).0.unwrap();
    let p = c.alarm_start(T0).unwrap().pushes.remove(0);
    assert_eq!(p.recipients.len(), 3);
    let mixed = answer(&[
        ("bob", Outcome::Delivered, None),
        ("carol", Outcome::Failed, None),
        ("dave", Outcome::Pending, Some(T0 + 60_000)),
    ]);
    match c.push_settled(&p, &mixed, T0 + 1, 1).unwrap() {
        PushSettled::Retry { at, attempts } => assert_eq!((at, attempts), (T0 + 60_000, 1)),
        other => panic!("{other:?}"),
    }
    let again = c.alarm_start(T0 + 60_000).unwrap().pushes.remove(0);
    let mut who: Vec<&str> = again.recipients.iter().map(|r| r.user_id.as_str()).collect();
    who.sort();
    assert_eq!(who, ["carol", "dave"], "bob's is done (the request's order is the roster's)");
    assert_eq!((again.message_id.as_str(), again.text.as_str()), (p.message_id.as_str(), p.text.as_str()));
    let done = answer(&[("carol", Outcome::NoTokens, None), ("dave", Outcome::Duplicate, None)]);
    assert_eq!(c.push_settled(&again, &done, T0 + 60_001, 1).unwrap(), PushSettled::Delivered);
    assert_eq!(outbox_rows(&c), 0);
}
