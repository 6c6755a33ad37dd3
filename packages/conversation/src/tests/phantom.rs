//! No phantom objects: an object asked about a conversation that was never created answers 404
//! to every command but `Create` (and refuses its sockets), and writes nothing: no tables, no
//! schema version, no alarm.

use super::*;

#[test]
fn reading_a_conversation_never_created_writes_nothing() {
    let c = Conversation::new(SqliteStore::new(), CONFIG);
    let m = "01JMESSAGE0000000000000000".to_string();
    let commands = vec![
        Command::Get,
        Command::ListMessages { before: None, limit: 50 },
        Command::Presence,
        Command::ListBridges,
        Command::MarkRead { message_id: m.clone() },
        Command::Watch { watching: true, present: true },
        Command::Typing { stop: false },
        Command::Rename { title: "x".into() },
        Command::AddMember { member: "bob".into() },
        Command::Leave,
        Command::SendMessage {
            content: json!([{"type": "text", "text": "hi"}]),
            in_reply_to_message_id: None,
            client_id: None,
        },
        Command::EditMessage { message_id: m.clone(), content: json!([]), timestamp: T0 },
        Command::DeleteMessage { message_id: m.clone() },
        Command::AddReaction { message_id: m.clone(), emoji: "👍".into() },
        Command::RemoveReaction { message_id: m, emoji: "👍".into() },
    ];
    for command in commands {
        let what = format!("{command:?}");
        let (r, e) = c.handle("alice", command, &ctx(T0));
        let err = r.expect_err(&what);
        assert_eq!(err.status(), 404, "{what}: {err:?}");
        assert!(e.broadcast.is_empty() && e.alarm_at.is_none() && e.to_hubs.is_empty(), "{what}");
    }
    assert_eq!(c.accept("alice", None, &ctx(T0)).unwrap_err().status(), 404);
    assert_eq!(c.accept("alice", Some(3), &ctx(T0)).unwrap_err().status(), 404);
    assert!(c.socket_closed("alice", T0).is_err());
    let alarm = c.alarm_start(T0).unwrap();
    assert!(alarm.flush.is_none() && alarm.effects.alarm_at.is_none());
    assert_eq!(c.alarm_finish(T0, None).ok().flatten(), None);
    assert_eq!(c.store().dump(), "", "storage was created");
    // Creating it is what makes the storage; then it answers as usual.
    create(&c, &[]);
    assert_eq!(c.handle("alice", Command::Get, &ctx(T0)).0.unwrap().status, 200);
    assert!(c.store().dump().contains("conversation: [{"));
}

#[test]
fn an_existing_database_is_found_and_brought_up_to_date() {
    let mut c = conversation();
    create(&c, &[]);
    // A database whose last migration is missing (an object created before a deploy).
    let before_last = crate::schema::MIGRATIONS.len() as i64 - 1;
    c.store().run("UPDATE schema_version SET version = ? WHERE id = 1", &[before_last.into()]).unwrap();
    c.store().run("DROP TABLE list_reconcile", &[]).unwrap();
    c.store().run("ALTER TABLE list_flush DROP COLUMN reconcile", &[]).unwrap();
    let store = std::mem::replace(&mut c.store, SqliteStore::new());
    let reopened = Conversation::new(store, CONFIG);
    assert_eq!(reopened.handle("alice", Command::Get, &ctx(T0)).0.unwrap().status, 200);
    let version = reopened.store().scalar("SELECT version AS v FROM schema_version", &[]).unwrap();
    assert_eq!(version, Some(crate::schema::MIGRATIONS.len() as i64));
    assert!(reopened.store().scalar("SELECT COUNT(*) AS v FROM list_reconcile", &[]).is_ok(), "the migration ran");
    assert!(reopened.store().scalar("SELECT COUNT(*) AS v FROM list_flush WHERE reconcile = 0", &[]).is_ok());
}
