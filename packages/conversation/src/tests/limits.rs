//! Rate limits and caps, in virtual time: sends (HTTP, bot and socket share one bucket), edits,
//! reactions, member additions, the typing throttle that survives stops, the connection's frame
//! rate and flood close, the socket cap, the reaction caps.

use super::*;
use crate::sockets::SocketReply;
use switchboard_core::rate::Rate;

fn with(limits: Limits) -> Conversation<SqliteStore> {
    Conversation::open(SqliteStore::new(), Config { limits, ..CONFIG }).unwrap()
}

fn status(r: &Result<Reply, switchboard_core::ApiError>) -> u16 {
    match r {
        Ok(r) => r.status,
        Err(e) => e.status(),
    }
}

fn retry_ms(r: &Result<Reply, switchboard_core::ApiError>) -> Option<u64> {
    r.as_ref().err().filter(|e| e.code == ErrorCode::RateLimited).and_then(|e| e.retry_after_ms)
}

#[test]
fn sends_burst_then_refill_and_every_path_shares_the_bucket() {
    let c = conversation();
    create(&c, &["bob"]);
    // The default: 10 per second, bursts of 30.
    for i in 0..29 {
        let (r, _) = send(&c, "bob", &format!("m{i}"), None, T0);
        assert_eq!(status(&r), 201, "send {i}");
    }
    // The 30th goes over the socket: the same bucket.
    let text = r#"{"type":"message.create","requestId":"r","content":[{"type":"text","text":"s"}]}"#;
    let (reply, e) = c.socket_text(Some(("bob", T0)), text, &ctx(T0));
    assert_eq!(frame(reply.sent().unwrap())["type"], "message.ack");
    assert_eq!(e.broadcast.len(), 1);
    // The 31st is refused, over HTTP and over the socket, and nothing is written or broadcast.
    let (r, e) = send(&c, "bob", "over", None, T0);
    assert_eq!(status(&r), 429);
    assert_eq!(retry_ms(&r), Some(100));
    assert!(e.broadcast.is_empty());
    let (reply, e) = c.socket_text(Some(("bob", T0)), text, &ctx(T0 + 1));
    let f = frame(reply.sent().unwrap());
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str(), f["requestId"].as_str()),
        (Some("error"), Some("rate_limited"), Some("r"))
    );
    assert_eq!(f["retryAfterMs"], 99);
    assert!(e.broadcast.is_empty());
    // Alice has her own bucket.
    assert_eq!(status(&send(&c, "alice", "mine", None, T0).0), 201);
    // 100 ms later one more.
    assert_eq!(status(&send(&c, "bob", "again", None, T0 + 100).0), 201);
    assert_eq!(status(&send(&c, "bob", "again2", None, T0 + 100).0), 429);
    // The bot's sends are counted too.
    let bot = "bot:kiloclaw:sb1";
    let c = with(Limits { sends: Rate::per_sec(1, 1), ..Limits::DEFAULT });
    create(&c, &[]);
    assert_eq!(status(&send(&c, bot, "hi", None, T0).0), 201);
    assert_eq!(status(&send(&c, bot, "hi again", None, T0).0), 429);
}

#[test]
fn edits_reactions_and_member_additions_have_their_own_buckets() {
    let tight = Rate::per_sec(1, 2);
    let c = with(Limits { edits: tight, reactions: tight, member_adds: tight, ..Limits::DEFAULT });
    create(&c, &["bob"]);
    let (r, _) = send(&c, "bob", "x", None, T0);
    let mid = r.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();
    let edit = |now: i64| {
        c.handle(
            "bob",
            Command::EditMessage {
                message_id: mid.clone(),
                content: json!([{"type":"text","text":"y"}]),
                timestamp: now,
            },
            &ctx(now),
        )
        .0
    };
    assert_eq!(status(&edit(T0 + 1)), 200);
    assert_eq!(status(&edit(T0 + 2)), 200);
    assert_eq!(status(&edit(T0 + 3)), 429);
    // Deletes share the edits' bucket.
    let del = c.handle("bob", Command::DeleteMessage { message_id: mid.clone() }, &ctx(T0 + 4)).0;
    assert_eq!(status(&del), 429);
    assert_eq!(status(&edit(T0 + 1_003)), 200, "a second later one more");

    let (r, _) = send(&c, "bob", "z", None, T0 + 5);
    let mid = r.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();
    let react = |emoji: &str, remove: bool, now: i64| {
        let cmd = if remove {
            Command::RemoveReaction { message_id: mid.clone(), emoji: emoji.into() }
        } else {
            Command::AddReaction { message_id: mid.clone(), emoji: emoji.into() }
        };
        c.handle("alice", cmd, &ctx(now)).0
    };
    assert_eq!(status(&react("👍", false, T0 + 10)), 201);
    assert_eq!(status(&react("👍", true, T0 + 10)), 200);
    assert_eq!(status(&react("🎉", false, T0 + 10)), 429, "adds and removes share a bucket");

    let add = |who: &str, now: i64| c.handle("alice", Command::AddMember { member: who.into() }, &ctx(now)).0;
    assert_eq!(status(&add("carol", T0)), 201);
    assert_eq!(status(&add("dave", T0)), 201);
    let r = add("erin", T0);
    assert_eq!(status(&r), 429);
    assert_eq!(retry_ms(&r), Some(1_000));
    assert_eq!(status(&add("erin", T0 + 1_000)), 201);
}

#[test]
fn typing_is_broadcast_once_per_throttle_whatever_stops_come_between() {
    let c = conversation();
    create(&c, &["bob"]);
    let mut typing_at = Vec::new();
    let mut stops = 0;
    // typing / typing.stop every 50 ms for 7 s.
    for i in 0..140 {
        let now = T0 + i * 50;
        let (r, e) = c.handle("bob", Command::Typing { stop: i % 2 == 1 }, &ctx(now));
        assert_eq!(status(&r), 204);
        for f in &e.broadcast {
            match frame(f)["event"].as_str() {
                Some("typing") => typing_at.push(now - T0),
                Some("typing.stop") => stops += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(typing_at, vec![0, 3_000, 6_000], "one typing per 3 s");
    assert_eq!(stops, 3, "and one stop after each");
}

#[test]
fn a_flooding_socket_gets_error_frames_then_is_closed() {
    let c = with(Limits { socket_frames: Rate::per_sec(2, 2), flood_strikes: 3, ..Limits::DEFAULT });
    create(&c, &["bob"]);
    let ping = r#"{"type":"nope"}"#;
    let sock = Some(("bob", T0));
    let other = Some(("bob", T0 + 1));
    let code = |r: &SocketReply| r.sent().map(|f| frame(f)["code"].as_str().unwrap_or_default().to_string());
    // Two pass (answered as unknown frames), the next are refused as rate limited.
    assert_eq!(code(&c.socket_text(sock, ping, &ctx(T0)).0).as_deref(), Some("unknown_frame_type"));
    assert_eq!(code(&c.socket_text(sock, ping, &ctx(T0)).0).as_deref(), Some("unknown_frame_type"));
    let (r, _) = c.socket_text(sock, ping, &ctx(T0));
    let f = frame(r.sent().unwrap());
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str(), f["retryAfterMs"].as_u64()),
        (Some("error"), Some("rate_limited"), Some(500))
    );
    // Binary frames count too.
    assert_eq!(code(&c.socket_binary(sock, 3, T0)).as_deref(), Some("rate_limited"));
    // Another connection of the same member has its own bucket.
    assert_eq!(code(&c.socket_text(other, ping, &ctx(T0)).0).as_deref(), Some("unknown_frame_type"));
    // The third refusal without a pause closes the connection with 4029.
    assert_eq!(c.socket_text(sock, ping, &ctx(T0 + 1)).0, SocketReply::Close(close::RATE_LIMITED, "rate limited"));
    // A connection that pauses until its bucket is full again is forgiven.
    let calm = Some(("bob", T0 + 2));
    for round in 0..5 {
        let t = T0 + round * 1_000;
        assert_eq!(code(&c.socket_text(calm, ping, &ctx(t)).0).as_deref(), Some("unknown_frame_type"));
        assert_eq!(code(&c.socket_text(calm, ping, &ctx(t)).0).as_deref(), Some("unknown_frame_type"));
        assert_eq!(code(&c.socket_text(calm, ping, &ctx(t)).0).as_deref(), Some("rate_limited"));
        assert_eq!(code(&c.socket_text(calm, ping, &ctx(t)).0).as_deref(), Some("rate_limited"));
    }
}

#[test]
fn a_member_has_at_most_the_socket_cap_open() {
    let c = with(Limits { max_sockets_per_member: 3, ..Limits::DEFAULT });
    create(&c, &["bob"]);
    for _ in 0..3 {
        c.accept("bob", None, &ctx(T0)).unwrap();
    }
    let e = c.accept("bob", None, &ctx(T0)).unwrap_err();
    assert_eq!((e.status(), e.code), (429, ErrorCode::TooManyConnections));
    // Another member is not affected; a closed socket makes room.
    c.accept("alice", None, &ctx(T0)).unwrap();
    c.socket_closed("bob", T0 + 1).unwrap();
    c.accept("bob", None, &ctx(T0 + 2)).unwrap();
    assert!(c.accept("bob", None, &ctx(T0 + 3)).is_err());
}

#[test]
fn reactions_are_capped_per_member_and_per_message() {
    let c = with(Limits { max_reactions_per_member: 2, max_reactions_per_message: 3, ..Limits::DEFAULT });
    create(&c, &["bob"]);
    let (r, _) = send(&c, "bob", "x", None, T0);
    let mid = r.unwrap().body.unwrap()["messageId"].as_str().unwrap().to_string();
    let mut t = T0;
    let mut react = |who: &str, emoji: &str| {
        t += 1_000;
        c.handle(who, Command::AddReaction { message_id: mid.clone(), emoji: emoji.into() }, &ctx(t)).0
    };
    assert_eq!(status(&react("bob", "👍")), 201);
    assert_eq!(status(&react("bob", "🎉")), 201);
    let r = react("bob", "❤️");
    assert_eq!(r.as_ref().unwrap_err().code, ErrorCode::TooManyReactions, "third distinct of one member");
    assert_eq!(status(&r), 409);
    assert_eq!(status(&react("bob", "👍")), 200, "repeating one is no new reaction");
    assert_eq!(status(&react("alice", "👍")), 201, "joining an existing emoji always fits");
    assert_eq!(status(&react("alice", "🔥")), 201);
    let r = react("alice", "🚀");
    assert_eq!(status(&r), 409, "fourth distinct on the message");
    // Emoji are validated: text is no reaction.
    assert_eq!(status(&react("alice", "lol")), 400);
}
