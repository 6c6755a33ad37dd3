//! Batched frames (`?batch=1`, issue 19): an opted-in socket may get several frames in one text
//! frame, one per line; it sees every event exactly once and in order, its acks after their events,
//! and a socket that did not opt in sees exactly one frame per event as before. The conversation
//! socket first, then the hub (`/connect?batch=1`).

use std::collections::VecDeque;
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

/// The bot posts `n` messages at once (concurrent requests); answers their ids.
async fn bot_burst(api: &Api, bot: &Who, sb: &str, conv: &str, n: usize) -> Vec<String> {
    let path = format!("/bot/v1/sandboxes/{sb}/conversations/{conv}/messages");
    let sends = (0..n).map(|i| {
        let path = &path;
        async move {
            let r = api
                .post(path, bot, &json!({ "content": text(&format!("burst {i}")), "clientId": format!("c{i}") }))
                .await;
            r.expect(201)["message"]["id"].as_str().unwrap_or_default().to_string()
        }
    });
    join_all(sends).await
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
    let mut sent = bot_burst(&api, &bot, &sb, &conv, BURST).await;

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

/// Reads a socket's opening frame by frame up to `ready`: (the lines before it, `ready`'s seq, the
/// text frames it took).
async fn opening_lines(ws: &mut Ws) -> (Vec<Value>, i64, usize) {
    let mut lines = Vec::new();
    let mut frames = 0;
    loop {
        frames += 1;
        for line in next_lines(ws).await {
            if line["type"] == json!("ready") {
                let seq = line["seq"].as_i64().unwrap_or_else(|| panic!("ready without seq: {line}"));
                return (lines, seq, frames);
            }
            lines.push(line);
        }
    }
}

#[tokio::test]
async fn resume_works_on_a_batched_socket_and_its_opening_comes_joined() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let carol = api.user("carol").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("resume"), &[&bob.id, &carol.id]).await;
    let (ws, start) = connect_batched(&api, &conv, &alice).await;
    ws.close().await;
    // 66 missed events (22 per member, inside each one's send burst): more than one batch holds.
    let mut sent = Vec::new();
    for i in 0..22 {
        for who in [&alice, &bob, &carol] {
            sent.push(
                api.send_text(who, &conv, &format!("missed {i}")).await["id"].as_str().unwrap_or_default().to_string(),
            );
        }
    }
    let path = format!("/v1/conversations/{conv}/ws?batch=1");
    let since = start.to_string();
    let mut ws = Ws::open_path(&api, &path, WsAuth::Bearer(&alice.token), Some(&since), "resumed")
        .await
        .unwrap_or_else(|r| panic!("resume refused: {} {}", r.status, r.text));
    let (events, ready, frames) = opening_lines(&mut ws).await;
    let ids: Vec<&str> = events.iter().map(|e| e["payload"]["messageId"].as_str().unwrap_or_default()).collect();
    assert_eq!(ids, sent, "every missed message once, in order");
    assert_eq!(seqs(&events), ((start + 1)..=(start + 66)).collect::<Vec<_>>());
    assert_eq!(ready, start + 66);
    // 64 lines per text frame at most: the 66 events and `ready` in two frames, not 67.
    assert_eq!(frames, 2, "the opening is joined into as few frames as the limits allow");
    // A socket without `batch` resuming from the same point still gets one frame per event.
    let mut plain = Ws::open(&api, &conv, WsAuth::Bearer(&alice.token), Some(&since), "resumed-plain")
        .await
        .unwrap_or_else(|r| panic!("plain resume refused: {} {}", r.status, r.text));
    let (plain_events, resync, plain_ready) = plain.read_until_ready().await;
    assert!(resync.is_none());
    assert_eq!((plain_events.len(), plain_ready), (66, start + 66));
    let r =
        Ws::refused_path(&api, &format!("/v1/conversations/{conv}/ws?batch=yes"), WsAuth::Bearer(&alice.token), None)
            .await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("invalid_request")), "{}", r.text);
}

// ---- The hub (`/connect?batch=1`) ----

/// A hub socket read line by line, counting the text frames the lines came in.
struct Lines {
    ws: Ws,
    buf: VecDeque<Value>,
    frames: usize,
}

impl Lines {
    /// The next line (reading a text frame when none is left), parsed.
    async fn next(&mut self) -> Value {
        if self.buf.is_empty() {
            self.buf.extend(next_lines(&mut self.ws).await);
            self.frames += 1;
        }
        self.buf.pop_front().unwrap_or_else(|| panic!("{}: empty text frame", self.ws.label))
    }

    /// Lines up to `ready` (hello first); answers (hello, the events before ready, ready's seq).
    /// `ready` ends its text frame.
    async fn opening(&mut self) -> (Value, Vec<Value>, i64) {
        let hello = self.next().await;
        assert_eq!(hello["type"], json!("hello"), "{}: first line: {hello}", self.ws.label);
        let mut events = Vec::new();
        loop {
            let l = self.next().await;
            match l["type"].as_str() {
                Some("event") => events.push(l),
                Some("ready") => {
                    assert!(self.buf.is_empty(), "{}: lines after ready in its frame: {:?}", self.ws.label, self.buf);
                    return (hello, events, l["seq"].as_i64().unwrap_or_else(|| panic!("ready: {l}")));
                }
                _ => panic!("{}: unexpected line before ready: {l}", self.ws.label),
            }
        }
    }

    async fn subscribe(&mut self, ctx: &str) {
        self.ws.send_json(&json!({ "type": "context.subscribe", "contexts": [ctx] })).await;
        let l = self.next().await;
        assert_eq!((l["type"].as_str(), &l["contexts"]), (Some("context.subscribed"), &json!([ctx])), "{l}");
    }
}

/// Opens `/connect?batch=1[&session=]` with a bearer token and `since`.
async fn hub_batched(api: &Api, who: &Who, session: Option<&str>, since: Option<i64>, label: &str) -> Lines {
    let path = match session {
        Some(s) => format!("/connect?batch=1&session={s}"),
        None => "/connect?batch=1".to_string(),
    };
    let since = since.map(|s| s.to_string());
    let ws = Ws::open_path(api, &path, WsAuth::Bearer(&who.token), since.as_deref(), label)
        .await
        .unwrap_or_else(|r| panic!("{label}: batched hub refused: {} {}", r.status, r.text));
    Lines { ws, buf: VecDeque::new(), frames: 0 }
}

/// A hub socket without `batch`: every text frame must be exactly one JSON frame.
async fn hub_plain(api: &Api, who: &Who, ctx: &str) -> Ws {
    let (mut ws, _) = Ws::open_hub(api, WsAuth::Bearer(&who.token), None, None, true, &format!("{}-plain-hub", who.id))
        .await
        .unwrap_or_else(|r| panic!("hub refused: {} {}", r.status, r.text));
    assert_eq!(ws.next_json(FRAME_TIMEOUT).await["type"], json!("hello"));
    ws.read_until_ready().await;
    ws.send_json(&json!({ "type": "context.subscribe", "contexts": [ctx] })).await;
    assert_eq!(ws.next_json(FRAME_TIMEOUT).await["type"], json!("context.subscribed"));
    ws
}

/// The next `n` events of a plain hub socket, one text frame each (`next_json` refuses a frame
/// that holds two lines: it is not one JSON value).
async fn plain_events(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..n {
        let f = ws.next_json(FRAME_TIMEOUT).await;
        assert_eq!(f["type"], json!("event"), "{}: {f}", ws.label);
        out.push(f);
    }
    out
}

/// The next `n` lines of a batched hub socket, each an event; answers them and the text frames
/// they came in.
async fn batched_events(h: &mut Lines, n: usize) -> (Vec<Value>, usize) {
    let start = h.frames;
    let mut out = Vec::new();
    for _ in 0..n {
        let l = h.next().await;
        assert_eq!(l["type"], json!("event"), "{}: {l}", h.ws.label);
        out.push(l);
    }
    assert!(h.buf.is_empty(), "{}: more lines than events: {:?}", h.ws.label, h.buf);
    (out, h.frames - start)
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap_or_else(|| panic!("event without seq: {e}"))).collect()
}

#[tokio::test]
async fn a_bots_burst_reaches_a_batched_hub_in_fewer_frames_exactly_once_in_order() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let bot = api.bot_token(&sb).await;
    let conv = api.create_conversation(&alice, &sb, Some("hub burst"), &[]).await;
    let ctx = format!("/kiloclaw/{sb}/{conv}");
    let mut batched = hub_batched(&api, &alice, None, None, "alice-batched-hub").await;
    let (hello, replayed, _) = batched.opening().await;
    assert!(replayed.is_empty());
    assert_eq!(batched.frames, 1, "hello and ready in one text frame: {hello}");
    batched.subscribe(&ctx).await;
    let mut plain = hub_plain(&api, &alice, &ctx).await;
    // One event first: once both hubs have it, the conversation knows the hub watches it.
    api.send_text(&alice, &conv, "warm up").await;
    let warm = batched_events(&mut batched, 1).await.0;
    assert_eq!(plain_events(&mut plain, 1).await, warm);

    // The bot posts 20 messages at once: they queue behind each other in the conversation's
    // object, and what queues up while the pump's call to the hub is on the way goes in one call.
    const BURST: usize = 20;
    let mut sent = bot_burst(&api, &bot, &sb, &conv, BURST).await;

    let (lines, frames) = batched_events(&mut batched, BURST).await;
    let plain_lines = plain_events(&mut plain, BURST).await;
    println!("batched hub socket: {BURST} events in {frames} text frames");
    assert!(frames < BURST, "a burst must come in fewer text frames than events: {frames}");
    // Both sockets saw the same frames, byte for byte the same lines, in the user's seq order.
    assert_eq!(lines, plain_lines, "batched lines differ from the unbatched frames");
    let s = seqs(&lines);
    assert!(s.windows(2).all(|w| w[0] < w[1]), "seq order: {s:?}");
    assert!(s[0] > seqs(&warm)[0]);
    let mut seen: Vec<String> =
        lines.iter().map(|e| e["payload"]["messageId"].as_str().unwrap_or_default().to_string()).collect();
    assert!(lines.iter().all(|e| e["event"] == json!("message.created") && e["context"] == json!(ctx)));
    seen.sort();
    sent.sort();
    assert_eq!(seen, sent, "each message exactly once");
    batched.ws.expect_no_frame(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn one_commands_events_reach_a_batched_hub_in_one_frame_and_a_plain_hub_in_two() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    // Untitled: the first message also auto-titles the conversation (two events, one command,
    // so one call to the hub).
    let conv = api.create_conversation(&alice, &sb, None, &[]).await;
    let ctx = format!("/kiloclaw/{sb}/{conv}");
    let mut batched = hub_batched(&api, &alice, None, None, "alice-batched-hub").await;
    batched.opening().await;
    batched.subscribe(&ctx).await;
    let mut plain = hub_plain(&api, &alice, &ctx).await;

    api.send_text(&alice, &conv, "hello there").await;

    let (lines, frames) = batched_events(&mut batched, 2).await;
    assert_eq!(frames, 1, "one text frame, two lines: {lines:?}");
    let names: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap_or_default()).collect();
    assert_eq!(names, vec!["message.created", "conversation.renamed"]);
    assert_eq!(plain_events(&mut plain, 2).await, lines, "the plain hub: the same two frames, one each");
    let s = seqs(&lines);
    assert_eq!(s[1], s[0] + 1);
}

#[tokio::test]
async fn a_batched_hub_resumes_per_event_and_refuses_a_bad_batch_value() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let conv = api.create_conversation(&alice, &sb, Some("hub resume"), &[]).await;
    let ctx = format!("/kiloclaw/{sb}/{conv}");
    let mut h = hub_batched(&api, &alice, None, None, "alice-batched-hub").await;
    let (hello, _, _) = h.opening().await;
    let session = hello["sessionId"].as_str().unwrap_or_else(|| panic!("{hello}")).to_string();
    h.subscribe(&ctx).await;
    let warm = api.send_text(&alice, &conv, "before").await;
    let first = batched_events(&mut h, 1).await.0;
    assert_eq!(first[0]["payload"]["messageId"], warm["id"]);
    let since = seqs(&first)[0];
    h.ws.close().await;

    // Missed while closed (the session stays watched for the resume window).
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(api.send_text(&alice, &conv, &format!("missed {i}")).await["id"].clone());
    }
    let ids_of = |events: &[Value]| events.iter().map(|e| e["payload"]["messageId"].clone()).collect::<Vec<_>>();
    // The log takes them asynchronously (the conversation's pump): resume until all three are there.
    let deadline = std::time::Instant::now() + FRAME_TIMEOUT;
    let (replayed, ready, frames) = loop {
        let mut h = hub_batched(&api, &alice, Some(&session), Some(since), "alice-resumed").await;
        let (hello, replayed, ready) = h.opening().await;
        assert_eq!(hello["restored"], json!(true), "{hello}");
        if replayed.len() == 3 || std::time::Instant::now() > deadline {
            break (replayed, ready, h.frames);
        }
        h.ws.close().await;
    };
    assert_eq!(ids_of(&replayed), ids, "the missed events, in order, once each");
    assert_eq!(frames, 1, "hello, the replay and ready in one text frame");
    let s = seqs(&replayed);
    assert!(s[0] > since && s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    assert!(ready >= s[2], "ready {ready} after the replay {s:?}");

    // Per event: resuming from the first missed one replays only the two after it.
    let mut again = hub_batched(&api, &alice, Some(&session), Some(s[0]), "alice-resumed-again").await;
    let (_, replayed, _) = again.opening().await;
    assert_eq!(ids_of(&replayed), ids[1..].to_vec());

    let r = Ws::refused_path(&api, "/connect?batch=yes", WsAuth::Bearer(&alice.token), None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("invalid_request")), "{}", r.text);
}
