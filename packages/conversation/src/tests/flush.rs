//! The list flush: every member's list entry is updated in batches, a failed batch is retried, and a
//! member that always fails is given up after its retries without blocking the others.

use super::*;

#[test]
fn the_list_flush_tells_every_member_in_batches_and_retries_a_failed_batch() {
    let c = conversation();
    let people: Vec<String> = (0..FLUSH_BATCH + 10).map(|i| format!("u{i:03}")).collect();
    let refs: Vec<&str> = people.iter().map(String::as_str).collect();
    create(&c, &refs);
    // Creating is not activity: nothing to flush.
    assert!(c.alarm_start(T0).unwrap().flush.is_none());
    let (_, e) = send(&c, "alice", "news", None, T0 + 1);
    // The push first (now), then the flush: 62 members (61 people + bot... + alice): two 25-member
    // steps stretch the period to 3 s.
    assert_eq!(e.alarm_at, Some(T0 + 1));
    let early = c.alarm_start(T0 + 1).unwrap();
    assert!(early.flush.is_none());
    c.push_settled(&early.pushes[0], &delivered(), T0 + 1, 7).unwrap();
    assert_eq!(c.alarm_finish(T0 + 1, None).unwrap(), Some(T0 + 1 + 3_000));
    let now = T0 + 3_001;
    let a = c.alarm_start(now).unwrap();
    let batch = a.flush.unwrap();
    assert_eq!(batch.members.len(), FLUSH_BATCH);
    assert_eq!(batch.title.as_deref(), Some("news"));
    assert_eq!(batch.last_activity_at, Some(T0 + 1));
    // Two members of the batch failed: the pass moves on all the same (the rest follows after a
    // gap); the two are tried again alone, 5 s later.
    let failed = vec![batch.members[3].clone(), batch.members[7].clone()];
    let next = c.alarm_finish(now, Some((&batch, &failed))).unwrap().unwrap();
    assert!(next > now && next <= now + 3_000, "{}", next - now);
    let rest = c.alarm_start(next).unwrap().flush.unwrap();
    assert!(!rest.retry);
    assert_eq!(rest.members.len(), people.len() + 2 - FLUSH_BATCH);
    assert!(rest.members.first() > batch.members.last());
    // The pass is done; what is left is the two retries (and the reconcile that follows the pass).
    assert_eq!(c.alarm_finish(next, Some((&rest, &[]))).unwrap(), Some(now + 5_000));
    // The reconcile due since creation (the pass does not postpone it).
    let reconcile_at = T0 + CONFIG.list_reconcile_ms;
    let retry = c.alarm_start(now + 5_000).unwrap().flush.unwrap();
    assert!(retry.retry);
    assert_eq!(retry.members, failed);
    assert_eq!(retry.title.as_deref(), Some("news"));
    // One is told now; the other fails again: alone, twice as late.
    let still = vec![failed[1].clone()];
    assert_eq!(c.alarm_finish(now + 5_000, Some((&retry, &still))).unwrap(), Some(now + 5_000 + 10_000));
    let retry = c.alarm_start(now + 15_000).unwrap().flush.unwrap();
    assert_eq!(retry.members, still);
    let after = c.alarm_finish(now + 15_000, Some((&retry, &[]))).unwrap();
    assert_eq!(after, Some(reconcile_at), "caught up: only the reconcile is left");
    assert!(c.alarm_start(now + 100_000).unwrap().flush.is_none());
}

#[test]
fn a_member_that_always_fails_is_given_up_after_its_retries_and_blocks_nobody() {
    use crate::alarm::LIST_RETRY_MAX_ATTEMPTS;
    let c = conversation();
    create(&c, &["bob", "carol"]);
    send(&c, "alice", "hi", None, T0).0.unwrap();
    let mut now = T0 + 1_000;
    let a = c.alarm_start(now).unwrap();
    for p in &a.pushes {
        c.push_settled(p, &delivered(), now, 1).unwrap();
    }
    let batch = a.flush.unwrap();
    let broken = vec!["bob".to_string()];
    let mut next = c.alarm_finish(now, Some((&batch, &broken))).unwrap();
    let (mut retries, mut reconciles) = (0, 0);
    while let Some(at) = next {
        now = at;
        let b = c.alarm_start(now).unwrap().flush.unwrap();
        if b.repair.is_some() {
            // The reconcile that follows the pass tells everyone (bob fails there too: one more attempt).
            assert_eq!(b.members.len(), 4);
            reconciles += 1;
        } else {
            assert_eq!(b.members, broken, "only the failing member is retried");
            retries += 1;
        }
        next = c.alarm_finish(now, Some((&b, &broken))).unwrap();
    }
    assert_eq!((retries + reconciles, reconciles), (LIST_RETRY_MAX_ATTEMPTS, 1));
    assert_eq!(c.store().scalar("SELECT COUNT(*) AS v FROM list_retry", &[]).unwrap(), Some(0));
    // The next activity's pass tells everyone again, bob included.
    send(&c, "carol", "again", None, now).0.unwrap();
    let a = c.alarm_start(now + 10_000).unwrap();
    assert!(a.flush.unwrap().members.contains(&"bob".to_string()));
}
