//! The background reconcile of members' lists (#18): after a pass that served activity, one pass
//! `list_reconcile_ms` later tells every member the whole entry (sandbox, join time, title, last
//! activity), in the flush's bounded batches, so an entry that went missing or stale is repaired
//! without any new activity; it is never postponed, an idle conversation gets one, and a member who
//! left while a batch was on its way is told to remove the entry again.

use super::*;
use crate::alarm::FlushBatch;

const R: i64 = CONFIG.list_reconcile_ms;

/// Runs every alarm due up to `until`, each batch told without failures; answers the batches.
fn run_until(c: &Conversation<SqliteStore>, mut at: Option<i64>, until: i64) -> Vec<(i64, FlushBatch)> {
    let mut told = Vec::new();
    while let Some(now) = at.filter(|a| *a <= until) {
        let start = c.alarm_start(now).unwrap();
        for p in &start.pushes {
            c.push_settled(p, &delivered(), now, 1).unwrap();
        }
        if let Some(b) = &start.flush {
            told.push((now, b.clone()));
        }
        at = c.alarm_finish(now, start.flush.as_ref().map(|b| (b, &[][..]))).unwrap();
    }
    told
}

#[test]
fn a_flush_is_followed_by_one_reconcile_that_tells_everyone_the_whole_entry() {
    let c = conversation();
    create(&c, &["bob", "carol"]);
    let (_, e) = send(&c, "alice", "hello", None, T0 + 10);
    let told = run_until(&c, e.alarm_at, T0 + 10 * R);
    assert_eq!(told.len(), 2, "the flush, then one reconcile: {told:?}");
    let (flush_at, flush) = &told[0];
    assert!(flush.repair.is_none());
    let (at, reconcile) = &told[1];
    // Due a period after creation (set then, never postponed), which is after the flush.
    assert!(*at > *flush_at);
    assert_eq!(*at, T0 + R, "a period after creation");
    assert!(!reconcile.retry);
    assert_eq!(reconcile.members, ["alice", "bob", "bot:kiloclaw:sb1", "carol"]);
    let repair = reconcile.repair.clone().unwrap();
    assert_eq!(repair.sandbox_id, "sb1");
    assert_eq!(repair.joined_at, vec![T0; 4]);
    assert_eq!((reconcile.title.as_deref(), reconcile.last_activity_at), (Some("hello"), Some(T0 + 10)));
    // Idle afterwards: nothing more, ever.
    assert_eq!(c.alarm_finish(at + 1, None).unwrap(), None);
    let later = c.alarm_start(T0 + 100 * R).unwrap();
    assert!(later.flush.is_none());
}

#[test]
fn a_busy_conversation_is_reconciled_once_per_period_and_the_reconcile_is_never_postponed() {
    let c = conversation();
    create(&c, &["bob"]);
    let mut at = None;
    let mut told = Vec::new();
    // A message every 10 s for 3 periods.
    let mut now = T0;
    while now < T0 + 3 * R {
        let (_, e) = send(&c, "alice", "m", None, now);
        at = switchboard_core::alarm::next_fire(at, e.alarm_at);
        told.extend(run_until(&c, at, now + 9_999));
        at = c.alarm_finish(now + 9_999, None).unwrap();
        now += 10_000;
    }
    let reconciles: Vec<i64> = told.iter().filter(|(_, b)| b.repair.is_some()).map(|(t, _)| *t).collect();
    assert!((2..=3).contains(&reconciles.len()), "{reconciles:?}");
    for w in reconciles.windows(2) {
        assert!(w[1] - w[0] >= R, "at most one per period: {reconciles:?}");
        assert!(w[1] - w[0] <= R + 20_000, "and not postponed by the activity: {reconciles:?}");
    }
}

#[test]
fn a_reconcile_goes_in_bounded_batches_and_survives_a_restart() {
    let mut c = conversation();
    let people: Vec<String> = (0..120).map(|i| format!("user{i:03}")).collect();
    create(&c, &people.iter().map(String::as_str).collect::<Vec<_>>());
    let (_, e) = send(&c, "alice", "hi", None, T0 + 1);
    // The flush pass (3 batches), then the reconcile is due; the object restarts before it.
    let told = run_until(&c, e.alarm_at, T0 + R / 2);
    assert!(told.iter().all(|(_, b)| b.repair.is_none() && b.members.len() <= FLUSH_BATCH));
    let store = std::mem::replace(&mut c.store, SqliteStore::new());
    let c = Conversation::new(store, CONFIG);
    let told = run_until(&c, Some(T0 + R / 2), T0 + 10 * R);
    let batches: Vec<&FlushBatch> = told.iter().map(|(_, b)| b).collect();
    assert_eq!(batches.len(), 3, "122 members, 50 a batch");
    assert!(batches.iter().all(|b| b.repair.is_some() && b.members.len() <= FLUSH_BATCH));
    let everyone: usize = batches.iter().map(|b| b.members.len()).sum();
    assert_eq!(everyone, 122);
}

#[test]
fn a_member_who_left_while_a_reconcile_batch_was_on_its_way_is_told_to_remove_it_again() {
    let c = conversation();
    create(&c, &["bob", "carol"]);
    let (_, e) = send(&c, "alice", "hi", None, T0 + 1);
    run_until(&c, e.alarm_at, T0 + R / 2);
    let start = c.alarm_start(T0 + 2 * R).unwrap();
    let batch = start.flush.unwrap();
    assert!(batch.repair.is_some() && batch.members.contains(&"bob".to_string()));
    assert_eq!(c.left_during(&batch).unwrap(), Vec::<String>::new());
    // Bob leaves while the batch's calls are made.
    assert_eq!(c.handle("bob", Command::Leave, &ctx(T0 + 2 * R)).0.unwrap().status, 204);
    assert_eq!(c.left_during(&batch).unwrap(), ["bob"]);
    c.alarm_finish(T0 + 2 * R, Some((&batch, &[]))).unwrap();
    // A flush batch (not a reconcile) tells no one to remove anything: it adds no entry.
    let (_, e) = send(&c, "alice", "again", None, T0 + 3 * R);
    let told = run_until(&c, e.alarm_at, T0 + 3 * R + 5_000);
    let (_, flush) = told.first().unwrap();
    assert!(flush.repair.is_none());
    assert!(!flush.members.contains(&"bob".to_string()));
    assert!(c.left_during(flush).unwrap().is_empty());
}

/// A conversation nobody writes in is reconciled once, a period after its creation: a member's list
/// entry that the worker failed to add at creation is added then.
#[test]
fn a_conversation_nobody_writes_in_is_reconciled_once_after_creation() {
    let c = conversation();
    let (r, e) = c.handle(
        "alice",
        Command::Create {
            conversation_id: super::CID.into(),
            sandbox_id: "sb1".into(),
            title: Some("plans".into()),
            members: vec!["alice".into(), "bob".into()],
        },
        &ctx(T0),
    );
    assert_eq!(r.unwrap().status, 201);
    assert_eq!(e.alarm_at, Some(T0 + R));
    let told = run_until(&c, e.alarm_at, T0 + 10 * R);
    assert_eq!(told.len(), 1, "{told:?}");
    let (at, reconcile) = &told[0];
    assert_eq!(*at, T0 + R);
    assert_eq!(reconcile.members, ["alice", "bob", "bot:kiloclaw:sb1"]);
    assert_eq!(reconcile.title.as_deref(), Some("plans"));
    assert_eq!(reconcile.repair.as_ref().map(|r| r.joined_at.clone()), Some(vec![T0; 3]));
    assert!(c.alarm_start(T0 + 100 * R).unwrap().flush.is_none(), "once");
}
