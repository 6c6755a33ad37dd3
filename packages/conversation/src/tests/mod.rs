//! The conversation's rules, natively, with virtual time: each test drives a [`Conversation`] over
//! an in-memory SQLite and checks its answers, the frames it asks to broadcast, the pushes, the
//! alarm times and what storage holds.
//!
//! `bridges`: linked rooms; `atomic`: every command kind all or nothing; `bounded`: content and replay caps; `phantom`: no storage for
//! a conversation never created; `push`: the push outbox; `flush`: the members' list updates; `idempotency`: repeated `clientId`s; `limits`: rate limits and caps.

use crate::alarm::FLUSH_BATCH;
use crate::{Command, Config, Conversation, Ctx, Effects, Reply, Store, StoreExt};
use serde_json::{json, Value};
use switchboard_core::limits::{close, Limits};
use switchboard_core::ErrorCode;
use switchboard_sqlite_store::{FailingStore, SqliteStore};

mod activity;
mod atomic;
mod bounded;
mod bridges;
mod commands;
mod flush;
mod idempotency;
mod limits;
mod phantom;
mod push;
mod reconcile;
mod rights;

const CID: &str = "01JCONVERSATION00000000000";
const T0: i64 = 1_700_000_000_000;
const CONFIG: Config =
    Config { idem_ttl_ms: 60_000, activity_flush_ms: 1_000, list_reconcile_ms: 600_000, limits: Limits::DEFAULT };

/// The notifications worker's answer when every recipient's push is done.
fn delivered() -> Result<switchboard_notify_contract::SendPushResult, String> {
    Ok(switchboard_notify_contract::SendPushResult { version: 1, skipped: None, outcomes: vec![] })
}

fn conversation() -> Conversation<SqliteStore> {
    Conversation::open(SqliteStore::new(), CONFIG).unwrap()
}

fn ctx(now: i64) -> Ctx<'static> {
    Ctx::at(now, 0x1234_5678_9abc_def0_1234_5678_9abc_def0)
}

fn create<S: crate::Store>(c: &Conversation<S>, members: &[&str]) {
    let (r, _) = c.handle(
        "alice",
        Command::Create {
            conversation_id: CID.into(),
            sandbox_id: "sb1".into(),
            title: None,
            members: std::iter::once("alice").chain(members.iter().copied()).map(str::to_string).collect(),
        },
        &ctx(T0),
    );
    assert_eq!(r.unwrap().status, 201);
}

fn send<S: crate::Store>(
    c: &Conversation<S>,
    who: &str,
    text: &str,
    client_id: Option<&str>,
    now: i64,
) -> (Result<Reply, switchboard_core::ApiError>, Effects) {
    c.handle(
        who,
        Command::SendMessage {
            content: json!([{"type": "text", "text": text}]),
            in_reply_to_message_id: None,
            client_id: client_id.map(str::to_string),
        },
        &ctx(now),
    )
}

fn frame(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn types(e: &Effects) -> Vec<(String, Option<u64>)> {
    e.broadcast
        .iter()
        .map(|f| {
            let v = frame(f);
            let name = if v["type"] == "event" { &v["event"] } else { &v["type"] };
            (name.as_str().unwrap_or_default().to_string(), v["seq"].as_u64())
        })
        .collect()
}

#[test]
fn a_first_message_is_logged_broadcast_and_names_the_conversation() {
    let c = conversation();
    create(&c, &["alice", "bob"]);
    let (r, e) = send(&c, "alice", "hello there", Some("c1"), T0 + 10);
    let r = r.unwrap();
    assert_eq!(r.status, 201);
    let body = r.body.unwrap();
    assert_eq!(body["clientId"], "c1");
    assert_eq!(body["message"]["senderId"], "alice");
    assert_eq!(types(&e), vec![("message.created".into(), Some(1)), ("conversation.renamed".into(), Some(2))]);
    assert_eq!(frame(&e.broadcast[1])["payload"]["title"], json!("hello there"));
    // The push is recorded with the message: the alarm is asked for now, to deliver it.
    assert_eq!(e.alarm_at, Some(T0 + 10));
    let a = c.alarm_start(T0 + 10).unwrap();
    assert!(a.flush.is_none(), "the list flush is not due before its period");
    assert_eq!(a.pushes.len(), 1);
    assert_eq!(c.push_settled(&a.pushes[0], &delivered(), T0 + 11, 7).unwrap(), crate::push::PushSettled::Delivered);
    // Two people and a bot: one flush period of 1 s.
    assert_eq!(c.alarm_finish(T0 + 11, None).unwrap(), Some(T0 + 10 + 1_000));
    // Bob has no socket and no hub: he gets a push; the sender never does.
    let push = e.push.unwrap();
    assert_eq!(push.recipients.iter().map(|r| r.user_id.as_str()).collect::<Vec<_>>(), vec!["bob"]);
    assert_eq!(push.sender_user_id.as_deref(), Some("alice"));
    // The log holds exactly the frames that were broadcast.
    let frames = c.accept("bob", Some(0), &ctx(T0)).unwrap();
    assert_eq!(&frames[..2], &e.broadcast[..]);
    assert_eq!(frame(&frames[2])["type"], "ready");
}

#[test]
fn ids_increase_even_when_the_clock_goes_back() {
    let c = conversation();
    create(&c, &[]);
    let (a, _) = send(&c, "alice", "a", None, T0 + 5_000);
    let (b, _) = send(&c, "alice", "b", None, T0 + 1_000);
    let a = a.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();
    let b = b.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();
    assert!(b > a, "{b} after {a}");
}

#[test]
fn edits_follow_the_rules() {
    let c = conversation();
    create(&c, &["bob"]);
    // The first message names the conversation (seq 1, 2); the draft is another message.
    send(&c, "alice", "first", None, T0).0.unwrap();
    let (m, _) = send(&c, "alice", "draft", None, T0 + 1);
    let id = m.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();
    let edit = |who: &str, ts: i64| {
        c.handle(
            who,
            Command::EditMessage {
                message_id: id.clone(),
                content: json!([{"type":"text","text":"v"}]),
                timestamp: ts,
            },
            &ctx(T0 + 100),
        )
    };
    assert_eq!(edit("bob", T0 + 10).0.unwrap_err().status(), 403);
    let (ok, e) = edit("alice", T0 + 10);
    assert_eq!(ok.unwrap().status, 200);
    assert_eq!(types(&e), vec![("message.updated".into(), Some(4))]);
    let conflict = edit("alice", T0 + 9).0.unwrap_err();
    assert_eq!(conflict.code, ErrorCode::EditConflict);
    // A timestamp more than a day from the clock, negative or past 2^53 - 1 is refused, nothing written.
    let before = c.store().dump();
    for bad in [T0 + 100 + 86_400_001, T0 + 100 - 86_400_001, -1, (1 << 53) - 1, 1 << 53, i64::MAX, i64::MIN] {
        let (r, e) = edit("alice", bad);
        let err = r.unwrap_err();
        assert_eq!((err.status(), err.code), (400, ErrorCode::InvalidRequest), "{bad}");
        assert!(err.message.starts_with("timestamp: "), "{}", err.message);
        assert!(e.broadcast.is_empty());
    }
    assert_eq!(c.store().dump(), before);
    let (del, e) = c.handle("alice", Command::DeleteMessage { message_id: id.clone() }, &ctx(T0 + 200));
    assert_eq!(del.unwrap().status, 204);
    assert_eq!(types(&e), vec![("message.deleted".into(), Some(5))]);
    assert_eq!(edit("alice", T0 + 11).0.unwrap_err().code, ErrorCode::MessageDeleted);
    // Deleting again is quiet.
    let (_, e) = c.handle("alice", Command::DeleteMessage { message_id: id }, &ctx(T0 + 300));
    assert!(e.broadcast.is_empty());
}

#[test]
fn an_auto_title_follows_its_message_and_never_outlives_it() {
    let c = conversation();
    create(&c, &["bob"]);
    let title_of = |c: &Conversation<SqliteStore>| c.meta().unwrap().unwrap().title;
    let (m, e) = send(&c, "alice", "secret plans", None, T0);
    let first = m.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();
    let push = e.push.unwrap();
    assert_eq!(push.conversation_title.as_deref(), Some("secret plans"));
    assert!(push.conversation_title_auto, "an auto-title is marked, so generic previews hide it");
    let (m, _) = send(&c, "bob", "second thoughts", None, T0 + 1);
    let second = m.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();
    // Editing the naming message renames with its new text.
    let (_, e) = c.handle(
        "alice",
        Command::EditMessage {
            message_id: first.clone(),
            content: json!([{"type":"text","text":"lunch"}]),
            timestamp: T0 + 1,
        },
        &ctx(T0 + 2),
    );
    assert_eq!(
        types(&e).iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
        vec!["message.updated", "conversation.renamed"]
    );
    assert_eq!(title_of(&c).as_deref(), Some("lunch"));
    // Deleting it takes the title from the oldest message left...
    let (_, e) = c.handle("alice", Command::DeleteMessage { message_id: first }, &ctx(T0 + 3));
    assert_eq!(frame(&e.broadcast[1])["payload"]["title"], "second thoughts");
    assert_eq!(title_of(&c).as_deref(), Some("second thoughts"));
    // ...and with no message left, the conversation has no title (and the event says so).
    let (_, e) = c.handle("bob", Command::DeleteMessage { message_id: second }, &ctx(T0 + 4));
    assert_eq!(frame(&e.broadcast[1])["payload"]["title"], Value::Null);
    assert_eq!(title_of(&c), None);
    // A title people set is theirs: not marked auto, and no deletion touches it.
    c.handle("bob", Command::Rename { title: "Ours".into() }, &ctx(T0 + 5)).0.unwrap();
    let (m, e) = send(&c, "alice", "anything", None, T0 + 6);
    assert!(!e.push.unwrap().conversation_title_auto);
    let id = m.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();
    let (_, e) = c.handle("alice", Command::DeleteMessage { message_id: id }, &ctx(T0 + 7));
    assert_eq!(types(&e).len(), 1);
    assert_eq!(title_of(&c).as_deref(), Some("Ours"));
}

#[test]
fn a_read_position_never_moves_back_and_tells_whether_caught_up() {
    let c = conversation();
    create(&c, &["bob"]);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            send(&c, "alice", "m", None, T0 + i).0.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string()
        })
        .collect();
    let read = |id: &str, now: i64| c.handle("bob", Command::MarkRead { message_id: id.into() }, &ctx(now));
    let (r, e) = read(&ids[1], T0 + 10);
    let r = r.unwrap().body.unwrap();
    assert_eq!(r["caughtUp"], false);
    assert_eq!(types(&e)[0].0, "conversation.read");
    let (r, e) = read(&ids[0], T0 + 20);
    let r = r.unwrap().body.unwrap();
    assert_eq!(r["lastReadMessageId"], ids[1].as_str());
    assert_eq!(r["lastReadAt"], T0 + 10);
    assert!(e.broadcast.is_empty(), "an older position is not an event");
    let (r, _) = read(&ids[2], T0 + 30);
    assert_eq!(r.unwrap().body.unwrap()["caughtUp"], true);
}

#[test]
fn typing_is_throttled_and_ended_by_the_alarm() {
    let c = conversation();
    create(&c, &["bob"]);
    let typing = |now: i64, stop: bool| c.handle("bob", Command::Typing { stop }, &ctx(now));
    let (_, e) = typing(T0, false);
    assert_eq!(frame(&e.broadcast[0])["event"], "typing");
    assert!(frame(&e.broadcast[0]).get("seq").is_none(), "typing is ephemeral");
    let expires = e.alarm_at.unwrap();
    let (_, e) = typing(T0 + 500, false);
    assert!(e.broadcast.is_empty(), "throttled");
    assert!(e.alarm_at.unwrap() >= expires);
    // Nothing ends before the timeout.
    let a = c.alarm_start(expires - 1 + 500).unwrap();
    assert!(a.effects.broadcast.is_empty());
    let a = c.alarm_start(expires + 500).unwrap();
    assert_eq!(types(&a.effects), vec![("typing.stop".into(), None)]);
    // A stop after it ended says nothing.
    let (_, e) = typing(expires + 600, true);
    assert!(e.broadcast.is_empty());
}

#[test]
fn the_push_leaves_out_whoever_is_looking() {
    let c = conversation();
    create(&c, &["bob", "carol", "dave"]);
    // Bob has a socket here; Carol is present through her hub; Dave looked 5 s ago.
    let _ = c.accept("bob", None, &ctx(T0)).unwrap();
    let (w, _) = c.handle("carol", Command::Watch { watching: true, present: true }, &ctx(T0));
    w.unwrap();
    c.socket_closed("dave", T0 - 5_000).unwrap();
    let sockets = || vec!["bob".to_string()];
    let (r, e) = c.handle(
        "alice",
        Command::SendMessage {
            content: json!([{"type":"text","text":"hi"}]),
            in_reply_to_message_id: None,
            client_id: None,
        },
        &Ctx { now_ms: T0 + 1, random: 7, socket_members: &sockets },
    );
    r.unwrap();
    let push = e.push.unwrap();
    let who: Vec<(&str, Option<i64>)> =
        push.recipients.iter().map(|r| (r.user_id.as_str(), r.last_viewed_at)).collect();
    assert_eq!(who, vec![("dave", Some(T0 - 5_000))]);
    // Carol's hub watched when the message committed: it gets the event.
    let to_carol: Vec<&str> = e.to_hubs.iter().map(|d| d.event).collect();
    assert_eq!(to_carol, vec!["message.created", "conversation.renamed"]);
    assert_eq!(e.to_hubs[0].watchers.as_slice(), &["carol".to_string()]);
    // A bot's message names no sender.
    let (_, e) = send(&c, "bot:kiloclaw:sb1", "beep", None, T0 + 2);
    assert_eq!(e.push.unwrap().sender_user_id, None);
}

#[test]
fn everyone_looking_means_no_push_and_no_read() {
    let c = conversation();
    create(&c, &["bob"]);
    let sockets = || vec!["alice".to_string(), "bob".to_string()];
    let (_, e) = c.handle(
        "alice",
        Command::SendMessage {
            content: json!([{"type":"text","text":"hi"}]),
            in_reply_to_message_id: None,
            client_id: None,
        },
        &Ctx { now_ms: T0 + 1, random: 7, socket_members: &sockets },
    );
    assert!(e.push.is_none());
}

#[test]
fn resume_replays_what_was_missed_or_asks_for_a_resync() {
    let c = conversation();
    create(&c, &["bob"]);
    for i in 0..5 {
        send(&c, "alice", "m", None, T0 + i).0.unwrap();
    }
    // 5 messages + the auto-title: seq 6.
    let frames = c.accept("bob", Some(4), &ctx(T0)).unwrap();
    let seqs: Vec<Option<u64>> = frames.iter().map(|f| frame(f)["seq"].as_u64()).collect();
    assert_eq!(seqs, vec![Some(5), Some(6), Some(6)]);
    assert_eq!(frame(&frames[2])["type"], "ready");
    let frames = c.accept("bob", Some(99), &ctx(T0)).unwrap();
    assert_eq!(frame(&frames[0])["type"], "resync");
    let frames = c.accept("bob", None, &ctx(T0)).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(c.accept("mallory", None, &ctx(T0)).unwrap_err().status(), 403);
}

#[test]
fn leaving_closes_the_members_sockets_and_ends_their_rights() {
    let c = conversation();
    create(&c, &["bob"]);
    let (r, e) = c.handle("bob", Command::Leave, &ctx(T0 + 1));
    assert_eq!(r.unwrap().status, 204);
    assert_eq!(e.close_member, vec![("bob".to_string(), close::MEMBERSHIP_ENDED, "left the conversation")]);
    assert_eq!(types(&e), vec![("member.left".into(), Some(1))]);
    assert_eq!(send(&c, "bob", "x", None, T0 + 2).0.unwrap_err().status(), 403);
    let (r, _) = c.handle("bot:kiloclaw:sb1", Command::Leave, &ctx(T0 + 3));
    assert_eq!(r.unwrap_err().status(), 403);
}

#[test]
fn socket_frames_take_the_same_send_path() {
    let c = conversation();
    create(&c, &["bob"]);
    let text = r#"{"type":"message.create","requestId":"r1","clientId":"k","content":[{"type":"text","text":"yo"}]}"#;
    let (reply, e) = c.socket_text(Some(("bob", T0)), text, &ctx(T0 + 1));
    let ack = frame(reply.sent().unwrap());
    assert_eq!(ack["type"], "message.ack");
    assert_eq!(ack["requestId"], "r1");
    assert_eq!(types(&e)[0].0, "message.created");
    // The same clientId over HTTP is the same message.
    let (r, _) = send(&c, "bob", "yo", Some("k"), T0 + 2);
    let r = r.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.unwrap()["messageId"], ack["messageId"]);
    let (reply, e) = c.socket_text(Some(("bob", T0)), "{nope", &ctx(T0 + 3));
    assert_eq!(frame(reply.sent().unwrap())["type"], "error");
    assert!(e.broadcast.is_empty());
    let (reply, _) = c.socket_text(None, text, &ctx(T0 + 4));
    assert_eq!(reply, crate::sockets::SocketReply::Close(close::INTERNAL, "socket state lost"));
}

/// All or nothing: whichever statement of a command fails, storage is as before, nothing is
/// broadcast, and the next command sees consistent state (seq, ids, caches).
#[test]
fn a_failure_at_any_statement_leaves_nothing_behind() {
    let store = FailingStore::new();
    let c = Conversation::open(store, CONFIG).unwrap();
    create(&c, &["bob"]);
    let (first, _) = send(&c, "alice", "first", Some("k0"), T0 + 1);
    first.unwrap();
    // How many statements a send with a title already set takes, measured on a healthy run.
    c.store().count.set(0);
    let (ok, _) = send(&c, "alice", "counting", Some("k1"), T0 + 2);
    ok.unwrap();
    let statements = c.store().count.get();
    assert!(statements >= 4, "{statements}");
    for n in 1..=statements {
        let before = c.store().inner.dump();
        c.store().fail_in(n);
        let (r, e) = send(&c, "alice", "doomed", Some(&format!("f{n}")), T0 + 10 + n as i64);
        assert!(r.is_err(), "statement {n} failed but the send succeeded");
        assert!(e.broadcast.is_empty() && e.push.is_none() && e.alarm_at.is_none());
        assert_eq!(c.store().inner.dump(), before, "statement {n} left a trace");
        c.store().healthy();
    }
    // After all that, the next send is seq 4 (two messages and one title before it).
    let (r, e) = send(&c, "alice", "alive", Some("f1"), T0 + 100);
    assert_eq!(r.unwrap().status, 201, "the failed clientId left no record");
    assert_eq!(types(&e), vec![("message.created".into(), Some(4))]);
}

#[test]
fn a_failed_create_or_leave_leaves_nothing_either() {
    let c = Conversation::open(FailingStore::new(), CONFIG).unwrap();
    for n in 1..=4 {
        let before = c.store().inner.dump();
        c.store().fail_in(n);
        let (r, _) = c.handle(
            "alice",
            Command::Create {
                conversation_id: CID.into(),
                sandbox_id: "sb1".into(),
                title: None,
                members: vec!["bob".into(), "carol".into()],
            },
            &ctx(T0),
        );
        assert!(r.is_err());
        assert_eq!(c.store().inner.dump(), before);
    }
    c.store().healthy();
    create(&c, &["bob"]);
    for n in 1..=6 {
        let before = c.store().inner.dump();
        c.store().fail_in(n);
        let (r, e) = c.handle("bob", Command::Leave, &ctx(T0 + 5));
        if r.is_ok() {
            break;
        }
        assert!(e.close_member.is_empty());
        assert_eq!(c.store().inner.dump(), before);
    }
}
