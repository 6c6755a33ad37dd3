//! The live channel (`POST /v1/conversations/:id/publish`, `GET /v1/conversations/:id/live`) and
//! bot status (`/bot/v1/sandboxes/:sandboxId/bot-status`). Most tests run on a server whose members
//! may publish (`LIVE_PUBLISHERS=members`); `only_the_bot_publishes_by_default` checks the default.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_e2e::*;

/// The server of this file: members may publish, so the tests can use any member as publisher.
fn members_server() -> &'static Server {
    static SERVER: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| Server::start(&[("LIVE_PUBLISHERS", "members")]))
}

fn api() -> Api {
    Api::new(members_server())
}

/// The next frame of a live socket, which must be a published line: its value (`from` checked by
/// [`next_line_from`]).
async fn next_line(ws: &mut Ws) -> Value {
    next_line_from(ws).await.1
}

/// The next published line: who published it, and the value.
async fn next_line_from(ws: &mut Ws) -> (String, Value) {
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(f["type"], json!("line"), "{}: expected a line frame, got {f}", ws.label);
    (f["from"].as_str().unwrap_or_else(|| panic!("a line without from: {f}")).to_string(), f["line"].clone())
}

struct Room {
    api: Api,
    alice: Who,
    bob: Who,
    bot: Who,
    sb: String,
    conv: String,
}

/// alice and bob in a conversation of a fresh sandbox whose bot reported online.
async fn room() -> Room {
    room_on(api()).await
}

async fn room_on(api: Api) -> Room {
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let sb = uid("sb");
    let bot = api.bot_token(&sb).await;
    let conv = api.create_conversation(&alice, &sb, Some("live"), &[&bob.id]).await;
    set_online(&api, &bot, &sb, true).await;
    Room { api, alice, bob, bot, sb, conv }
}

async fn set_online(api: &Api, bot: &Who, sb: &str, online: bool) -> Value {
    let r = api.post(&format!("/bot/v1/sandboxes/{sb}/bot-status"), bot, &json!({ "online": online })).await;
    let b = r.expect(200).clone();
    assert_eq!(b["sandboxId"], json!(sb));
    assert_eq!(b["online"], json!(online));
    b
}

async fn subscribe(api: &Api, conv: &str, who: &Who) -> Ws {
    match Ws::open_path(
        api,
        &format!("/v1/conversations/{conv}/live"),
        WsAuth::Bearer(&who.token),
        None,
        &format!("{}-live", who.id),
    )
    .await
    {
        Ok(ws) => ws,
        Err(r) => panic!("live subscription refused: {} {}", r.status, r.text),
    }
}

/// Publishes `body` in the background while the test reads.
fn publish_in_background(api: &Api, conv: &str, who: &Who, body: String) -> tokio::task::JoinHandle<Resp> {
    let (api, conv, who) = (api.clone(), conv.to_string(), who.clone());
    tokio::spawn(async move { publish_ndjson(&api, &conv, &who, &body).await })
}

/// Reads `n` lines `{"i": 0..n}` in order, acknowledging every `every` frames.
async fn read_acking(ws: &mut Ws, n: usize, every: usize) {
    for i in 0..n {
        let v = ws.next_json(Duration::from_secs(30)).await;
        assert_eq!(v["line"]["i"], json!(i), "line {i} in order");
        if (i + 1) % every == 0 {
            ws.send_json(&json!({ "type": "ack", "received": i + 1 })).await;
        }
    }
}

/// Reads lines `{"i": 0..}` in order up to a close frame, which must be 4008; answers how many.
async fn lines_until_too_slow(ws: &mut Ws) -> usize {
    let mut got = 0usize;
    loop {
        match ws.next_frame(Duration::from_secs(30)).await {
            Some(Frame::Text(t)) => {
                let v: Value = serde_json::from_str(&t).expect("json line");
                assert_eq!(v["line"]["i"], json!(got), "line {got} in order");
                got += 1;
            }
            Some(Frame::Close(code, _)) => {
                assert_eq!(code, 4008, "closed as too slow");
                return got;
            }
            other => panic!("expected lines then close 4008, got {other:?} after {got} lines"),
        }
    }
}

fn publish_path(conv: &str) -> String {
    format!("/v1/conversations/{conv}/publish")
}

/// Publishes one whole NDJSON body (not streamed by the test).
async fn publish_ndjson(api: &Api, conv: &str, who: &Who, body: &str) -> Resp {
    api.send_typed("POST", &publish_path(conv), Some(&who.token), "application/x-ndjson", body).await
}

#[tokio::test]
async fn bot_status_roundtrip() {
    let api = api();
    let sb = uid("sb");
    let bot = api.bot_token(&sb).await;
    let path = format!("/bot/v1/sandboxes/{sb}/bot-status");
    let r = api.get(&path, &bot).await;
    let b = r.expect(200).clone();
    assert_eq!(b["sandboxId"], json!(sb));
    assert_eq!(b["online"], json!(false), "never reported: offline: {b}");

    let before = now_ms();
    let b = set_online(&api, &bot, &sb, true).await;
    let at = b["at"].as_i64().unwrap_or_else(|| panic!("at is not an integer: {b}"));
    assert!(at >= before - 5_000 && at <= now_ms() + 5_000, "at {at} defaults to now");
    assert_eq!(api.get(&path, &bot).await.expect(200), &b);

    // A report older than the stored one (delivered late) changes nothing: the answer is the stored status.
    let r = api.post(&path, &bot, &json!({ "online": false, "at": at - 60_000 })).await;
    assert_eq!(r.expect(200), &b);
    assert_eq!(api.get(&path, &bot).await.expect(200), &b);

    let r = api.post(&path, &bot, &json!({ "online": false, "at": at + 1 })).await;
    assert_eq!(r.expect(200), &json!({ "sandboxId": sb, "online": false, "at": at + 1 }));
    assert_eq!(api.get(&path, &bot).await.expect(200)["online"], json!(false));

    for (what, body) in [
        ("missing online", json!({})),
        ("online not a boolean", json!({ "online": "yes" })),
        ("at not an integer", json!({ "online": true, "at": "now" })),
        ("unknown field", json!({ "online": true, "mood": "good" })),
    ] {
        let r = api.post(&path, &bot, &body).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{what}: {} {}",
            r.status,
            r.text
        );
    }
    let human = api.user("alice").await;
    api.post(&path, &human, &json!({ "online": true })).await.expect_error(403, "forbidden");
    let other = api.bot_token(&uid("sb")).await;
    api.post(&path, &other, &json!({ "online": true })).await.expect_error(403, "forbidden");
    api.get(&path, &other).await.expect_error(403, "forbidden");
    api.send("GET", &path, None, None).await.expect_error(401, "unauthorized");
    assert_eq!(api.get(&path, &bot).await.expect(200)["online"], json!(false), "rejected calls changed the status");
}

/// Lines reach a subscriber as they arrive (each before the next is even sent); blank and invalid
/// lines are skipped; the final line is committed as a message from the publisher.
#[tokio::test]
async fn streamed_publish_reaches_subscribers_line_by_line() {
    let Room { api, alice, bob, bot, conv, .. } = room().await;
    let mut live = subscribe(&api, &conv, &bob).await;
    let (mut events, ready) = Ws::connect_ready(&api, &conv, &alice).await;

    let mut p =
        StreamingRequest::start(&api, "POST", &publish_path(&conv), Some(&bot.token), "application/x-ndjson").await;
    p.send(b"{\"delta\":\"Hel\"}\n").await;
    assert_eq!(next_line(&mut live).await, json!({ "delta": "Hel" }), "first line, before the second was sent");
    // a line split across two chunks, CRLF ending, a blank line, an invalid line
    p.send(b"{\"delta\":").await;
    p.send(b"\"lo\"}\r\n\n").await;
    assert_eq!(next_line(&mut live).await, json!({ "delta": "lo" }));
    p.send(b"this is not json\n").await;
    let fin = json!({ "final": true, "content": [{ "type": "text", "text": "Hello" }], "clientId": "live-final-1" });
    p.send(fin.to_string().as_bytes()).await; // last line without a newline
    let r = p.finish().await;
    let b = r.expect(200).clone();
    assert_eq!(b["delivered"], json!(3), "{b}");
    assert_eq!(b["skipped"], json!(1), "{b}");
    assert_eq!(b["skippedInvalid"], json!(1), "{b}");
    assert_eq!(b["skippedTooLong"], json!(0), "{b}");
    assert_eq!(b["ended"], json!("complete"), "{b}");
    assert!(b.get("commitError").is_none_or(|e| e.is_null()), "{b}");
    let mid = b["messageId"].as_str().unwrap_or_else(|| panic!("no messageId: {b}")).to_string();
    assert!(is_ulid(&mid));
    assert_eq!(next_line(&mut live).await, fin, "the final line is delivered like any other");

    // the stored message agrees with the stream
    let msgs = api.messages(&alice, &conv).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["id"], json!(mid));
    assert_eq!(msgs[0]["senderId"], json!(bot.id));
    assert_eq!(msgs[0]["content"], json!([{ "type": "text", "text": "Hello" }]));
    let ev = events.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["messageId"], json!(mid));
    assert_eq!(ev["payload"]["clientId"], json!("live-final-1"));

    // the same final clientId again: the original message, no new one
    let r = publish_ndjson(&api, &conv, &bot, &format!("{fin}\n")).await;
    let b = r.expect(200).clone();
    assert_eq!(b["messageId"], json!(mid), "{b}");
    assert_eq!(api.messages(&alice, &conv).await.len(), 1);
    assert_eq!(next_line(&mut live).await, fin);
}

#[tokio::test]
async fn member_publishes_single_json_object() {
    let Room { api, alice, bob, conv, .. } = room().await;
    let mut live = subscribe(&api, &conv, &bob).await;
    let r = api
        .send_typed("POST", &publish_path(&conv), Some(&alice.token), "application/json", r#"{"progress": 50}"#)
        .await;
    let b = r.expect(200).clone();
    assert_eq!(b["delivered"], json!(1), "{b}");
    assert_eq!(b["skipped"], json!(0), "{b}");
    assert_eq!(b["ended"], json!("complete"), "{b}");
    assert!(b["messageId"].is_null(), "no final line, no message: {b}");
    assert_eq!(next_line(&mut live).await, json!({ "progress": 50 }));
    assert!(api.messages(&alice, &conv).await.is_empty());
}

#[tokio::test]
async fn publish_errors() {
    let Room { api, alice, conv, .. } = room().await;
    let path = publish_path(&conv);
    let r = api.send_typed("POST", &path, Some(&alice.token), "text/plain", "{\"a\":1}\n").await;
    r.expect_error(415, "unsupported_content_type");
    let r = api.send_typed("POST", &path, None, "application/x-ndjson", "{\"a\":1}\n").await;
    r.expect_error(401, "unauthorized");
    let eve = api.user("eve").await;
    let r = api.send_typed("POST", &path, Some(&eve.token), "application/x-ndjson", "{\"a\":1}\n").await;
    r.expect_error(403, "forbidden");
    let other_bot = api.bot_token(&uid("sb")).await;
    let r = api.send_typed("POST", &path, Some(&other_bot.token), "application/x-ndjson", "{\"a\":1}\n").await;
    r.expect_error(403, "forbidden");
    let r = api
        .send_typed("POST", &publish_path(UNKNOWN_ULID), Some(&alice.token), "application/x-ndjson", "{\"a\":1}\n")
        .await;
    r.expect_error(404, "not_found");

    // a conversation whose bot never reported online
    let sb = uid("sb");
    let quiet = api.create_conversation(&alice, &sb, Some("quiet"), &[]).await;
    let r =
        api.send_typed("POST", &publish_path(&quiet), Some(&alice.token), "application/x-ndjson", "{\"a\":1}\n").await;
    r.expect_error(409, "bot_offline");
}

#[tokio::test]
async fn invalid_final_line_reports_commit_error() {
    let Room { api, alice, bob, bot, conv, .. } = room().await;
    let mut live = subscribe(&api, &conv, &bob).await;
    let body = "{\"delta\":\"x\"}\n{\"final\":true,\"content\":[]}\n";
    let r = publish_ndjson(&api, &conv, &bot, body).await;
    let b = r.expect(200).clone();
    assert_eq!(b["delivered"], json!(2), "{b}");
    assert!(b["messageId"].is_null(), "{b}");
    assert!(b.get("commitError").is_some_and(|e| !e.is_null()), "commitError expected: {b}");
    assert_eq!(next_line(&mut live).await, json!({ "delta": "x" }));
    assert_eq!(next_line(&mut live).await, json!({ "final": true, "content": [] }));
    assert!(api.messages(&alice, &conv).await.is_empty());
}

#[tokio::test]
async fn too_long_line_is_skipped() {
    let Room { api, bob, bot, conv, .. } = room().await;
    let mut live = subscribe(&api, &conv, &bob).await;
    let long = json!({ "blob": "x".repeat(70 * 1024) }).to_string();
    let body = format!("{{\"n\":1}}\n{long}\n{{\"n\":2}}\n");
    let r = publish_ndjson(&api, &conv, &bot, &body).await;
    let b = r.expect(200).clone();
    assert_eq!(b["delivered"], json!(2), "{b}");
    assert_eq!(b["skippedTooLong"], json!(1), "{b}");
    assert_eq!(b["skipped"], json!(1), "{b}");
    assert_eq!(next_line(&mut live).await, json!({ "n": 1 }));
    assert_eq!(next_line(&mut live).await, json!({ "n": 2 }));
}

#[tokio::test]
async fn late_subscriber_first_gets_the_lines_so_far() {
    let Room { api, alice, bob, bot, conv, .. } = room().await;
    let mut early = subscribe(&api, &conv, &bob).await;
    let mut p =
        StreamingRequest::start(&api, "POST", &publish_path(&conv), Some(&bot.token), "application/x-ndjson").await;
    p.send(b"{\"i\":1}\n{\"i\":2}\n").await;
    assert_eq!(next_line(&mut early).await, json!({ "i": 1 }));
    assert_eq!(next_line(&mut early).await, json!({ "i": 2 }));

    let mut late = subscribe(&api, &conv, &alice).await;
    assert_eq!(next_line(&mut late).await, json!({ "i": 1 }), "a late subscriber gets the publish so far");
    assert_eq!(next_line(&mut late).await, json!({ "i": 2 }));
    p.send(b"{\"i\":3}\n").await;
    assert_eq!(next_line(&mut late).await, json!({ "i": 3 }));
    assert_eq!(next_line(&mut early).await, json!({ "i": 3 }));
    let r = p.finish().await;
    assert_eq!(r.expect(200)["delivered"], json!(3));
    late.expect_no_frame(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn concurrent_publishers_keep_their_own_order() {
    let Room { api, alice, bob, bot, conv, .. } = room().await;
    let mut live = subscribe(&api, &conv, &bob).await;
    let mut a =
        StreamingRequest::start(&api, "POST", &publish_path(&conv), Some(&bot.token), "application/x-ndjson").await;
    let mut b =
        StreamingRequest::start(&api, "POST", &publish_path(&conv), Some(&alice.token), "application/x-ndjson").await;
    for i in 0..5 {
        a.send(format!("{{\"from\":\"a\",\"i\":{i}}}\n").as_bytes()).await;
        b.send(format!("{{\"from\":\"b\",\"i\":{i}}}\n").as_bytes()).await;
    }
    let (ra, rb) = tokio::join!(a.finish(), b.finish());
    assert_eq!(ra.expect(200)["delivered"], json!(5));
    assert_eq!(rb.expect(200)["delivered"], json!(5));
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    for _ in 0..10 {
        let (publisher, f) = next_line_from(&mut live).await;
        let expected = if f["from"] == json!("a") { &bot.id } else { &alice.id };
        assert_eq!(&publisher, expected, "every line names its publisher");
        match f["from"].as_str() {
            Some("a") => seen_a.push(f["i"].as_i64().unwrap()),
            Some("b") => seen_b.push(f["i"].as_i64().unwrap()),
            _ => panic!("unexpected live frame {f}"),
        }
    }
    assert_eq!(seen_a, vec![0, 1, 2, 3, 4]);
    assert_eq!(seen_b, vec![0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn bot_going_offline_closes_subscribers_and_stops_publishes() {
    let Room { api, bob, bot, sb, conv, .. } = room().await;
    let mut live = subscribe(&api, &conv, &bob).await;
    let mut p =
        StreamingRequest::start(&api, "POST", &publish_path(&conv), Some(&bot.token), "application/x-ndjson").await;
    p.send(b"{\"step\":1}\n").await;
    assert_eq!(next_line(&mut live).await, json!({ "step": 1 }));

    set_online(&api, &bot, &sb, false).await;
    match live.next_frame(FRAME_TIMEOUT).await {
        Some(Frame::Close(code, _)) => assert_eq!(code, 4002, "subscriber close code when the bot goes offline"),
        other => panic!("expected close 4002, got {other:?}"),
    }
    let _ = p.try_send(b"{\"step\":2}\n").await;
    let r = p.finish().await;
    r.expect_error(409, "bot_offline");

    // while offline: a new subscriber is closed with 4002, a publish is refused
    let mut again = subscribe(&api, &conv, &bob).await;
    match again.next_frame(FRAME_TIMEOUT).await {
        Some(Frame::Close(code, _)) => assert_eq!(code, 4002),
        other => panic!("expected close 4002 for a subscriber while the bot is offline, got {other:?}"),
    }
    publish_ndjson(&api, &conv, &bot, "{\"a\":1}\n").await.expect_error(409, "bot_offline");

    // back online: works again
    set_online(&api, &bot, &sb, true).await;
    let mut live = subscribe(&api, &conv, &bob).await;
    publish_ndjson(&api, &conv, &bot, "{\"back\":true}\n").await.expect(200);
    assert_eq!(next_line(&mut live).await, json!({ "back": true }));
}

#[tokio::test]
async fn live_socket_frames_and_access() {
    let Room { api, alice, conv, .. } = room().await;
    let mut live = subscribe(&api, &conv, &alice).await;
    live.send_text("ping").await;
    assert_eq!(live.next_frame(FRAME_TIMEOUT).await, Some(Frame::Text("pong".into())));
    live.send_json(&json!({ "type": "hello" })).await;
    let f = live.next_json(FRAME_TIMEOUT).await;
    assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("unknown_frame_type")), "{f}");
    // An ack counting more frames than were sent (one: the error above) is refused; a right one is silent.
    live.send_json(&json!({ "type": "ack", "received": 5 })).await;
    let f = live.next_json(FRAME_TIMEOUT).await;
    assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("invalid_request")), "{f}");
    live.send_json(&json!({ "type": "ack", "received": 2 })).await;
    live.expect_no_frame(Duration::from_millis(300)).await;

    // ticket auth
    let ticket = api.ticket(&alice).await;
    let mut t = Ws::open_path(
        &api,
        &format!("/v1/conversations/{conv}/live"),
        WsAuth::Ticket(&ticket),
        None,
        "alice-live-ticket",
    )
    .await
    .unwrap_or_else(|r| panic!("ticket subscription refused: {} {}", r.status, r.text));
    t.send_text("ping").await;
    assert_eq!(t.next_frame(FRAME_TIMEOUT).await, Some(Frame::Text("pong".into())));

    // a non-member and an unknown conversation: closed with 4001
    let eve = api.user("eve").await;
    for (who, c) in [(&eve, conv.as_str()), (&alice, UNKNOWN_ULID)] {
        match Ws::open_path(
            &api,
            &format!("/v1/conversations/{c}/live"),
            WsAuth::Bearer(&who.token),
            None,
            "live-denied",
        )
        .await
        {
            Ok(mut ws) => match ws.next_frame(FRAME_TIMEOUT).await {
                Some(Frame::Close(code, _)) => assert_eq!(code, 4001, "{} on {c}", who.id),
                other => panic!("{} on {c}: expected close 4001, got {other:?}", who.id),
            },
            Err(r) => {
                panic!("{} on {c}: expected an upgrade then close 4001, got HTTP {} {}", who.id, r.status, r.text)
            }
        }
    }
    // no auth: 401 before the upgrade
    let r = Ws::refused_path(&api, &format!("/v1/conversations/{conv}/live"), WsAuth::None, None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (401, Some("unauthorized")), "{}", r.text);
}

/// A publish that stops sending ends with `idle_timeout` after LIVE_IDLE_MS (a dedicated server
/// with a 1 s idle limit).
#[tokio::test]
async fn idle_publish_ends_with_idle_timeout() {
    let server = Server::start(&[("LIVE_IDLE_MS", "1000")]);
    let Room { api, bob, bot, conv, .. } = room_on(Api::new(&server)).await;
    let mut live = subscribe(&api, &conv, &bob).await;
    let mut p =
        StreamingRequest::start(&api, "POST", &publish_path(&conv), Some(&bot.token), "application/x-ndjson").await;
    p.send(b"{\"thinking\":true}\n").await;
    assert_eq!(next_line(&mut live).await, json!({ "thinking": true }));
    // send nothing more, do not end the body
    let r = p.response().await;
    let b = r.expect(200).clone();
    assert_eq!(b["ended"], json!("idle_timeout"), "{b}");
    assert_eq!(b["delivered"], json!(1), "{b}");
    assert!(b["messageId"].is_null(), "{b}");
}

/// A subscriber that stops reading holds the others back at most once, for the stall grace (2 s),
/// and is then closed (4008): the window (4 MiB or 4,096 frames unacknowledged) fills, the publish
/// waits for its acks, none come. With one subscriber that never reads its socket, a publish of
/// ~30 MB still reaches the reading subscriber (which acknowledges as it reads) whole and in order,
/// the publish completes, and the stalled subscriber, when it finally reads, finds the lines that fit
/// in its window and then close 4008.
#[tokio::test]
async fn a_stalled_subscriber_is_closed_and_the_others_get_everything() {
    let Room { api, alice, bob, bot, conv, .. } = room().await;
    let mut stalled = subscribe(&api, &conv, &alice).await; // not read until the publish is over
    let mut reader = subscribe(&api, &conv, &bob).await;
    let pad = "x".repeat(60_000);
    let n = 500;
    let body: String = (0..n).map(|i| format!("{{\"i\":{i},\"pad\":\"{pad}\"}}\n")).collect();
    // How many frames fit in the 4 MiB window: each line in its envelope, naming the bot.
    let envelope = format!(r#"{{"type":"line","from":"{}","line":}}"#, bot.id).len();
    let window_lines = body
        .lines()
        .scan(0usize, |total, l| {
            *total += l.len() + envelope;
            Some(*total)
        })
        .take_while(|&t| t <= 4 * 1024 * 1024)
        .count();
    let publish = publish_in_background(&api, &conv, &bot, body);
    read_acking(&mut reader, n, 8).await;
    let r = publish.await.expect("publish task");
    assert_eq!(r.expect(200)["delivered"], json!(n), "{}", r.text);

    // The stalled subscriber got the lines that fit in its window, in order, then 4008.
    let got = lines_until_too_slow(&mut stalled).await;
    assert_eq!(got, window_lines, "the lines that fit in the 4 MiB window, then the close");
    // The acknowledging reader was never closed.
    reader.send_text("ping").await;
    assert_eq!(reader.next_frame(FRAME_TIMEOUT).await, Some(Frame::Text("pong".into())));
}

/// A subscriber that reads but never acknowledges is closed after the window's 4,096 frames, and
/// one that acknowledges is not, however many frames go by (the publish waits for its acks).
#[tokio::test]
async fn a_subscriber_that_never_acknowledges_is_closed_after_the_frame_window() {
    let Room { api, alice, bob, bot, conv, .. } = room().await;
    let mut silent = subscribe(&api, &conv, &alice).await;
    let mut acking = subscribe(&api, &conv, &bob).await;
    let n = 5000usize;
    let body: String = (0..n).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    let publish = publish_in_background(&api, &conv, &bot, body);
    read_acking(&mut acking, n, 100).await;
    let r = publish.await.expect("publish task");
    assert_eq!(r.expect(200)["delivered"], json!(n), "{}", r.text);
    let got = lines_until_too_slow(&mut silent).await;
    assert_eq!(got, 4096, "the window's frames, then the close");
    acking.send_text("ping").await;
    assert_eq!(acking.next_frame(FRAME_TIMEOUT).await, Some(Frame::Text("pong".into())));
}

/// By default only the conversation's bot publishes (a member: 403), every line names its publisher,
/// and a conversation has at most 4 publishes in progress (409 `too_many_publishes`).
#[tokio::test]
async fn only_the_bot_publishes_by_default_and_publishes_are_capped() {
    let Room { api, alice, bob, bot, conv, .. } = room_on(Api::new(shared())).await;
    let mut live = subscribe(&api, &conv, &bob).await;
    let r = publish_ndjson(&api, &conv, &alice, "{\"x\":1}\n").await;
    r.expect_error(403, "forbidden");
    assert!(r.error_message().contains("LIVE_PUBLISHERS"), "{}", r.text);
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut p =
            StreamingRequest::start(&api, "POST", &publish_path(&conv), Some(&bot.token), "application/x-ndjson").await;
        p.send(b"{\"open\":true}\n").await;
        assert_eq!(next_line_from(&mut live).await, (bot.id.clone(), json!({ "open": true })));
        open.push(p);
    }
    publish_ndjson(&api, &conv, &bot, "{\"fifth\":true}\n").await.expect_error(409, "too_many_publishes");
    let first = open.remove(0);
    assert_eq!(first.finish().await.expect(200)["delivered"], json!(1));
    let r = publish_ndjson(&api, &conv, &bot, "{\"after\":true}\n").await;
    assert_eq!(r.expect(200)["delivered"], json!(1), "a slot is free again");
    assert_eq!(next_line_from(&mut live).await, (bot.id.clone(), json!({ "after": true })));
    for p in open {
        p.finish().await.expect(200);
    }
}

/// A publish that keeps sending ends at LIVE_MAX_PUBLISH_MS with `max_duration` (a dedicated
/// server with a 2 s maximum); its final line, already delivered, is still committed.
#[tokio::test]
async fn a_publish_ends_at_its_maximum_duration() {
    let server = Server::start(&[("LIVE_MAX_PUBLISH_MS", "2000")]);
    let Room { api, alice, bob, bot, conv, .. } = room_on(Api::new(&server)).await;
    let mut live = subscribe(&api, &conv, &bob).await;
    let mut p =
        StreamingRequest::start(&api, "POST", &publish_path(&conv), Some(&bot.token), "application/x-ndjson").await;
    p.send(b"{\"final\":true,\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}\n").await;
    assert_eq!(next_line(&mut live).await["final"], json!(true));
    // Keep the body busy past the maximum (chunks well within the idle timeout), never ending it:
    // whenever the service ends it, it ends it for its duration, not for idleness.
    for _ in 0..30 {
        if !p.try_send(b"{\"tick\":true}\n").await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = p.response().await;
    let b = r.expect(200).clone();
    assert_eq!(b["ended"], json!("max_duration"), "{b}");
    assert!(b["messageId"].is_string(), "the final line is committed: {b}");
    assert_eq!(api.messages(&alice, &conv).await.len(), 1);
}
