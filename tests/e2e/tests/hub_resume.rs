//! The event hub (`GET /connect`, docs/events.md) when connections are lost: resume after 20
//! missed events, sockets that drop without a close frame (presence), a second socket of the same
//! session (4009), sessions that were never issued or are malformed, and a `since` older than the
//! user's kept log.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use switchboard_e2e::blackhole::Blackhole;
use switchboard_e2e::*;

mod hub_common;

use hub_common::{api, conv_ctx, expect_hub_event, presence_ctx, subscribe};

/// How long a socket that vanished may stay on the roster: docs/events.md says the runtime's
/// notice of the broken connection, "at the latest 45–60 s after its last ping"; 15 s of slack.
const VANISH_DEADLINE: Duration = Duration::from_secs(75);

struct Hub {
    ws: Ws,
    hello: Value,
    ready: i64,
}

impl Hub {
    fn session(&self) -> String {
        self.hello["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("hello without sessionId: {}", self.hello))
            .to_string()
    }
}

/// Opens `/connect` (bearer) with optional `session` and `since`; reads `hello`, the replayed
/// events and `ready`. Returns the hub, the replayed events and the resync frame, if any.
async fn open(
    api: &Api,
    who: &Who,
    session: Option<&str>,
    since: Option<i64>,
    label: &str,
) -> (Hub, Vec<Value>, Option<Value>) {
    let (mut ws, _) = Ws::open_hub(api, WsAuth::Bearer(&who.token), session, since, true, label)
        .await
        .unwrap_or_else(|r| panic!("{label}: hub refused: {} {}", r.status, r.text));
    let hello = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(hello["type"], json!("hello"), "{label}: first hub frame: {hello}");
    let (events, resync, ready) = ws.read_until_ready().await;
    (Hub { ws, hello, ready }, events, resync)
}

/// A fresh hub connection (no session, no since): nothing replayed.
async fn hub(api: &Api, who: &Who) -> Hub {
    let (h, events, resync) = open(api, who, None, None, &format!("{}-hub", who.id)).await;
    assert!(events.is_empty() && resync.is_none(), "a fresh hub connection replays nothing: {events:?} {resync:?}");
    h
}

/// The next frame must be an event of `context` named `name`, with an integer seq.
async fn expect_logged_event(ws: &mut Ws, context: &str, name: &str) -> Value {
    let f = expect_hub_event(ws, context, name).await;
    assert!(f["seq"].is_i64(), "{}: event without integer seq: {f}", ws.label);
    f
}

/// Waits up to `deadline` for the event `name` on `context`, sending `ping` every 10 s meanwhile
/// (as a live client does, so that the hub does not take this socket for a stale one) and
/// skipping the `pong`s. Any other frame fails the test. Returns the event and when it came.
async fn await_event_pinging(ws: &mut Ws, context: &str, name: &str, deadline: Duration) -> (Value, Duration) {
    let start = Instant::now();
    let mut next_ping = start + Duration::from_secs(10);
    loop {
        let now = Instant::now();
        if now >= start + deadline {
            panic!("{}: no {name} on {context} within {deadline:?}", ws.label);
        }
        if now >= next_ping {
            ws.send_text("ping").await;
            next_ping = now + Duration::from_secs(10);
        }
        let wait = next_ping.min(start + deadline).saturating_duration_since(Instant::now());
        match ws.next_frame(wait).await {
            None => continue,
            Some(Frame::Text(t)) if t == "pong" => continue,
            Some(Frame::Text(t)) => {
                let f: Value = serde_json::from_str(&t).unwrap_or_else(|_| panic!("{}: non-JSON frame {t}", ws.label));
                assert_eq!(
                    (f["type"].as_str(), f["context"].as_str(), f["event"].as_str()),
                    (Some("event"), Some(context), Some(name)),
                    "{}: expected {name} on {context}, got {f}",
                    ws.label
                );
                return (f, start.elapsed());
            }
            Some(other) => panic!("{}: waiting for {name}, got {other:?}", ws.label),
        }
    }
}

async fn room(api: &Api) -> (Who, Who, String, String) {
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let sb = uid("sb");
    let conv = api.create_conversation(&alice, &sb, Some("hub resume"), &[&bob.id]).await;
    (alice, bob, sb, conv)
}

async fn roster(api: &Api, who: &Who, conv: &str) -> Vec<String> {
    let r = api.get(&format!("/v1/conversations/{conv}/presence"), who).await;
    let b = r.expect(200);
    b["present"]
        .as_array()
        .unwrap_or_else(|| panic!("presence without a present array: {}", r.text))
        .iter()
        .map(|m| m.as_str().unwrap_or_else(|| panic!("present entry not a string: {}", r.text)).to_string())
        .collect()
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

#[derive(Clone, Copy, Debug)]
enum Loss {
    /// the TCP connection is reset, no close frame
    Reset,
    /// a normal close frame
    Close,
}

/// A client that loses its connection while exactly 20 events happen resumes with
/// `?session=&since=<last seq>`: it gets exactly those 20 events in order with increasing seqs,
/// then `ready`, then live events, with its subscriptions restored.
async fn resume_after_20_missed(loss: Loss) {
    let api = api();
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let mut h = hub(&api, &bob).await;
    assert_eq!(subscribe(&mut h.ws, std::slice::from_ref(&ctx)).await, vec![ctx.clone()]);
    let session = h.session();
    let m0 = api.send_text(&alice, &conv, "seen").await;
    let ev = expect_logged_event(&mut h.ws, &ctx, "message.created").await;
    assert_eq!(ev["payload"]["messageId"], m0["id"]);
    let seen = ev["seq"].as_i64().unwrap();
    match loss {
        Loss::Reset => h.ws.abort(),
        Loss::Close => h.ws.close().await,
    }

    let mut missed = Vec::new();
    for i in 0..20 {
        missed.push(api.send_text(&alice, &conv, &format!("missed {i}")).await);
    }

    let (mut h2, events, resync) = open(&api, &bob, Some(&session), Some(seen), "bob-hub-resume").await;
    assert!(resync.is_none(), "{loss:?}: resume within the log must not resync: {resync:?}");
    assert_eq!(h2.hello["sessionId"], json!(session), "{}", h2.hello);
    assert_eq!(h2.hello["restored"], json!(true), "{}", h2.hello);
    assert_eq!(h2.hello["contexts"], json!([ctx]), "{}", h2.hello);
    let summary: Vec<String> =
        events.iter().map(|e| format!("{} {} {}", e["seq"], e["event"], e["payload"]["messageId"])).collect();
    assert_eq!(events.len(), 20, "{loss:?}: exactly the 20 missed events, got {}: {summary:?}", events.len());
    let mut prev = seen;
    for (i, (e, m)) in events.iter().zip(&missed).enumerate() {
        assert_eq!(
            (e["type"].as_str(), e["context"].as_str(), e["event"].as_str()),
            (Some("event"), Some(ctx.as_str()), Some("message.created")),
            "#{i}: {e}"
        );
        assert_eq!(e["payload"]["messageId"], m["id"], "#{i}: the missed events in order: {summary:?}");
        assert_eq!(e["payload"]["content"], m["content"], "#{i}: {e}");
        let seq = e["seq"].as_i64().unwrap_or_else(|| panic!("#{i}: replayed event without integer seq: {e}"));
        assert!(seq > prev, "#{i}: seq must increase: {seq} after {prev} ({summary:?})");
        prev = seq;
    }
    assert!(h2.ready >= prev, "ready.seq {} is below the last replayed seq {prev}", h2.ready);
    assert_eq!(h2.hello["seq"], json!(h2.ready), "hello.seq and ready.seq: {}", h2.hello);

    // then live events on the restored subscription
    for i in 0..3 {
        let live = api.send_text(&alice, &conv, &format!("live {i}")).await;
        let ev = expect_logged_event(&mut h2.ws, &ctx, "message.created").await;
        assert_eq!(ev["payload"]["messageId"], live["id"], "live {i}: {ev}");
        let seq = ev["seq"].as_i64().unwrap();
        assert!(seq > prev.max(h2.ready), "live seq {seq} must follow the replay ({prev}) and ready ({})", h2.ready);
        prev = seq;
    }
}

#[tokio::test]
async fn resume_after_20_missed_events_connection_reset() {
    resume_after_20_missed(Loss::Reset).await;
}

#[tokio::test]
async fn resume_after_20_missed_events_closed() {
    resume_after_20_missed(Loss::Close).await;
}

/// Bob watches the conversation; alice's socket, subscribed to its presence context, goes away as
/// `vanish` makes it. Bob must get `presence.left` and the roster must drop alice within
/// `VANISH_DEADLINE`.
async fn dropped_socket_leaves_roster(via_blackhole: bool) {
    let api = api();
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let pctx = presence_ctx(&ctx);
    let mut watcher = hub(&api, &bob).await;
    subscribe(&mut watcher.ws, std::slice::from_ref(&ctx)).await;
    assert_eq!(roster(&api, &bob, &conv).await, Vec::<String>::new());

    let bh = if via_blackhole { Some(Blackhole::start(&format!("127.0.0.1:{}", shared().port)).await) } else { None };
    let alice_api = bh.as_ref().map(|b| b.api(&api)).unwrap_or_else(|| api.clone());
    let mut tab = hub(&alice_api, &alice).await;
    assert_eq!(subscribe(&mut tab.ws, std::slice::from_ref(&pctx)).await, vec![pctx.clone()]);
    let ev = expect_logged_event(&mut watcher.ws, &ctx, "presence.joined").await;
    assert_eq!(ev["payload"]["memberId"], json!(alice.id));
    assert_eq!(roster(&api, &bob, &conv).await, vec![alice.id.clone()]);

    let dropped = Instant::now();
    let mut held_tab = None;
    match &bh {
        Some(b) => {
            b.vanish();
            // the client end stays open too (dropping it would not reach the server either)
            held_tab = Some(tab);
        }
        None => tab.ws.abort(),
    }
    let (ev, after) = await_event_pinging(&mut watcher.ws, &ctx, "presence.left", VANISH_DEADLINE).await;
    assert_eq!(ev["payload"]["memberId"], json!(alice.id), "{ev}");
    eprintln!(
        "presence.left {:.1} s after the {} client dropped",
        after.as_secs_f64(),
        if via_blackhole { "vanished" } else { "reset" }
    );
    let left = VANISH_DEADLINE.saturating_sub(dropped.elapsed()).max(Duration::from_secs(5));
    poll_until("alice is off the presence roster", left, Duration::from_millis(250), || {
        let api = api.clone();
        let bob = bob.clone();
        let conv = conv.clone();
        let me = alice.id.clone();
        async move { (!roster(&api, &bob, &conv).await.contains(&me)).then_some(()) }
    })
    .await;
    // the watcher itself is still connected
    watcher.ws.send_text("ping").await;
    assert_eq!(watcher.ws.next_frame(FRAME_TIMEOUT).await, Some(Frame::Text("pong".into())));
    drop(held_tab);
    drop(bh);
}

/// A socket whose TCP connection is reset (no close frame) leaves the roster.
#[tokio::test]
async fn reset_socket_leaves_presence() {
    dropped_socket_leaves_roster(false).await;
}

/// A client that vanishes without any trace on the wire (no close frame, FIN or RST: the
/// connection stays open and silent) leaves the roster once it has stopped pinging.
#[tokio::test]
async fn vanished_socket_leaves_presence() {
    dropped_socket_leaves_roster(true).await;
}

/// Reconnecting with the session of a socket that is still open closes the old socket with 4009;
/// the new socket takes over the session and keeps receiving live events.
#[tokio::test]
async fn same_session_reconnect_replaces_old_socket() {
    let api = api();
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let mut old = hub(&api, &bob).await;
    subscribe(&mut old.ws, std::slice::from_ref(&ctx)).await;
    let session = old.session();
    api.send_text(&alice, &conv, "before").await;
    let seen = expect_logged_event(&mut old.ws, &ctx, "message.created").await["seq"].as_i64().unwrap();

    let (mut new, events, resync) = open(&api, &bob, Some(&session), Some(seen), "bob-hub-new").await;
    assert!(events.is_empty() && resync.is_none(), "nothing was missed: {events:?} {resync:?}");
    assert_eq!(new.hello["sessionId"], json!(session), "{}", new.hello);
    assert_eq!(new.hello["restored"], json!(true), "{}", new.hello);
    assert_eq!(new.hello["contexts"], json!([ctx]), "{}", new.hello);

    let (code, before_close) = old.ws.expect_close(FRAME_TIMEOUT).await;
    assert_eq!(code, 4009, "the old socket of the session is closed with 4009 (events before: {before_close:?})");
    assert!(before_close.is_empty(), "events on the replaced socket: {before_close:?}");
    // finish the close handshake, as a client does
    old.ws.close().await;

    // the new socket has the session, and stays live after the old one is gone
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let m = api.send_text(&alice, &conv, &format!("after replace {i}")).await;
        let ev = match new.ws.next_frame(FRAME_TIMEOUT).await {
            Some(Frame::Text(t)) => serde_json::from_str::<Value>(&t).unwrap_or_else(|_| panic!("non-JSON frame {t}")),
            other => panic!(
                "live message #{i} ({}) sent after the replaced socket closed did not reach the new socket of session {session} within {FRAME_TIMEOUT:?}: got {other:?}",
                m["id"]
            ),
        };
        assert_eq!(
            (ev["type"].as_str(), ev["context"].as_str(), ev["event"].as_str()),
            (Some("event"), Some(ctx.as_str()), Some("message.created")),
            "{ev}"
        );
        assert_eq!(ev["payload"]["messageId"], m["id"], "{ev}");
        assert!(ev["seq"].as_i64().unwrap() > new.ready, "{ev}");
    }
}

/// The old socket of the session is still open from the server's side because its client
/// vanished (no close frame, FIN or RST reach the server). The client reconnects with its session:
/// the new socket takes the session over and gets live events. That it keeps it after the hub gives
/// up on the old, silent socket (45–60 s after its last ping) is a rule with time, tested natively
/// on a virtual clock (`switchboard-member`:
/// `a_vanished_replaced_socket_never_costs_the_new_one_its_session`) instead of by waiting here.
#[tokio::test]
async fn same_session_reconnect_after_vanish_stays_live() {
    let api = api();
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let bh = Blackhole::start(&format!("127.0.0.1:{}", shared().port)).await;
    let mut old = hub(&bh.api(&api), &bob).await;
    subscribe(&mut old.ws, std::slice::from_ref(&ctx)).await;
    let session = old.session();
    api.send_text(&alice, &conv, "before").await;
    let mut last = expect_logged_event(&mut old.ws, &ctx, "message.created").await["seq"].as_i64().unwrap();
    bh.vanish();

    let (mut new, events, resync) = open(&api, &bob, Some(&session), Some(last), "bob-hub-after-vanish").await;
    assert!(events.is_empty() && resync.is_none(), "nothing was missed: {events:?} {resync:?}");
    assert_eq!(new.hello["sessionId"], json!(session), "{}", new.hello);
    assert_eq!(new.hello["contexts"], json!([ctx]), "{}", new.hello);
    for round in 0..3 {
        let m = api.send_text(&alice, &conv, &format!("round {round}")).await;
        let f = loop {
            match new.ws.next_frame(FRAME_TIMEOUT).await {
                Some(Frame::Text(t)) if t == "pong" => continue,
                Some(Frame::Text(t)) => break serde_json::from_str::<Value>(&t).unwrap_or_else(|_| panic!("non-JSON frame {t}")),
                other => panic!(
                    "round {round} after reconnecting: message {} did not reach the new socket of session {session}: got {other:?}",
                    m["id"]
                ),
            }
        };
        assert_eq!(
            (f["context"].as_str(), f["event"].as_str()),
            (Some(ctx.as_str()), Some("message.created")),
            "round {round}: {f}"
        );
        assert_eq!(f["payload"]["messageId"], m["id"], "round {round}: {f}");
        let seq = f["seq"].as_i64().unwrap();
        assert!(seq > last, "round {round}: seq {seq} after {last}");
        last = seq;
    }
    drop(old);
    drop(bh);
}

/// Resuming with a `session` that was never issued answers `resync` (after `hello`, before
/// `ready`); a malformed `session` is refused with 400 before the upgrade.
#[tokio::test]
async fn unknown_session_resyncs_and_malformed_session_is_refused() {
    let api = api();
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let mut h = hub(&api, &bob).await;
    subscribe(&mut h.ws, std::slice::from_ref(&ctx)).await;
    let real = h.session();
    api.send_text(&alice, &conv, "seen").await;
    let seen = expect_logged_event(&mut h.ws, &ctx, "message.created").await["seq"].as_i64().unwrap();
    h.ws.close().await;
    api.send_text(&alice, &conv, "missed").await;

    // 32 hex characters this server never gave out
    let unknown = format!(
        "{:032x}",
        (now_ms() as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) ^ (std::process::id() as u128)
    );
    assert_eq!(unknown.len(), 32);
    assert_ne!(unknown, real);
    let (mut ws, _) =
        Ws::open_hub(&api, WsAuth::Bearer(&bob.token), Some(&unknown), Some(seen), false, "bob-hub-unknown")
            .await
            .unwrap_or_else(|r| panic!("a well-formed unknown session is not refused: {} {}", r.status, r.text));
    let hello = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(hello["type"], json!("hello"), "first frame: {hello}");
    assert_eq!(hello["restored"], json!(false), "an unknown session is not restored: {hello}");
    assert_eq!(hello["contexts"], json!([]), "{hello}");
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(f["type"], json!("resync"), "second frame for an unknown session with since={seen}: {f}");
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(f["type"], json!("ready"), "after resync: {f}");
    assert_eq!(f["seq"], hello["seq"], "{f} {hello}");

    // malformed session ids
    let bad = [
        "".to_string(),
        "abc".to_string(),
        "0".repeat(31),
        "0".repeat(33),
        format!("{}g", "0".repeat(31)),
        format!("{}-", &real[..31]),
        format!("{real} "),
    ];
    for s in &bad {
        let path = format!("/connect?session={}", urlencode(s));
        for since in [None, Some(seen.to_string())] {
            let r = Ws::refused_path(&api, &path, WsAuth::Bearer(&bob.token), since.as_deref()).await;
            assert_eq!(
                (r.status, r.body["error"]["code"].as_str()),
                (400, Some("invalid_request")),
                "session={s:?} since={since:?}: {} {}",
                r.status,
                r.text
            );
        }
    }
}

/// `since` older than the user's kept hub log (more than 1,000 events after it) answers `resync`;
/// a `since` inside the log still replays.
#[tokio::test]
async fn since_older_than_hub_log_resyncs() {
    // 1,100 sends from one member: on a server whose send rate limit is lifted (docs/api.md "Limits").
    static SERVER: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    let api = Api::new(SERVER.get_or_init(|| Server::start(&[("LIMIT_SENDS", "1000000/1s,1000000")])));
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let mut h = hub(&api, &bob).await;
    subscribe(&mut h.ws, std::slice::from_ref(&ctx)).await;
    let session = h.session();
    api.send_text(&alice, &conv, "seen").await;
    let seen = expect_logged_event(&mut h.ws, &ctx, "message.created").await["seq"].as_i64().unwrap();
    h.ws.close().await;

    let start = Instant::now();
    bulk_send(&api, &alice, &conv, 1100).await;
    eprintln!("1,100 messages sent in {:.1} s", start.elapsed().as_secs_f64());

    let (mut h2, events, resync) = open(&api, &bob, Some(&session), Some(seen), "bob-hub-old-since").await;
    let latest = h2.ready;
    assert!(latest >= seen + 1100, "bob's seq {latest} after 1,100 events past {seen}");
    assert!(
        events.is_empty(),
        "since={seen} with latest={latest} must not replay: {} events, first {}",
        events.len(),
        events[0]
    );
    let resync =
        resync.unwrap_or_else(|| panic!("no resync for since={seen}, more than 1,000 events old (latest {latest})"));
    assert_eq!(resync["type"], json!("resync"));
    assert_eq!(h2.hello["restored"], json!(true), "{}", h2.hello);
    assert_eq!(h2.hello["contexts"], json!([ctx]), "{}", h2.hello);
    // live events follow on the restored subscription
    let m = api.send_text(&alice, &conv, "after resync").await;
    let ev = expect_logged_event(&mut h2.ws, &ctx, "message.created").await;
    assert_eq!(ev["payload"]["messageId"], m["id"]);
    let newest = ev["seq"].as_i64().unwrap();
    assert!(newest > latest, "{ev}");
    h2.ws.close().await;

    // control: a since inside the kept log replays instead
    let since = newest - 10;
    let (_h3, events, resync) = open(&api, &bob, Some(&session), Some(since), "bob-hub-recent-since").await;
    assert!(resync.is_none(), "since={since} is inside the log (newest {newest}): {resync:?}");
    assert!(!events.is_empty(), "since={since}: the recent messages are replayed");
    assert_eq!(events.last().unwrap()["payload"]["messageId"], m["id"]);
    assert!(events.iter().all(|e| e["seq"].as_i64().unwrap() > since && e["context"] == json!(ctx)), "{events:?}");
}
