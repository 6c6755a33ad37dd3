//! The WebSocket protocol: auth, live events with consecutive seqs, frames, resume and resync.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};
use switchboard_e2e::*;

fn api() -> Api {
    Api::new(shared())
}

async fn pair() -> (Api, Who, Who, String) {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("ws"), &[&bob.id]).await;
    (api, alice, bob, conv)
}

#[tokio::test]
async fn members_see_each_others_messages_live() {
    let (api, alice, bob, conv) = pair().await;
    let (mut aws, ra) = Ws::connect_ready(&api, &conv, &alice).await;
    let (mut bws, rb) = Ws::connect_ready(&api, &conv, &bob).await;
    assert_eq!(ra, rb, "both sockets see the same latest seq");

    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push((alice.id.clone(), api.send_text(&alice, &conv, &format!("a{i}")).await));
    }
    sent.push((bob.id.clone(), api.send_text(&bob, &conv, "b0").await));
    sent.push((alice.id.clone(), api.send_text(&alice, &conv, "a3").await));

    for ws in [&mut aws, &mut bws] {
        let mut prev = ra;
        for (sender, m) in &sent {
            let ev = ws.expect_event("message.created").await;
            let seq = ev["seq"].as_i64().unwrap();
            assert_eq!(seq, prev + 1, "seq must grow by exactly one: {ev}");
            prev = seq;
            assert_eq!(ev["payload"]["messageId"], m["id"]);
            assert_eq!(ev["payload"]["senderId"], json!(sender));
            assert_eq!(ev["payload"]["content"], m["content"]);
            // The event's `message` is the message without its content, which the event carries once.
            let mut rest = m.clone();
            rest.as_object_mut().unwrap().remove("content");
            assert_eq!(ev["payload"]["message"], rest);
        }
    }
    aws.expect_no_frame(Duration::from_millis(300)).await;
    bws.expect_no_frame(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn ticket_auth_is_single_use() {
    let (api, alice, _bob, conv) = pair().await;
    let ticket = api.ticket(&alice).await;
    let mut ws = Ws::open(&api, &conv, WsAuth::Ticket(&ticket), None, "alice-ticket")
        .await
        .unwrap_or_else(|r| panic!("ticket upgrade refused: {} {}", r.status, r.text));
    let (events, resync, seq) = ws.read_until_ready().await;
    assert!(events.is_empty() && resync.is_none());
    let m = api.send_text(&alice, &conv, "via ticket").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(seq + 1));
    assert_eq!(ev["payload"]["messageId"], m["id"]);

    // second use of the same ticket
    Ws::expect_refused(&api, &conv, WsAuth::Ticket(&ticket), None, 401, "unauthorized").await;
    // a made-up ticket
    Ws::expect_refused(&api, &conv, WsAuth::Ticket("made-up-ticket"), None, 401, "unauthorized").await;
    // a ticket of a non-member
    let eve = api.user("eve").await;
    let t = api.ticket(&eve).await;
    Ws::expect_refused(&api, &conv, WsAuth::Ticket(&t), None, 403, "forbidden").await;
}

#[tokio::test]
async fn upgrade_errors() {
    let (api, alice, _bob, conv) = pair().await;
    let path = format!("/v1/conversations/{conv}/ws");
    // plain GET
    api.get(&path, &alice).await.expect_error(426, "upgrade_required");
    // no auth
    Ws::expect_refused(&api, &conv, WsAuth::None, None, 401, "unauthorized").await;
    // forged bearer
    let now = now_secs();
    let forged = sign_jwt(b"wrong", &human_claims(&alice.id, Some(now), Some(now + 600), AUDIENCE));
    Ws::expect_refused(&api, &conv, WsAuth::Bearer(&forged), None, 401, "unauthorized").await;
    // bad since
    for bad in ["abc", "-1", "1.5"] {
        Ws::expect_refused(&api, &conv, WsAuth::Bearer(&alice.token), Some(bad), 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn ping_pong_and_error_frames() {
    let (api, alice, _bob, conv) = pair().await;
    let (mut ws, _) = Ws::connect_ready(&api, &conv, &alice).await;

    ws.send_text("ping").await;
    assert_eq!(ws.next_frame(FRAME_TIMEOUT).await, Some(Frame::Text("pong".into())));

    ws.send_json(&json!({ "type": "no.such.thing", "requestId": "r-unknown" })).await;
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(f["type"], json!("error"), "{f}");
    assert_eq!(f["code"], json!("unknown_frame_type"), "{f}");
    assert!(f["message"].is_string(), "{f}");

    ws.send_text("{this is not json").await;
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("bad_frame")), "{f}");

    ws.send_binary(vec![1, 2, 3]).await;
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("binary_not_supported")), "{f}");

    // the socket still works after errors
    ws.send_text("ping").await;
    assert_eq!(ws.next_frame(FRAME_TIMEOUT).await, Some(Frame::Text("pong".into())));
    let m = api.send_text(&alice, &conv, "still alive").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["payload"]["messageId"], m["id"]);
}

#[tokio::test]
async fn oversize_frame_closes_1009() {
    let (api, alice, _bob, conv) = pair().await;
    let (mut ws, _) = Ws::connect_ready(&api, &conv, &alice).await;
    let big = json!({ "type": "message.create", "content": text(&"x".repeat(70 * 1024)) }).to_string();
    assert!(big.len() > 64 * 1024);
    ws.send_text(&big).await;
    match ws.next_frame(FRAME_TIMEOUT).await {
        Some(Frame::Close(code, _)) => assert_eq!(code, 1009, "close code for an oversize frame"),
        other => panic!("expected close 1009, got {other:?}"),
    }
    assert!(api.messages(&alice, &conv).await.is_empty(), "the oversize frame created a message");
    // a new socket works
    let (mut ws2, _) = Ws::connect_ready(&api, &conv, &alice).await;
    ws2.send_text("ping").await;
    assert_eq!(ws2.next_frame(FRAME_TIMEOUT).await, Some(Frame::Text("pong".into())));
}

/// Reads frames until both the ack for `request_id` and the `message.created` event arrived;
/// nothing else may arrive in between.
async fn ack_and_event(ws: &mut Ws, request_id: &str) -> (Value, Value) {
    let mut ack = None;
    let mut ev = None;
    while ack.is_none() || ev.is_none() {
        let f = ws.next_json(FRAME_TIMEOUT).await;
        match f["type"].as_str() {
            Some("message.ack") if ack.is_none() => {
                assert_eq!(f["requestId"], json!(request_id), "{f}");
                ack = Some(f);
            }
            Some("event") if ev.is_none() && f["event"] == json!("message.created") => ev = Some(f),
            _ => panic!("{}: unexpected frame while waiting for ack and event: {f}", ws.label),
        }
    }
    (ack.unwrap(), ev.unwrap())
}

#[tokio::test]
async fn message_create_over_socket() {
    let (api, alice, bob, conv) = pair().await;
    let (mut aws, ready) = Ws::connect_ready(&api, &conv, &alice).await;
    let (mut bws, _) = Ws::connect_ready(&api, &conv, &bob).await;

    aws.send_json(&json!({ "type": "message.create", "requestId": "r1", "content": text("over the socket"), "clientId": "ws-c1" })).await;
    let (ack, own) = ack_and_event(&mut aws, "r1").await;
    assert_eq!(ack["duplicate"], json!(false), "{ack}");
    let mid = ack["messageId"].as_str().unwrap_or_else(|| panic!("{ack}")).to_string();
    assert!(is_ulid(&mid));
    assert_eq!(ack["message"]["id"], json!(mid));
    assert_eq!(ack["message"]["senderId"], json!(alice.id));
    assert_eq!(ack["message"]["content"], text("over the socket"));
    assert_eq!(own["payload"]["messageId"], json!(mid));
    assert_eq!(own["seq"], json!(ready + 1));

    let ev = bws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["messageId"], json!(mid));
    assert_eq!(ev["payload"]["senderId"], json!(alice.id));
    assert_eq!(ev["payload"]["clientId"], json!("ws-c1"));

    // the same clientId again: duplicate ack, no event
    aws.send_json(&json!({ "type": "message.create", "requestId": "r2", "content": text("over the socket"), "clientId": "ws-c1" })).await;
    let f = aws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(f["type"], json!("message.ack"), "{f}");
    assert_eq!(f["requestId"], json!("r2"));
    assert_eq!(f["duplicate"], json!(true));
    assert_eq!(f["messageId"], json!(mid));
    // and the same clientId over HTTP: the original
    let r = api
        .post(
            "/v1/messages",
            &alice,
            &json!({ "conversationId": conv, "content": text("over the socket"), "clientId": "ws-c1" }),
        )
        .await;
    assert_eq!(r.expect(200)["messageId"], json!(mid));

    // validation error: error frame with the request id, nothing created
    aws.send_json(&json!({ "type": "message.create", "requestId": "r3", "content": [] })).await;
    let f = aws.next_json(FRAME_TIMEOUT).await;
    assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("invalid_request")), "{f}");
    assert_eq!(f["requestId"], json!("r3"));
    aws.send_json(&json!({ "type": "message.create", "requestId": "r4", "content": text("x"), "surprise": 1 })).await;
    let f = aws.next_json(FRAME_TIMEOUT).await;
    assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("invalid_request")), "{f}");
    assert_eq!(f["requestId"], json!("r4"));

    // a reply over the socket from bob
    bws.send_json(
        &json!({ "type": "message.create", "requestId": "b1", "content": text("reply"), "inReplyToMessageId": mid }),
    )
    .await;
    let (ack, own) = ack_and_event(&mut bws, "b1").await;
    assert_eq!(ack["duplicate"], json!(false));
    assert_eq!(ack["message"]["inReplyToMessageId"], json!(mid));
    assert_eq!(own["seq"], json!(ready + 2), "the duplicate or invalid frames emitted events");
    let ev = aws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 2));
    assert_eq!(ev["payload"]["replyTo"], json!({ "messageId": mid, "senderId": alice.id }));

    let list = api.messages(&alice, &conv).await;
    assert_eq!(list.len(), 2, "{list:?}");
}

#[tokio::test]
async fn resume_replays_missed_events_then_ready() {
    let (api, alice, bob, conv) = pair().await;
    let (bws, last_seen) = Ws::connect_ready(&api, &conv, &bob).await;
    bws.close().await;

    let mut missed = Vec::new();
    for i in 0..5 {
        missed.push(api.send_text(&alice, &conv, &format!("while away {i}")).await);
    }
    let mut ws = Ws::connect(&api, &conv, &bob, Some(last_seen)).await;
    let (events, resync, ready) = ws.read_until_ready().await;
    assert!(resync.is_none(), "no resync expected: {resync:?}");
    assert_eq!(events.len(), 5, "replayed events: {events:?}");
    for (i, (ev, m)) in events.iter().zip(&missed).enumerate() {
        assert_eq!(ev["seq"], json!(last_seen + 1 + i as i64), "{ev}");
        assert_eq!(ev["event"], json!("message.created"));
        assert_eq!(ev["payload"]["messageId"], m["id"]);
        assert_eq!(ev["payload"]["content"], m["content"]);
    }
    assert_eq!(ready, last_seen + 5);

    // then live
    let live = api.send_text(&alice, &conv, "live again").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["messageId"], live["id"]);

    // since == latest: nothing replayed
    let mut ws2 = Ws::connect(&api, &conv, &bob, Some(ready + 1)).await;
    let (events, resync, r2) = ws2.read_until_ready().await;
    assert!(events.is_empty() && resync.is_none(), "{events:?} {resync:?}");
    assert_eq!(r2, ready + 1);
    // since in the middle: exactly the newer ones
    let mut ws3 = Ws::connect(&api, &conv, &bob, Some(last_seen + 3)).await;
    let (events, _, r3) = ws3.read_until_ready().await;
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![last_seen + 4, last_seen + 5, last_seen + 6]);
    assert_eq!(r3, ready + 1);
}

#[tokio::test]
async fn resume_with_ticket_and_since() {
    let (api, alice, bob, conv) = pair().await;
    let (ws, seen) = Ws::connect_ready(&api, &conv, &bob).await;
    ws.close().await;
    let m = api.send_text(&alice, &conv, "missed").await;
    let mut ws = Ws::connect_ticket(&api, &conv, &bob, Some(seen)).await;
    let (events, resync, ready) = ws.read_until_ready().await;
    assert!(resync.is_none());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["payload"]["messageId"], m["id"]);
    assert_eq!(ready, seen + 1);
}

#[tokio::test]
async fn since_zero_replays_everything() {
    let (api, alice, bob, conv) = pair().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(api.send_text(&alice, &conv, &format!("m{i}")).await["id"].clone());
    }
    let mut ws = Ws::connect(&api, &conv, &bob, Some(0)).await;
    let (events, resync, ready) = ws.read_until_ready().await;
    assert!(resync.is_none(), "a young conversation replays from 0: {resync:?}");
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=ready).collect::<Vec<_>>(), "replay from 0 covers seq 1..=ready");
    let created: Vec<&Value> =
        events.iter().filter(|e| e["event"] == json!("message.created")).map(|e| &e["payload"]["messageId"]).collect();
    assert_eq!(created, ids.iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn since_newer_than_latest_resyncs() {
    let (api, alice, bob, conv) = pair().await;
    let (ws, latest) = Ws::connect_ready(&api, &conv, &bob).await;
    ws.close().await;
    let mut ws = Ws::connect(&api, &conv, &bob, Some(latest + 1000)).await;
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(f["type"], json!("resync"), "{f}");
    assert_eq!(f["seq"], json!(latest), "{f}");
    // a ready may follow (no replay); then live events
    let m = api.send_text(&alice, &conv, "after resync").await;
    let mut f = ws.next_json(FRAME_TIMEOUT).await;
    if f["type"] == json!("ready") {
        assert_eq!(f["seq"], json!(latest), "{f}");
        f = ws.next_json(FRAME_TIMEOUT).await;
    }
    assert_eq!(f["type"], json!("event"), "{f}");
    assert_eq!(f["seq"], json!(latest + 1), "{f}");
    assert_eq!(f["payload"]["messageId"], m["id"]);
}

/// Sends `n` messages from `who`, 10 at a time, each answered 201.
async fn bulk_send(api: &Api, who: &Who, conv: &str, n: usize) {
    let mut sent = 0;
    while sent < n {
        let k = (n - sent).min(10);
        let bodies: Vec<Value> =
            (0..k).map(|i| json!({ "conversationId": conv, "content": text(&format!("bulk {}", sent + i)) })).collect();
        let batch = join_all(bodies.iter().map(|b| api.post("/v1/messages", who, b))).await;
        for r in batch {
            r.expect(201);
        }
        sent += k;
    }
}

/// Far more than 1,000 events: a `since` far older than the window resyncs; one inside it replays.
#[tokio::test]
async fn since_older_than_window_resyncs() {
    let (api, alice, bob, conv) = pair().await;
    bulk_send(&api, &alice, &conv, 1100).await;
    let (ws, latest) = Ws::connect_ready(&api, &conv, &bob).await;
    ws.close().await;
    assert!(latest >= 1100, "latest seq {latest} after 1100 messages");

    let mut ws = Ws::connect(&api, &conv, &bob, Some(1)).await;
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(f["type"], json!("resync"), "since=1 with latest={latest}: {f}");
    assert_eq!(f["seq"], json!(latest));
    let m = api.send_text(&alice, &conv, "after resync").await;
    let mut f = ws.next_json(FRAME_TIMEOUT).await;
    if f["type"] == json!("ready") {
        assert_eq!(f["seq"], json!(latest), "{f}");
        f = ws.next_json(FRAME_TIMEOUT).await;
    }
    assert_eq!(f["type"], json!("event"), "{f}");
    assert_eq!(f["seq"], json!(latest + 1), "{f}");
    assert_eq!(f["payload"]["messageId"], m["id"]);

    // since == newest - 999: inside the window of the last 1,000 events
    let newest = latest + 1;
    let since = newest - 999;
    let mut ws = Ws::connect(&api, &conv, &bob, Some(since)).await;
    let (events, resync, ready) = ws.read_until_ready().await;
    assert!(resync.is_none(), "since {since} is inside the window of 1,000 events (latest {newest})");
    assert_eq!(events.len(), 999);
    assert_eq!(events[0]["seq"], json!(since + 1));
    assert_eq!(events[998]["seq"], json!(newest));
    assert_eq!(ready, newest);
}

/// docs/api.md: resync when `since` is older than "the last 1,000 events". With latest = L the
/// window is L-999..=L: since = L-1000 still replays (exactly 1,000 events), since = L-1001 resyncs.
#[tokio::test]
async fn window_is_the_last_1000_events() {
    let (api, alice, bob, conv) = pair().await;
    bulk_send(&api, &alice, &conv, 1010).await;
    let (ws, latest) = Ws::connect_ready(&api, &conv, &bob).await;
    ws.close().await;
    assert!(latest >= 1010, "latest seq {latest} after 1010 messages");

    let mut ws = Ws::connect(&api, &conv, &bob, Some(latest - 1000)).await;
    let (events, resync, ready) = ws.read_until_ready().await;
    assert!(resync.is_none(), "since = latest - 1000 needs exactly the last 1,000 events");
    assert_eq!(events.len(), 1000);
    assert_eq!(ready, latest);

    let mut ws = Ws::connect(&api, &conv, &bob, Some(latest - 1001)).await;
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(
        f["type"],
        json!("resync"),
        "since = latest - 1001 = {} needs event {} which is older than the last 1,000 events (latest {latest}); got {}",
        latest - 1001,
        latest - 1000,
        if f["type"] == json!("event") { format!("a replay starting with seq {}", f["seq"]) } else { f.to_string() }
    );
    assert_eq!(f["seq"], json!(latest));
}
