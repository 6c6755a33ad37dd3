//! Linked rooms: ingest exactly once, states, the limit, the migration.

use super::*;
use crate::commands::{BridgeStatus, Ingest};
use switchboard_bridge::link::Link;

fn link(c: &Conversation<SqliteStore>, body: Value, now: i64) -> (Result<Reply, switchboard_core::ApiError>, Effects) {
    c.handle("alice", Command::LinkBridge { link: Link::parse(&body).unwrap() }, &ctx(now))
}

fn kick_message(id: &str, text: &str, reply_to: Option<&str>) -> Ingest {
    Ingest::Message {
        idempotency_key: format!("kick:{id}"),
        sender_id: "kick:777".into(),
        text: text.into(),
        source: json!({"platform": "kick", "room": "42", "externalId": id, "author": {"id": "777", "username": "viewer"}}),
        reply_to_key: reply_to.map(|r| format!("kick:{r}")),
    }
}

#[test]
fn a_linked_room_brings_each_message_in_exactly_once() {
    let c = conversation();
    create(&c, &["bob"]);
    let (r, e) = link(&c, json!({"platform": "kick", "chatroomId": 42}), T0);
    let r = r.unwrap();
    assert_eq!(r.status, 201);
    let bridge = r.body.unwrap()["bridge"].clone();
    let id = bridge["id"].as_str().unwrap().to_string();
    assert_eq!((bridge["state"].as_str(), bridge["room"].as_str()), (Some("connecting"), Some("42")));
    assert_eq!(e.bridges_started.len(), 1);
    assert_eq!(types(&e), vec![("bridge.state".into(), Some(1))]);
    // Linking the same room again answers the same bridge and starts it again (idempotent: the
    // way to restart one whose first start was lost).
    let (again, e) = link(&c, json!({"platform": "kick", "chatroomId": "42"}), T0 + 1);
    let again = again.unwrap();
    assert_eq!((again.status, again.body.unwrap()["bridge"]["id"].as_str()), (200, Some(id.as_str())));
    assert_eq!(e.bridges_started.len(), 1);
    assert_eq!((e.bridges_started[0].bridge_id.as_str(), e.bridges_started[0].link.room.as_str()), (id.as_str(), "42"));
    assert!(e.broadcast.is_empty(), "nothing changed, nothing logged");
    // A member's own clientId that looks like a key of the room is not taken for one.
    let (mine, _) = send(&c, "bob", "mine", Some("kick:m1"), T0 + 5);
    let mine = mine.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();

    let ingest =
        |item: Ingest, now: i64| c.handle("kick", Command::BridgeIngest { bridge_id: id.clone(), item }, &ctx(now));
    let (r, e) = ingest(kick_message("m1", "hi [emote:1:wave]", None), T0 + 10);
    assert_eq!(r.unwrap().status, 201);
    let created = frame(&e.broadcast[0]);
    assert_eq!(created["payload"]["message"]["source"]["platform"], "kick");
    assert_eq!(created["payload"]["senderId"], "kick:777");
    assert!(e.push.is_some(), "members who are not looking are told");
    // A replay of the same frame (reconnect) makes no second copy and no event.
    let (r, e) = ingest(kick_message("m1", "hi [emote:1:wave]", None), T0 + 20);
    assert_eq!(r.unwrap().status, 200);
    assert!(e.broadcast.is_empty() && e.push.is_none());
    // A reply points at our copy of the original.
    let (_, e) = ingest(kick_message("m2", "yes", Some("m1")), T0 + 30);
    let reply = frame(&e.broadcast[0]);
    assert_eq!(reply["payload"]["inReplyToMessageId"], created["payload"]["messageId"]);
    // A deletion soft-deletes our copy (and not the member's message keyed alike).
    let (_, e) = ingest(Ingest::Delete { idempotency_key: "kick:m1".into() }, T0 + 40);
    assert_eq!(types(&e)[0].0, "message.deleted");
    assert_eq!(frame(&e.broadcast[0])["payload"]["messageId"], created["payload"]["messageId"]);
    assert_ne!(created["payload"]["messageId"], json!(mine));
    // Notices are logged events carrying the bridge.
    let (_, e) = ingest(
        Ingest::Notice { name: "bridge.user_banned".into(), payload: json!({"user": {"username": "troll"}}) },
        T0 + 50,
    );
    let notice = frame(&e.broadcast[0]);
    assert_eq!(
        (notice["event"].as_str(), notice["payload"]["bridgeId"].as_str()),
        (Some("bridge.user_banned"), Some(id.as_str()))
    );
    let (bad, _) = ingest(Ingest::Notice { name: "bridge.anything".into(), payload: json!({}) }, T0 + 51);
    assert_eq!(bad.unwrap_err().status(), 400);
    // The message list shows the source; counters went up.
    let (list, _) = c.handle("bob", Command::ListMessages { before: None, limit: 10 }, &ctx(T0 + 60));
    let list = list.unwrap().body.unwrap();
    assert_eq!(list["messages"][0]["source"]["externalId"], "m2");
    let (bridges, _) = c.handle("bob", Command::ListBridges, &ctx(T0 + 60));
    let b = bridges.unwrap().body.unwrap()["bridges"][0].clone();
    // The refused notice counted nothing: its command rolled back whole.
    assert_eq!((b["received"].as_i64(), b["lastEventAt"].as_i64()), (Some(5), Some(T0 + 50)));
}

#[test]
fn state_changes_are_events_and_unlinking_stops_everything() {
    let c = conversation();
    create(&c, &["bob"]);
    let (r, _) = link(&c, json!({"platform": "kosmi", "room": "@lounge"}), T0);
    let id = r.unwrap().body.unwrap()["bridge"]["id"].as_str().unwrap().to_string();
    let status = |state: &str, reason: Option<&str>, received: i64| {
        c.handle(
            "kosmi",
            Command::BridgeStatus {
                bridge_id: id.clone(),
                status: BridgeStatus {
                    state: state.into(),
                    reason: reason.map(str::to_string),
                    last_event_at: None,
                    received,
                    relayed: 0,
                },
            },
            &ctx(T0 + 5),
        )
    };
    let (_, e) = status("live", None, 0);
    assert_eq!(frame(&e.broadcast[0])["payload"]["state"], "live");
    let (_, e) = status("live", None, 3);
    assert!(e.broadcast.is_empty(), "counters alone are not an event");
    let (_, e) = status("failed", Some("4001 app unknown"), 3);
    assert_eq!(frame(&e.broadcast[0])["payload"]["reason"], "4001 app unknown");
    assert_eq!(status("sleeping", None, 3).0.unwrap_err().status(), 400);
    // Members' messages go out to a Kosmi bridge; bridged ones never do.
    let (_, e) = send(&c, "bob", "hello kosmi", None, T0 + 10);
    assert_eq!(e.to_bridges.len(), 1);
    assert_eq!((e.to_bridges[0].sender_id.as_str(), e.to_bridges[0].text.as_str()), ("bob", "hello kosmi"));
    let (_, e) = c.handle(
        "kosmi",
        Command::BridgeIngest {
            bridge_id: id.clone(),
            item: Ingest::Message {
                idempotency_key: "kosmi:k1".into(),
                sender_id: "kosmi:u1".into(),
                text: "from kosmi".into(),
                source: json!({"platform": "kosmi"}),
                reply_to_key: None,
            },
        },
        &ctx(T0 + 11),
    );
    assert!(e.to_bridges.is_empty());
    // Unlink: the object is stopped, later ingests are refused, nothing goes out.
    let (r, e) = c.handle("bob", Command::UnlinkBridge { bridge_id: id.clone() }, &ctx(T0 + 20));
    assert_eq!(r.unwrap().status, 204);
    assert_eq!(e.bridges_stopped, vec![id.clone()]);
    assert_eq!(frame(&e.broadcast[0])["payload"]["state"], "unlinked");
    let (r, _) = c.handle(
        "kosmi",
        Command::BridgeIngest { bridge_id: id, item: kick_message("x", "late", None) },
        &ctx(T0 + 21),
    );
    assert_eq!(r.unwrap_err().status(), 404);
    let (_, e) = send(&c, "bob", "after", None, T0 + 22);
    assert!(e.to_bridges.is_empty());
}

#[test]
fn at_most_ten_bridges_and_only_members_link() {
    let c = conversation();
    create(&c, &[]);
    for i in 1..=10 {
        assert_eq!(link(&c, json!({"platform": "kick", "chatroomId": i}), T0 + i).0.unwrap().status, 201);
    }
    assert_eq!(link(&c, json!({"platform": "kick", "chatroomId": 11}), T0 + 11).0.unwrap_err().status(), 400);
    let (r, _) = c.handle(
        "mallory",
        Command::LinkBridge { link: Link::parse(&json!({"platform": "kick", "chatroomId": 12})).unwrap() },
        &ctx(T0),
    );
    assert_eq!(r.unwrap_err().status(), 403);
}

#[test]
fn an_object_from_before_the_bridges_is_migrated_on_start() {
    let store = SqliteStore::new();
    // The first schema without the migration table's rows, and a message in it.
    store.run(crate::schema::SCHEMA, &[]).unwrap();
    store
        .run("INSERT INTO conversation (id, sandbox_id, created_by, created_at) VALUES ('c', 'sb1', 'alice', 1)", &[])
        .unwrap();
    store.run("INSERT INTO members (member_id, kind, joined_at) VALUES ('alice', 'user', 1)", &[]).unwrap();
    store.run("INSERT INTO messages (id, sender_id, content, created_at) VALUES ('01JAAAAAAAAAAAAAAAAAAAAAAA', 'alice', '[]', 1)", &[]).unwrap();
    let c = Conversation::open(store, CONFIG).unwrap();
    let (list, _) = c.handle("alice", Command::ListMessages { before: None, limit: 5 }, &ctx(T0));
    assert_eq!(list.unwrap().body.unwrap()["messages"].as_array().unwrap().len(), 1);
    // Opening again applies nothing twice.
    let c = Conversation::open(c.store, CONFIG).unwrap();
    assert_eq!(
        c.store().scalar("SELECT version AS v FROM schema_version", &[]).unwrap(),
        Some(crate::schema::MIGRATIONS.len() as i64)
    );
}

/// Bridged messages never title a conversation: not at first, nor when the title is taken again
/// after its message is edited to no text or deleted. An edit with text titles from that text.
#[test]
fn bridged_messages_never_title_the_conversation() {
    let c = conversation();
    create(&c, &["bob"]);
    let (r, _) = link(&c, json!({"platform": "kick", "chatroomId": 42}), T0);
    let id = r.unwrap().body.unwrap()["bridge"]["id"].as_str().unwrap().to_string();
    let (r, _) =
        c.handle("kick", Command::BridgeIngest { bridge_id: id, item: kick_message("m1", "gg", None) }, &ctx(T0 + 1));
    assert_eq!(r.unwrap().status, 201);
    let title_of = |c: &Conversation<SqliteStore>| c.meta().unwrap().unwrap().title;
    assert_eq!(title_of(&c), None);
    let (m, _) = send(&c, "alice", "plan for friday", None, T0 + 2);
    let mid = m.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();
    assert_eq!(title_of(&c).as_deref(), Some("plan for friday"));
    let edit = |content: Value, at: i64| {
        let cmd = Command::EditMessage { message_id: mid.clone(), content, timestamp: at };
        c.handle("alice", cmd, &ctx(at))
    };
    let (r, e) = edit(json!([{"type": "text", "text": "plan for saturday"}]), T0 + 3);
    r.unwrap();
    assert_eq!(title_of(&c).as_deref(), Some("plan for saturday"));
    assert_eq!(types(&e).last().map(|t| t.0.as_str()), Some("conversation.renamed"));
    // The same text again: no rename.
    let (_, e) = edit(json!([{"type": "text", "text": "plan for saturday"}]), T0 + 4);
    assert_eq!(types(&e).iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), vec!["message.updated"]);
    // Edited to no text: taken again, and only the bridged message has text: no title.
    let actions = json!([{"type": "actions", "groupId": "g", "actions": [{"label": "Allow", "style": "primary", "value": "allow-once"}]}]);
    edit(actions, T0 + 5).0.unwrap();
    assert_eq!(title_of(&c), None);
}
