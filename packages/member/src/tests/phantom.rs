//! No phantom objects (#18): a member object asked only reads — a list, a bot's status, whether a
//! sandbox admits someone — or changes to list entries it does not have, for a member it never
//! stored anything for, answers as for an empty member and writes nothing: no tables. The first
//! command that writes makes them.

use super::*;

#[test]
fn reads_of_a_member_never_stored_write_nothing() {
    let m = Member::new(SqliteStore::new());
    let ctx = Ctx::at(T0, 1);
    let answer = |c: Command| m.handle(c, &ctx);
    let list = answer(Command::List { sandbox_id: None, limit: 50, cursor: None });
    assert_eq!(list.0.unwrap().body.unwrap(), json!({"conversations": [], "hasMore": false, "nextCursor": null}));
    let listed_in = answer(Command::List { sandbox_id: Some(SB.into()), limit: 1, cursor: None });
    assert_eq!(listed_in.0.unwrap().body.unwrap()["conversations"], json!([]));
    let status = answer(Command::GetBotStatus).0.unwrap().body.unwrap();
    assert_eq!((status["online"].clone(), status["at"].clone()), (json!(false), Value::Null));
    let open = answer(Command::SandboxAccess { sandbox_id: SB.into(), user: "alice".into(), open_unlisted: true });
    assert_eq!(open.0.unwrap().status, 204, "a sandbox never listed admits everyone in local mode");
    let closed = answer(Command::SandboxAccess { sandbox_id: SB.into(), user: "alice".into(), open_unlisted: false });
    assert_eq!(closed.0.unwrap_err().status(), 403);
    // Changes to an entry it does not have: done, nothing to change.
    for c in [
        Command::Touch {
            conversation_id: C1.into(),
            title: Some("t".into()),
            last_activity_at: Some(T0),
            repair: None,
        },
        Command::Remove { conversation_id: C1.into(), removed_by: None },
        Command::MarkRead { conversation_id: C1.into(), member_id: "alice".into(), last_read_at: T0 },
    ] {
        let what = format!("{c:?}");
        let (r, e) = answer(c);
        assert_eq!(r.unwrap().status, 204, "{what}");
        assert!(e.is_empty(), "{what}");
    }
    assert_eq!(m.store().dump(), "", "storage was created");
    assert!(!m.exists().unwrap());
    // The first write makes the tables; then it answers as usual.
    let upsert = Command::Upsert {
        conversation_id: C1.into(),
        sandbox_id: SB.into(),
        title: None,
        joined_at: T0,
        last_activity_at: None,
        added_by: None,
    };
    assert_eq!(answer(upsert).0.unwrap().status, 204);
    assert!(m.exists().unwrap());
    let list = answer(Command::List { sandbox_id: None, limit: 50, cursor: None }).0.unwrap().body.unwrap();
    assert_eq!(list["conversations"][0]["conversationId"], json!(C1));
}

/// A member stored before (another instance of the object) is found, not taken for a phantom.
#[test]
fn a_member_stored_by_an_earlier_instance_is_found() {
    let m = Member::open(SqliteStore::new()).unwrap();
    let upsert = Command::Upsert {
        conversation_id: C1.into(),
        sandbox_id: SB.into(),
        title: Some("a".into()),
        joined_at: T0,
        last_activity_at: None,
        added_by: None,
    };
    m.handle(upsert, &Ctx::at(T0, 1)).0.unwrap();
    let again = Member::new(m.store);
    let touch = Command::Touch {
        conversation_id: C1.into(),
        title: Some("b".into()),
        last_activity_at: Some(T0 + 5),
        repair: None,
    };
    assert_eq!(again.handle(touch, &Ctx::at(T0 + 5, 1)).0.unwrap().status, 204);
    let list = again.handle(Command::List { sandbox_id: None, limit: 5, cursor: None }, &Ctx::at(T0 + 6, 1)).0;
    let item = list.unwrap().body.unwrap()["conversations"][0].clone();
    assert_eq!((item["title"].clone(), item["lastActivityAt"].clone()), (json!("b"), json!(T0 + 5)));
}
