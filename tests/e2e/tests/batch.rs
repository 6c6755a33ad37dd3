//! Batched frames (`?batch=1`, issue 19): an opted-in socket may get several frames in one text
//! frame, one per line; it sees every event exactly once and in order, its acks after their events,
//! and a socket that did not opt in sees exactly one frame per event as before.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};
use switchboard_e2e::*;

fn api() -> Api {
    Api::new(shared())
}

/// Opens a conversation socket with `?batch=1` and reads up to `ready` (which, alone, is one line).
async fn connect_batched(api: &Api, conv: &str, who: &Who) -> (Ws, i64) {
    let path = format!("/v1/conversations/{conv}/ws?batch=1");
    let mut ws = Ws::open_path(api, &path, WsAuth::Bearer(&who.token), None, &format!("{}-batched", who.id))
        .await
        .unwrap_or_else(|r| panic!("batched upgrade refused: {} {}", r.status, r.text));
    let (events, resync, seq) = ws.read_until_ready().await;
    assert!(events.is_empty() && resync.is_none(), "no replay without since");
    (ws, seq)
}

/// The next text frame's lines, each parsed as JSON.
async fn next_lines(ws: &mut Ws) -> Vec<Value> {
    match ws.next_frame(FRAME_TIMEOUT).await {
        Some(Frame::Text(t)) => t
            .split('\n')
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: line is not JSON ({e}): {l}", ws.label)))
            .collect(),
        other => panic!("{}: expected a text frame, got {other:?}", ws.label),
    }
}

/// Reads text frames until `want` lines arrived; answers (lines, frames).
async fn read_lines(ws: &mut Ws, want: usize) -> (Vec<Value>, usize) {
    let mut lines = Vec::new();
    let mut frames = 0;
    while lines.len() < want {
        lines.extend(next_lines(ws).await);
        frames += 1;
    }
    assert_eq!(lines.len(), want, "{}: more lines than expected: {lines:?}", ws.label);
    (lines, frames)
}

#[tokio::test]
async fn a_burst_reaches_batched_and_unbatched_sockets_exactly_once_in_order() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let sb = uid("sb");
    let bot = api.bot_token(&sb).await;
    let conv = api.create_conversation(&alice, &sb, Some("burst"), &[&bob.id]).await;
    let (mut batched, start) = connect_batched(&api, &conv, &bob).await;
    let (mut plain, start_plain) = Ws::connect_ready(&api, &conv, &alice).await;
    assert_eq!(start, start_plain);

    // The bot posts 20 messages at once (concurrent requests: they queue behind each other in the
    // conversation's object).
    const BURST: usize = 20;
    let path = format!("/bot/v1/sandboxes/{sb}/conversations/{conv}/messages");
    let sends = (0..BURST).map(|i| {
        let (api, bot, path) = (&api, &bot, &path);
        async move {
            let r = api
                .post(path, bot, &json!({ "content": text(&format!("burst {i}")), "clientId": format!("c{i}") }))
                .await;
            r.expect(201)["message"]["id"].as_str().unwrap_or_default().to_string()
        }
    });
    let mut sent: Vec<String> = join_all(sends).await;

    let (lines, frames) = read_lines(&mut batched, BURST).await;
    let mut plain_events = Vec::new();
    for _ in 0..BURST {
        plain_events.push(plain.next_json(FRAME_TIMEOUT).await);
    }
    assert!(frames <= BURST, "the batched socket got {frames} frames for {BURST} events");
    println!("batched socket: {BURST} events in {frames} text frames");
    // Both saw the same events, byte for byte the same lines, seqs consecutive from the start.
    assert_eq!(lines, plain_events, "batched lines differ from the unbatched frames");
    for (i, ev) in lines.iter().enumerate() {
        assert_eq!(ev["type"], json!("event"));
        assert_eq!(ev["event"], json!("message.created"));
        assert_eq!(ev["seq"].as_i64(), Some(start + 1 + i as i64), "seq order: {ev}");
    }
    // Each message exactly once.
    let mut seen: Vec<String> =
        lines.iter().map(|e| e["payload"]["messageId"].as_str().unwrap_or_default().to_string()).collect();
    seen.sort();
    sent.sort();
    assert_eq!(seen, sent);
    batched.expect_no_frame(Duration::from_millis(300)).await;
    plain.expect_no_frame(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn one_commands_events_go_in_one_frame_to_a_batched_socket_only() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    // Untitled: the first message also auto-titles the conversation (two events, one command).
    let conv = api.create_conversation(&alice, &uid("sb"), None, &[&bob.id]).await;
    let (mut batched, start) = connect_batched(&api, &conv, &bob).await;
    let (mut plain, _) = Ws::connect_ready(&api, &conv, &alice).await;

    api.send_text(&alice, &conv, "hello there").await;

    let lines = next_lines(&mut batched).await;
    let names: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap_or_default()).collect();
    assert_eq!(names, vec!["message.created", "conversation.renamed"], "one frame, two lines: {lines:?}");
    assert_eq!(lines[0]["seq"].as_i64(), Some(start + 1));
    assert_eq!(lines[1]["seq"].as_i64(), Some(start + 2));
    // The unbatched socket gets them as two frames, as before.
    assert_eq!(plain.next_json(FRAME_TIMEOUT).await, lines[0]);
    assert_eq!(plain.next_json(FRAME_TIMEOUT).await, lines[1]);
    batched.expect_no_frame(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn socket_sends_on_a_batched_socket_get_each_event_before_its_ack() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("acks"), &[&bob.id]).await;
    let (mut ws, start) = connect_batched(&api, &conv, &alice).await;
    let (mut plain, _) = Ws::connect_ready(&api, &conv, &bob).await;

    // Many sends written at once, without waiting for the answers.
    const N: usize = 16;
    for i in 0..N {
        ws.send_json(&json!({
            "type": "message.create", "requestId": format!("r{i}"), "clientId": format!("k{i}"),
            "content": text(&format!("m{i}")),
        }))
        .await;
    }
    let (lines, frames) = read_lines(&mut ws, 2 * N).await;
    println!("batched sender: {} lines in {frames} text frames", 2 * N);
    let mut next_seq = start + 1;
    let mut acked = Vec::new();
    for l in &lines {
        match l["type"].as_str() {
            Some("event") => {
                assert_eq!(l["seq"].as_i64(), Some(next_seq), "events in seq order: {l}");
                next_seq += 1;
            }
            Some("message.ack") => {
                let id = l["messageId"].as_str().unwrap_or_default();
                let event_seen = lines
                    .iter()
                    .take_while(|x| *x != l)
                    .any(|x| x["type"] == json!("event") && x["payload"]["messageId"] == json!(id));
                assert!(event_seen, "ack before its event: {l}");
                acked.push(l["requestId"].as_str().unwrap_or_default().to_string());
            }
            _ => panic!("unexpected line {l}"),
        }
    }
    assert_eq!(next_seq, start + 1 + N as i64, "every event once");
    assert_eq!(acked, (0..N).map(|i| format!("r{i}")).collect::<Vec<_>>(), "acks in order");
    for i in 0..N {
        let ev = plain.next_json(FRAME_TIMEOUT).await;
        assert_eq!(ev["seq"].as_i64(), Some(start + 1 + i as i64));
    }
}

#[tokio::test]
async fn resume_works_on_a_batched_socket_and_bad_values_are_refused() {
    let api = api();
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("resume"), &[]).await;
    let (ws, start) = connect_batched(&api, &conv, &alice).await;
    ws.close().await;
    for i in 0..3 {
        api.send_text(&alice, &conv, &format!("missed {i}")).await;
    }
    let path = format!("/v1/conversations/{conv}/ws?batch=1");
    let since = start.to_string();
    let mut ws = Ws::open_path(&api, &path, WsAuth::Bearer(&alice.token), Some(&since), "resumed")
        .await
        .unwrap_or_else(|r| panic!("resume refused: {} {}", r.status, r.text));
    let (events, resync, ready) = ws.read_until_ready().await;
    assert!(resync.is_none());
    assert_eq!(events.len(), 3);
    assert_eq!(ready, start + 3);
    let r =
        Ws::refused_path(&api, &format!("/v1/conversations/{conv}/ws?batch=yes"), WsAuth::Bearer(&alice.token), None)
            .await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("invalid_request")), "{}", r.text);
}
