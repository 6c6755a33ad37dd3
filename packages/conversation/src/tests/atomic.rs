//! Every command kind is all or nothing: with the Nth statement failing, for every N, the command
//! answers an error (a 500 at the edge), storage is exactly as before, no effect is asked for, and
//! the next healthy command carries on from the stored state (the next event's seq).

use super::*;

fn nothing(e: &Effects) -> bool {
    e.broadcast.is_empty()
        && e.to_hubs.is_empty()
        && e.push.is_none()
        && e.close_member.is_empty()
        && e.alarm_at.is_none()
        && e.bridges_started.is_empty()
        && e.bridges_stopped.is_empty()
        && e.to_bridges.is_empty()
}

/// What the commands under test refer to.
struct Ids {
    mine: String,
    theirs: String,
    bridge: String,
}

/// alice and bob in a conversation with one message of each (bob's reacted to and read by alice),
/// hubs watching, a linked Kick room; answers the conversation and the ids.
fn busy() -> (Conversation<FailingStore>, Ids) {
    let c = Conversation::open(FailingStore::new(), CONFIG).unwrap();
    create(&c, &["bob"]);
    c.handle("alice", Command::Watch { watching: true, present: true }, &ctx(T0)).0.unwrap();
    c.handle("bob", Command::Watch { watching: true, present: false }, &ctx(T0)).0.unwrap();
    let id = |r: Result<Reply, switchboard_core::ApiError>| {
        r.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string()
    };
    let mine = id(send(&c, "alice", "mine", Some("a1"), T0 + 1).0);
    let theirs = id(send(&c, "bob", "theirs", Some("b1"), T0 + 2).0);
    let react = Command::AddReaction { message_id: theirs.clone(), emoji: "👍".into() };
    c.handle("alice", react, &ctx(T0 + 3)).0.unwrap();
    c.handle("alice", Command::MarkRead { message_id: mine.clone() }, &ctx(T0 + 4)).0.unwrap();
    let link = switchboard_bridge::link::Link::parse(&json!({"platform": "kick", "chatroomId": 42})).unwrap();
    let r = c.handle("alice", Command::LinkBridge { link }, &ctx(T0 + 5)).0.unwrap();
    let bridge = r.body.unwrap()["bridge"]["id"].as_str().unwrap().to_string();
    (c, Ids { mine, theirs, bridge })
}

/// The seq the next event gets: one past the newest logged.
fn next_seq(c: &Conversation<FailingStore>) -> i64 {
    c.store().inner.scalar("SELECT MAX(seq) AS v FROM events", &[]).unwrap().unwrap_or(0) + 1
}

/// Runs `command` (from `who`) once healthy to count its statements, then from the same starting
/// state with each statement failing in turn.
fn each_failure(who: &str, command: impl Fn(&Ids) -> Command) {
    let (c, ids) = busy();
    c.store().count.set(0);
    let (r, _) = c.handle(who, command(&ids), &ctx(T0 + 10));
    assert!(r.is_ok(), "the healthy run fails: {r:?}");
    let statements = c.store().count.get();
    assert!(statements >= 1, "{statements}");
    for n in 1..=statements {
        let (c, ids) = busy();
        let before = c.store().inner.dump();
        let seq = next_seq(&c);
        c.store().fail_in(n);
        let (r, e) = c.handle(who, command(&ids), &ctx(T0 + 10));
        let err = r.expect_err(&format!("statement {n} failed but the command succeeded"));
        assert_eq!(err.status(), 500, "statement {n}: {err:?}");
        assert!(nothing(&e), "statement {n}: {e:?}");
        assert_eq!(c.store().inner.dump(), before, "statement {n} left a trace");
        c.store().healthy();
        let (r, e) = send(&c, "alice", "after", Some("after"), T0 + 20);
        assert_eq!(r.unwrap().status, 201, "statement {n}");
        assert_eq!(types(&e), vec![("message.created".into(), Some(seq as u64))], "statement {n}");
    }
}

#[test]
fn edits_and_deletions_are_all_or_nothing() {
    each_failure("alice", |i| Command::EditMessage {
        message_id: i.mine.clone(),
        content: json!([{"type": "text", "text": "edited"}]),
        timestamp: T0 + 10,
    });
    each_failure("alice", |i| Command::DeleteMessage { message_id: i.mine.clone() });
}

#[test]
fn reactions_are_all_or_nothing() {
    each_failure("bob", |i| Command::AddReaction { message_id: i.mine.clone(), emoji: "🎉".into() });
    each_failure("alice", |i| Command::RemoveReaction { message_id: i.theirs.clone(), emoji: "👍".into() });
}

#[test]
fn mark_read_is_all_or_nothing() {
    each_failure("alice", |i| Command::MarkRead { message_id: i.theirs.clone() });
}

#[test]
fn membership_and_renames_are_all_or_nothing() {
    each_failure("alice", |_| Command::AddMember { member: "carol".into() });
    each_failure("alice", |_| Command::Rename { title: "New".into() });
    each_failure("bob", |_| Command::Leave);
    each_failure("alice", |_| Command::RemoveMember { member: "bob".into() });
}

#[test]
fn presence_and_typing_are_all_or_nothing() {
    each_failure("bob", |_| Command::Watch { watching: true, present: true });
    each_failure("alice", |_| Command::Watch { watching: false, present: false });
    each_failure("bob", |_| Command::Typing { stop: false });
}

#[test]
fn bridge_commands_are_all_or_nothing() {
    use crate::commands::{BridgeStatus, Ingest};
    let link = || switchboard_bridge::link::Link::parse(&json!({"platform": "kosmi", "room": "@lounge"})).unwrap();
    each_failure("alice", |_| Command::LinkBridge { link: link() });
    each_failure("alice", |i| Command::UnlinkBridge { bridge_id: i.bridge.clone() });
    each_failure("kick", |i| Command::BridgeIngest {
        bridge_id: i.bridge.clone(),
        item: Ingest::Message {
            idempotency_key: "kick:1".into(),
            sender_id: "kick:777".into(),
            text: "from the room".into(),
            source: json!({"platform": "kick", "room": "42", "externalId": "1"}),
            reply_to_key: None,
        },
    });
    each_failure("kick", |i| Command::BridgeStatus {
        bridge_id: i.bridge.clone(),
        status: BridgeStatus { state: "live".into(), reason: None, last_event_at: Some(T0), received: 1, relayed: 0 },
    });
}
