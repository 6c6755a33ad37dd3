//! A message's activity reaches the members' lists without a write to the conversation row per
//! message: the list is marked dirty once per flush pass, and the pass reads the activity from
//! the newest message.

use super::*;

/// The stored `list_version` (what a flush pass compares with `list_flushed`).
fn list_version<S: crate::Store>(c: &Conversation<S>) -> i64 {
    c.store().scalar("SELECT list_version AS v FROM conversation", &[]).unwrap().unwrap()
}

fn send_looked_at<S: crate::Store>(c: &Conversation<S>, client_id: &str, now: i64) {
    let sockets = || vec!["alice".to_string(), "bob".to_string()];
    let (r, _) = c.handle(
        "alice",
        Command::SendMessage {
            content: json!([{"type": "text", "text": "hi"}]),
            in_reply_to_message_id: None,
            client_id: Some(client_id.into()),
        },
        &Ctx { now_ms: now, random: 7, socket_members: &sockets },
    );
    assert_eq!(r.unwrap().status, 201);
}

#[test]
fn a_send_in_a_dirty_list_is_two_statements_and_no_conversation_row() {
    let c = Conversation::open(FailingStore::new(), CONFIG).unwrap();
    create(&c, &["bob"]);
    send_looked_at(&c, "c1", T0 + 1);
    let marked = list_version(&c);
    assert!(marked > 0);
    // Everyone is looking (no push), the row and roster are cached, the list is already dirty:
    // the idempotency claim, then the message with its event; nothing else.
    c.store().count.set(0);
    send_looked_at(&c, "c2", T0 + 2);
    assert_eq!(c.store().count.get(), 2);
    assert_eq!(list_version(&c), marked, "the row was not written");
    assert_eq!(c.meta().unwrap().unwrap().last_activity_at, Some(T0 + 2));
}

#[test]
fn the_flush_reads_the_newest_message_and_a_send_during_a_pass_marks_the_list_again() {
    let c = conversation();
    create(&c, &["bob"]);
    send_looked_at(&c, "c1", T0 + 1);
    send_looked_at(&c, "c2", T0 + 2);
    let v = list_version(&c);
    let due = T0 + 10_000;
    let batch = c.alarm_start(due).unwrap().flush.unwrap();
    assert_eq!(batch.last_activity_at, Some(T0 + 2), "the newest message's time, never written to the row");
    // A message while the pass is under way: the pass serves `v`, so the list is marked again...
    send_looked_at(&c, "c3", due + 1);
    assert_eq!(list_version(&c), v + 1);
    // ...and once the pass ends, another one follows with the newer activity.
    let next = c.alarm_finish(due + 2, Some((&batch, &[]))).unwrap().unwrap();
    let again = c.alarm_start(next).unwrap().flush.unwrap();
    assert_eq!(again.last_activity_at, Some(due + 1));
    // Caught up: what is left is the idempotency records' sweep, no flush.
    assert_eq!(c.alarm_finish(next, Some((&again, &[]))).unwrap(), Some(T0 + 1 + CONFIG.idem_ttl_ms));
    assert!(c.alarm_start(next + 1).unwrap().flush.is_none());
}

#[test]
fn after_hibernation_or_a_failed_send_the_next_send_marks_the_list() {
    // A fresh object over the stored conversation knows nothing of the dirty list: it marks it
    // again (harmless), and the activity is read from the newest message.
    let c = Conversation::open(FailingStore::new(), CONFIG).unwrap();
    create(&c, &["bob"]);
    send_looked_at(&c, "c1", T0 + 1);
    let v = list_version(&c);
    // A send whose last statement fails rolls back and forgets what it knew.
    c.store().count.set(0);
    c.store().fail_in(2);
    let sockets = || vec!["alice".to_string(), "bob".to_string()];
    let content = json!([{"type": "text", "text": "x"}]);
    let (r, _) = c.handle(
        "alice",
        Command::SendMessage { content, in_reply_to_message_id: None, client_id: Some("c2".into()) },
        &Ctx { now_ms: T0 + 2, random: 7, socket_members: &sockets },
    );
    assert!(r.is_err());
    c.store().healthy();
    assert_eq!(list_version(&c), v);
    assert_eq!(c.meta().unwrap().unwrap().last_activity_at, Some(T0 + 1));
    c.store().count.set(0);
    send_looked_at(&c, "c3", T0 + 3);
    assert_eq!(list_version(&c), v + 1, "marked again: the cache was dropped with the failure");
    assert_eq!(c.meta().unwrap().unwrap().last_activity_at, Some(T0 + 3));
}
