//! Bounded work per object: one message's content has a byte cap, and a resume replays at most
//! `MAX_REPLAY_BYTES` of frames (past it: `resync`).

use super::*;
use switchboard_core::limits::{MAX_CONTENT_BYTES, MAX_REPLAY_BYTES, MAX_TEXT_CHARS};

/// `blocks` text blocks of `chars` characters each (3 bytes per character).
fn big(blocks: usize, chars: usize) -> Value {
    Value::Array((0..blocks).map(|_| json!({"type": "text", "text": "€".repeat(chars)})).collect())
}

fn send_content(c: &Conversation<SqliteStore>, content: Value, now: i64) -> Result<Reply, switchboard_core::ApiError> {
    let cmd = Command::SendMessage { content, in_reply_to_message_id: None, client_id: None };
    c.handle("alice", cmd, &ctx(now)).0
}

#[test]
fn a_message_over_the_content_cap_is_refused_413_and_nothing_written() {
    let c = conversation();
    create(&c, &["bob"]);
    // 2 full blocks fit (2 × 24,000 bytes); 3 do not (72,000 > 65,536).
    assert_eq!(send_content(&c, big(2, MAX_TEXT_CHARS), T0).unwrap().status, 201);
    let before = c.store().dump();
    let e = send_content(&c, big(3, MAX_TEXT_CHARS), T0 + 1).unwrap_err();
    assert_eq!((e.status(), e.code), (413, ErrorCode::PayloadTooLarge), "{e:?}");
    assert!(e.message.starts_with("content: "), "{}", e.message);
    assert_eq!(c.store().dump(), before);
    // An edit to the same size is refused alike.
    let id = c.handle("alice", Command::ListMessages { before: None, limit: 1 }, &ctx(T0)).0.unwrap().body.unwrap()
        ["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let edit = Command::EditMessage { message_id: id, content: big(3, MAX_TEXT_CHARS), timestamp: T0 + 2 };
    assert_eq!(c.handle("alice", edit, &ctx(T0 + 2)).0.unwrap_err().status(), 413);
    assert_eq!(c.store().dump(), before);
    const { assert!(MAX_CONTENT_BYTES < 3 * 3 * MAX_TEXT_CHARS) };
}

#[test]
fn a_resume_over_the_byte_cap_resyncs_instead_of_replaying() {
    let c = conversation();
    create(&c, &["bob"]);
    // Each message's frame is a little over 48,000 bytes: the cap is crossed after ~87 of them.
    let per = 2 * 3 * MAX_TEXT_CHARS;
    let fits = MAX_REPLAY_BYTES / per - 2;
    for i in 0..fits {
        send_content(&c, big(2, MAX_TEXT_CHARS), T0 + i as i64).unwrap();
    }
    // seq 1 is the auto-title... every frame since 0 fits: a replay, then ready.
    let frames = c.accept("bob", Some(0)).unwrap();
    assert_eq!(frames.len(), fits + 2, "every event and ready");
    assert!(frames.iter().map(String::len).sum::<usize>() <= MAX_REPLAY_BYTES);
    for i in 0..4 {
        send_content(&c, big(2, MAX_TEXT_CHARS), T0 + 1000 + i).unwrap();
    }
    let frames = c.accept("bob", Some(0)).unwrap();
    assert_eq!(frames.len(), 2, "over the cap: resync, ready");
    assert_eq!(frame(&frames[0])["type"], "resync");
    // A resume of only the recent part still replays.
    let frames = c.accept("bob", Some(fits as u64)).unwrap();
    assert!(frames.len() > 2 && frame(&frames[0])["type"] == "event");
}

#[test]
fn a_page_of_messages_holds_at_most_the_byte_cap() {
    use switchboard_core::limits::MAX_PAGE_BYTES;
    let c = conversation();
    create(&c, &["bob"]);
    // ~48,000 bytes each: 100 of them are over 4 MiB.
    for i in 0..100 {
        send_content(&c, big(2, MAX_TEXT_CHARS), T0 + i).unwrap();
    }
    let list = |before: Option<String>| {
        let cmd = Command::ListMessages { before, limit: 100 };
        c.handle("bob", cmd, &ctx(T0 + 1_000)).0.unwrap().body.unwrap()
    };
    let first = list(None);
    let n = first["messages"].as_array().unwrap().len();
    assert!(n < 100 && n > 50, "{n}");
    assert_eq!(first["hasMore"], true);
    assert!(first.to_string().len() <= MAX_PAGE_BYTES + 100_000);
    // The next page carries on where it stopped: every message exactly once.
    let second = list(first["nextCursor"].as_str().map(String::from));
    let m = second["messages"].as_array().unwrap().len();
    assert_eq!(n + m, 100);
    assert_eq!(second["hasMore"], false);
}
