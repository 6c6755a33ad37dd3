//! Pushes that survive: recorded with the message, delivered by the alarm, retried with backoff
//! after a failure or a crash mid-delivery, dead-lettered after `PUSH_MAX_ATTEMPTS`, and always
//! the same request (so the notifications worker's ledger, keyed by message and user, counts a
//! badge once).

use super::*;
use crate::push::{PushSettled, PUSH_BACKOFF, PUSH_CLAIM_MS, PUSH_DEAD_KEEP_MS, PUSH_MAX_ATTEMPTS};

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
        assert_eq!(c.push_settled(&p.message_id, Ok(()), T0 + 5, 1).unwrap(), PushSettled::Delivered);
    }
    assert_eq!(outbox_rows(&c), 0);
    assert_eq!(c.push_settled(&recorded.message_id, Ok(()), T0 + 6, 1).unwrap(), PushSettled::Unknown);
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
        let id = a.pushes[0].message_id.clone();
        match c.push_settled(&id, Err("rpc failed".into()), now, 0xdead_beef).unwrap() {
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
