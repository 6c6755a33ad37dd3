//! The conversation list, tickets and bot status.

use super::*;
use switchboard_core::ErrorCode;

fn page(sim: &Sim, sandbox: Option<&str>, limit: usize, cursor: Option<&str>) -> Value {
    let cmd = Command::List { sandbox_id: sandbox.map(String::from), limit, cursor: cursor.map(String::from) };
    sim.ok(cmd).0.body.unwrap()
}

fn ids(v: &Value) -> Vec<String> {
    v["conversations"].as_array().unwrap().iter().map(|c| c["conversationId"].as_str().unwrap().to_string()).collect()
}

fn touch(sim: &Sim, conv: &str, title: Option<&str>, at: Option<i64>) -> Effects {
    sim.ok(Command::Touch {
        conversation_id: conv.into(),
        title: title.map(String::from),
        last_activity_at: at,
        repair: None,
    })
    .1
}

#[test]
fn the_list_is_ordered_by_activity_and_pages_with_a_cursor() {
    let sim = Sim::new();
    sim.join(C1, Some("one"), T0);
    sim.join(C2, None, T0 + 10);
    sim.ok(Command::Upsert {
        conversation_id: C3.into(),
        sandbox_id: "sb2".into(),
        title: None,
        joined_at: T0 + 20,
        last_activity_at: None,
        added_by: None,
    });
    assert_eq!(ids(&page(&sim, None, 10, None)), vec![C3, C2, C1]);
    // Activity moves a conversation up; older activity never moves it back.
    touch(&sim, C1, Some("one"), Some(T0 + 100));
    touch(&sim, C1, Some("one"), Some(T0 + 50));
    let all = page(&sim, None, 10, None);
    assert_eq!(ids(&all), vec![C1, C3, C2]);
    assert_eq!(all["conversations"][0]["lastActivityAt"], json!(T0 + 100));
    // Two per page: a cursor leads on to the rest, and the last page says so.
    let first = page(&sim, None, 2, None);
    assert_eq!((ids(&first), first["hasMore"].clone()), (vec![C1.to_string(), C3.to_string()], json!(true)));
    let next = page(&sim, None, 2, first["nextCursor"].as_str());
    assert_eq!(
        (ids(&next), next["hasMore"].clone(), next["nextCursor"].clone()),
        (vec![C2.into()], json!(false), Value::Null)
    );
    // One sandbox only.
    assert_eq!(ids(&page(&sim, Some(SB), 10, None)), vec![C1, C2]);
    // A cursor this service never gave out is refused.
    let (bad, _) = sim.run(Command::List { sandbox_id: None, limit: 10, cursor: Some("x".into()) });
    assert_eq!(bad.unwrap_err().code, ErrorCode::InvalidRequest);
}

#[test]
fn a_flush_never_re_adds_a_conversation_the_member_left() {
    let sim = Sim::new();
    sim.join(C1, None, T0);
    sim.ok(Command::Remove { conversation_id: C1.into(), removed_by: None });
    let e = touch(&sim, C1, Some("late"), Some(T0 + 5));
    assert!(e.is_empty());
    assert!(ids(&page(&sim, None, 10, None)).is_empty());
}

#[test]
fn the_read_position_only_moves_forward() {
    let sim = Sim::new();
    sim.join(C1, None, T0);
    let read = |at: i64| {
        sim.ok(Command::MarkRead { conversation_id: C1.into(), member_id: "alice".into(), last_read_at: at });
        page(&sim, None, 10, None)["conversations"][0]["lastReadAt"].clone()
    };
    assert_eq!(read(T0 + 10), json!(T0 + 10));
    assert_eq!(read(T0 + 5), json!(T0 + 10));
}

#[test]
fn a_ticket_is_redeemed_once_and_only_before_it_expires() {
    let mut sim = Sim::new();
    let redeem = |sim: &Sim, nonce: &str, expires: i64| {
        sim.run(Command::RedeemTicket { nonce: nonce.into(), expires_at_ms: expires }).0.map(|r| r.status)
    };
    let expires = T0 + 30_000;
    assert_eq!(redeem(&sim, "n1", expires), Ok(204));
    assert_eq!(redeem(&sim, "n1", expires).unwrap_err().status(), 401, "used");
    // 20 s later, a ticket issued with the first is still good.
    sim.now = T0 + 20_000;
    assert_eq!(redeem(&sim, "n2", expires), Ok(204));
    // At and after its expiry a ticket is refused, used or not.
    sim.now = expires;
    assert_eq!(redeem(&sim, "n3", expires).unwrap_err().status(), 401, "expired");
    // The used nonces were swept once they expired; a fresh ticket is fine.
    let kept = sim.m.store().dump();
    assert!(!kept.contains("n1") && !kept.contains("n2"), "{kept}");
    assert_eq!(redeem(&sim, "n4", expires + 30_000), Ok(204));
}

#[test]
fn a_bots_status_is_offline_until_set_and_a_change_starts_its_fan_out() {
    let sim = Sim::new();
    assert_eq!(sim.ok(Command::GetBotStatus).0.body.unwrap(), json!({"online": false, "at": null}));
    sim.join(C1, None, T0);
    let (r, e) = sim.ok(Command::SetBotStatus { online: true, at: T0 + 5 });
    assert_eq!(e.alarm_at, Some(sim.now), "the fan-out runs from the alarm, at once");
    assert_eq!(r.body.unwrap(), json!({"online": true, "at": T0 + 5}));
    assert_eq!(sim.ok(Command::GetBotStatus).0.body.unwrap(), json!({"online": true, "at": T0 + 5}));
}

#[test]
fn an_older_bot_status_report_keeps_the_stored_one() {
    let sim = Sim::new();
    sim.join(C1, None, T0);
    sim.ok(Command::SetBotStatus { online: true, at: T0 + 10 });
    // Reported late: older than what is stored, so it changes nothing and answers the stored status.
    let (r, e) = sim.ok(Command::SetBotStatus { online: false, at: T0 + 5 });
    assert!(e.is_empty());
    assert_eq!(r.body.unwrap(), json!({"online": true, "at": T0 + 10, "stale": true}));
    assert_eq!(sim.ok(Command::GetBotStatus).0.body.unwrap(), json!({"online": true, "at": T0 + 10}));
    // The same instant, or later, is recorded.
    let (r, _) = sim.ok(Command::SetBotStatus { online: false, at: T0 + 10 });
    assert_eq!(r.body.unwrap(), json!({"online": false, "at": T0 + 10}));
    assert_eq!(sim.ok(Command::GetBotStatus).0.body.unwrap(), json!({"online": false, "at": T0 + 10}));
}

#[test]
fn a_bot_status_time_out_of_range_is_refused_and_nothing_written() {
    let sim = Sim::new();
    sim.join(C1, None, T0);
    let day = 86_400_000;
    sim.ok(Command::SetBotStatus { online: true, at: T0 - day });
    sim.ok(Command::SetBotStatus { online: true, at: T0 + day });
    let before = sim.m.store().dump();
    for bad in [T0 + day + 1, T0 - day - 1, -1, 0, (1 << 53) - 1, 1 << 53, i64::MAX, i64::MIN] {
        let (r, e) = sim.run(Command::SetBotStatus { online: false, at: bad });
        let err = r.unwrap_err();
        assert_eq!(err.status(), 400, "{bad}");
        assert!(err.message.starts_with("at: "), "{}", err.message);
        assert!(e.is_empty());
    }
    assert_eq!(sim.m.store().dump(), before);
    assert_eq!(sim.ok(Command::GetBotStatus).0.body.unwrap(), json!({"online": true, "at": T0 + day}));
}

#[test]
fn instance_events_follow_list_changes() {
    let mut sim = Sim::new();
    // Logged under seq 1 with nobody subscribed yet.
    sim.join(C1, Some("one"), T0);
    let s = sim.open();
    sim.subscribe(s, &[instance()]);
    let events = |e: &Effects| -> Vec<(String, Value, u64)> {
        received(e)
            .into_iter()
            .map(|(_, f)| (f["event"].as_str().unwrap().to_string(), f["payload"].clone(), f["seq"].as_u64().unwrap()))
            .collect()
    };
    let created = events(&sim.join(C2, None, T0 + 1));
    assert_eq!(
        created,
        vec![(
            "conversation.created".into(),
            json!({"conversationId": C2, "title": null, "sandboxId": SB, "addedBy": null}),
            2
        )]
    );
    assert!(events(&sim.join(C2, None, T0 + 1)).is_empty(), "a second upsert is not news");
    assert!(events(&touch(&sim, C1, Some("one"), None)).is_empty(), "same title");
    let renamed = events(&touch(&sim, C1, Some("uno"), Some(T0 + 9)));
    assert_eq!(
        renamed,
        vec![
            ("conversation.renamed".into(), json!({"conversationId": C1, "title": "uno"}), 3),
            ("conversation.activity".into(), json!({"conversationId": C1, "lastActivityAt": T0 + 9}), 4),
        ]
    );
    assert!(events(&touch(&sim, C1, Some("uno"), Some(T0 + 9))).is_empty(), "activity only forward");
    let (_, e) =
        sim.ok(Command::MarkRead { conversation_id: C1.into(), member_id: "alice".into(), last_read_at: T0 + 20 });
    assert_eq!(
        events(&e),
        vec![(
            "conversation.read".into(),
            json!({"conversationId": C1, "memberId": "alice", "lastReadAt": T0 + 20}),
            5
        )]
    );
    let (_, e) = sim.ok(Command::Remove { conversation_id: C1.into(), removed_by: None });
    assert_eq!(events(&e), vec![("conversation.left".into(), json!({"conversationId": C1}), 6)]);
    // Events made elsewhere use the same typed shapes.
    let badge = crate::InstanceEvent::BadgeUpdated { badge_bucket: "b".into(), total: 3 };
    let (_, e) = sim.ok(badge.deliver(SB));
    assert_eq!(events(&e), vec![("badge.updated".into(), json!({"badgeBucket": "b", "total": 3}), 7)]);
}

/// The conversation's background reconcile (#18): a `Touch` with `repair` adds back an entry the
/// member lost (announced as `conversation.created`, so open apps learn of it), corrects a stale
/// one like any flush (title, activity only forward), and works on an object with no storage at all.
#[test]
fn a_reconcile_adds_a_lost_entry_back_and_corrects_a_stale_one() {
    use crate::ListRepair;
    let mut sim = Sim::new();
    sim.join(C1, Some("one"), T0);
    sim.join(C2, Some("two"), T0);
    let s = sim.open();
    sim.subscribe(s, &[instance()]);
    let repair = || Some(ListRepair { sandbox_id: SB.into(), joined_at: T0 });
    let reconcile = |sim: &Sim, conv: &str, title: &str, at: i64| {
        let cmd = Command::Touch {
            conversation_id: conv.into(),
            title: Some(title.into()),
            last_activity_at: Some(at),
            repair: repair(),
        };
        let (_, e) = sim.ok(cmd);
        received(&e).into_iter().map(|(_, f)| f["event"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    // Drift: C1's entry is gone (a lost update), C2's title is stale.
    sim.m.store().run("DELETE FROM conversations WHERE conversation_id = ?", &[C1.into()]).unwrap();
    sim.m.store().run("UPDATE conversations SET title = 'old' WHERE conversation_id = ?", &[C2.into()]).unwrap();
    // A plain flush cannot add the lost entry back.
    touch(&sim, C1, Some("one"), Some(T0 + 5));
    assert_eq!(ids(&page(&sim, None, 10, None)), vec![C2]);
    assert_eq!(reconcile(&sim, C1, "one", T0 + 5), ["conversation.created"]);
    assert_eq!(reconcile(&sim, C2, "two", T0 + 3), ["conversation.renamed", "conversation.activity"]);
    let all = page(&sim, None, 10, None);
    assert_eq!(ids(&all), vec![C1, C2]);
    let c1 = &all["conversations"][0];
    assert_eq!(
        (c1["title"].clone(), c1["lastActivityAt"].clone(), c1["joinedAt"].clone()),
        (json!("one"), json!(T0 + 5), json!(T0))
    );
    assert_eq!(all["conversations"][1]["title"], json!("two"));
    // Again: nothing is news, activity does not go back.
    assert!(reconcile(&sim, C1, "one", T0 + 1).is_empty());
    assert_eq!(page(&sim, None, 10, None)["conversations"][0]["lastActivityAt"], json!(T0 + 5));
    // A member object with no storage at all gets the entry.
    let fresh = Member::new(SqliteStore::new());
    let cmd = Command::Touch { conversation_id: C3.into(), title: None, last_activity_at: None, repair: repair() };
    assert_eq!(fresh.handle(cmd, &Ctx::at(T0, 1)).0.unwrap().status, 204);
    let list = fresh.handle(Command::List { sandbox_id: None, limit: 5, cursor: None }, &Ctx::at(T0, 1)).0.unwrap();
    assert_eq!(list.body.unwrap()["conversations"][0]["conversationId"], json!(C3));
}
