//! The per-user event hub (`GET /connect`, `kilo.events.v1`, docs/events.md): contexts, per-user
//! seq, typing, presence, read receipts, ack window, resume. The instance context's events:
//! `hub_instance.rs`.

mod hub_common;

use futures_util::future::join_all;
use hub_common::*;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard_e2e::*;

#[tokio::test]
async fn connect_hello_ready_and_subprotocol() {
    let api = api();
    let alice = api.user("alice").await;
    let (ws, proto) = Ws::open_hub(&api, WsAuth::Bearer(&alice.token), None, None, true, "alice-hub")
        .await
        .unwrap_or_else(|r| panic!("hub refused: {} {}", r.status, r.text));
    assert_eq!(proto.as_deref(), Some("kilo.events.v1"), "the subprotocol is echoed when asked for");
    let (h, events, resync) = read_hello_and_ready(ws).await;
    assert!(events.is_empty() && resync.is_none());
    let sid = h.hello["sessionId"].as_str().unwrap_or_else(|| panic!("hello without sessionId: {}", h.hello));
    assert!(!sid.is_empty());
    assert_eq!(h.hello["member"], json!(alice.id));
    assert_eq!(h.hello["contexts"], json!([]));
    assert_eq!(h.hello["restored"], json!(false));
    assert!(h.hello["seq"].is_i64(), "{}", h.hello);

    // ticket auth
    let ticket = api.ticket(&alice).await;
    let (ws, _) = Ws::open_hub(&api, WsAuth::Ticket(&ticket), None, None, false, "alice-hub-ticket")
        .await
        .unwrap_or_else(|r| panic!("hub refused a ticket: {} {}", r.status, r.text));
    let (h2, _, _) = read_hello_and_ready(ws).await;
    assert_eq!(h2.hello["member"], json!(alice.id));
    assert_ne!(h2.hello["sessionId"], h.hello["sessionId"], "a new connection without session gets a new session");
    // the ticket is used up
    let r = Ws::refused_path(&api, "/connect", WsAuth::Ticket(&ticket), None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (401, Some("unauthorized")), "{}", r.text);
    // no auth, bad since, not an upgrade
    let r = Ws::refused_path(&api, "/connect", WsAuth::None, None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (401, Some("unauthorized")), "{}", r.text);
    let r = Ws::refused_path(&api, "/connect", WsAuth::Bearer(&alice.token), Some("soon")).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some("invalid_request")), "{}", r.text);
    api.get("/connect", &alice).await.expect_error(426, "upgrade_required");
}

#[tokio::test]
async fn hub_frames_and_errors() {
    let api = api();
    let alice = api.user("alice").await;
    let mut h = hub(&api, &alice).await;
    assert!(barrier(&mut h.ws).await.is_empty(), "ping is answered pong");
    for (what, frame, code) in [
        ("malformed JSON", "{oops".to_string(), "bad_frame"),
        ("unknown type", json!({ "type": "dance" }).to_string(), "unknown_frame_type"),
        (
            "contexts not an array",
            json!({ "type": "context.subscribe", "contexts": "/presence/app" }).to_string(),
            "invalid_request",
        ),
        (
            "context too long",
            json!({ "type": "context.subscribe", "contexts": [format!("/{}", "x".repeat(256))] }).to_string(),
            "invalid_request",
        ),
        ("ack without seq", json!({ "type": "ack" }).to_string(), "invalid_request"),
    ] {
        h.ws.send_text(&frame).await;
        let f = h.ws.next_json(FRAME_TIMEOUT).await;
        assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some(code)), "{what}: {f}");
    }
    h.ws.send_binary(vec![0, 1]).await;
    let f = h.ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("binary_not_supported")), "{f}");
    // anyone may subscribe to platform presence
    let got = subscribe(&mut h.ws, &["/presence/app".to_string(), "/presence/web".to_string()]).await;
    assert_eq!(got.len(), 2, "{got:?}");
    h.ws.send_json(&json!({ "type": "context.unsubscribe", "contexts": ["/presence/web"] })).await;
    let f = h.ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(f["type"], json!("context.unsubscribed"), "{f}");
    assert_eq!(f["contexts"], json!(["/presence/web"]));
}

/// Conversation-context events reach a subscriber with a growing per-user seq; unsubscribing stops them.
#[tokio::test]
async fn conversation_context_events() {
    let api = api();
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let mut h = hub(&api, &bob).await;
    assert_eq!(subscribe(&mut h.ws, std::slice::from_ref(&ctx)).await, vec![ctx.clone()]);

    let m1 = api.send_text(&alice, &conv, "one").await;
    let m2 = api.send_text(&alice, &conv, "two").await;
    api.patch(&format!("/v1/conversations/{conv}"), &alice, &json!({ "title": "renamed" })).await.expect(200);
    let mut last = h.ready;
    for (name, mid) in [("message.created", Some(&m1)), ("message.created", Some(&m2)), ("conversation.renamed", None)]
    {
        let ev = expect_hub_event(&mut h.ws, &ctx, name).await;
        let seq = ev["seq"].as_i64().unwrap_or_else(|| panic!("hub event without seq: {ev}"));
        assert!(seq > last, "per-user seq must grow: {seq} after {last}");
        last = seq;
        if let Some(m) = mid {
            assert_eq!(ev["payload"]["messageId"], m["id"]);
            assert_eq!(ev["payload"]["senderId"], json!(alice.id));
        } else {
            assert_eq!(ev["payload"], json!({ "conversationId": conv, "title": "renamed" }));
        }
    }

    h.ws.send_json(&json!({ "type": "context.unsubscribe", "contexts": [ctx] })).await;
    let f = h.ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!((f["type"].as_str(), &f["contexts"]), (Some("context.unsubscribed"), &json!([ctx])), "{f}");
    api.send_text(&alice, &conv, "unheard").await;
    h.ws.expect_no_frame(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn contexts_a_user_may_not_see() {
    let api = api();
    let (alice, _bob, sb, conv) = room(&api).await;
    let eve = api.user("eve").await;
    let mut h = hub(&api, &eve).await;
    for ctx in [
        conv_ctx(&sb, &conv),
        presence_ctx(&instance_ctx(&sb)),
        presence_ctx(&conv_ctx(&sb, &conv)),
        conv_ctx(&sb, UNKNOWN_ULID),
    ] {
        h.ws.send_json(&json!({ "type": "context.subscribe", "contexts": [ctx] })).await;
        let frames = barrier(&mut h.ws).await;
        let err = frames
            .iter()
            .find(|f| f["type"] == json!("error"))
            .unwrap_or_else(|| panic!("no error for {ctx}: {frames:?}"));
        assert_eq!(err["code"], json!("forbidden_context"), "{err}");
        assert_eq!(err["context"], json!(ctx), "{err}");
        for f in &frames {
            assert!(
                f["type"] == json!("error") || (f["type"] == json!("context.subscribed") && f["contexts"] == json!([])),
                "unexpected frame for a forbidden context: {f}"
            );
        }
    }
    api.send_text(&alice, &conv, "private").await;
    h.ws.expect_no_frame(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn too_many_contexts() {
    // 50 conversations created at once by one user: on a server whose creation rate limit is lifted
    // (the default allows bursts of 20, docs/api.md "Limits").
    static SERVER: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    let api = Api::new(SERVER.get_or_init(|| Server::start(&[("LIMIT_CONVERSATION_CREATES", "1000/1s,1000")])));
    let alice = api.user("alice").await;
    // 50 conversations in 50 sandboxes: 4 contexts each, plus the 2 platform ones = 202
    let sbs: Vec<String> = (0..50).map(|_| uid("sb")).collect();
    let convs = join_all(sbs.iter().map(|sb| api.create_conversation(&alice, sb, Some("c"), &[]))).await;
    let mut all = vec!["/presence/app".to_string(), "/presence/web".to_string()];
    for (sb, c) in sbs.iter().zip(&convs) {
        let cc = conv_ctx(sb, c);
        all.push(instance_ctx(sb));
        all.push(presence_ctx(&instance_ctx(sb)));
        all.push(presence_ctx(&cc));
        all.push(cc);
    }
    assert_eq!(all.len(), 202);
    let mut h = hub(&api, &alice).await;
    // One frame lists at most 200: all 202 at once are refused whole, nothing subscribed.
    h.ws.send_json(&json!({ "type": "context.subscribe", "contexts": all })).await;
    let frames = barrier(&mut h.ws).await;
    assert!(frames.iter().any(|f| f["type"] == json!("error") && f["code"] == json!("invalid_request")), "{frames:?}");
    assert!(frames.iter().all(|f| f["type"] != json!("context.subscribed")), "{frames:?}");
    // 150, then the other 52: past the socket's cap of 200, the ones that fit are kept.
    h.ws.send_json(&json!({ "type": "context.subscribe", "contexts": all[..150] })).await;
    let frames = barrier(&mut h.ws).await;
    let sub = frames.iter().find(|f| f["type"] == json!("context.subscribed")).unwrap_or_else(|| panic!("{frames:?}"));
    assert_eq!(sub["contexts"].as_array().unwrap().len(), 150);
    h.ws.send_json(&json!({ "type": "context.subscribe", "contexts": all[150..] })).await;
    let frames = barrier(&mut h.ws).await;
    let err = frames
        .iter()
        .find(|f| f["type"] == json!("error"))
        .unwrap_or_else(|| panic!("no too_many_contexts error: {frames:?}"));
    assert_eq!(err["code"], json!("too_many_contexts"), "{err}");
    assert_eq!(err["max"], json!(200), "{err}");
    let sub = frames.iter().find(|f| f["type"] == json!("context.subscribed")).unwrap_or_else(|| panic!("{frames:?}"));
    assert_eq!(sub["contexts"].as_array().unwrap().len(), 50, "the ones that fit are kept");
}

#[tokio::test]
async fn typing_is_broadcast_rate_limited_and_times_out() {
    let api = api();
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let mut h = hub(&api, &bob).await;
    subscribe(&mut h.ws, std::slice::from_ref(&ctx)).await;
    let typing = format!("/v1/conversations/{conv}/typing");

    let r = api.post_empty(&typing, &alice).await;
    r.expect(204);
    let ev = expect_hub_event(&mut h.ws, &ctx, "typing").await;
    assert_eq!(ev["payload"]["memberId"], json!(alice.id));
    assert!(ev.get("seq").is_none_or(|s| s.is_null()), "typing is ephemeral, without seq: {ev}");
    // a refresh within 3 s is not broadcast; stop is
    api.post_empty(&typing, &alice).await.expect(204);
    api.post_empty(&format!("{typing}/stop"), &alice).await.expect(204);
    let ev = expect_hub_event(&mut h.ws, &ctx, "typing.stop").await;
    assert_eq!(ev["payload"]["memberId"], json!(alice.id));

    // typing over alice's own hub socket once the 3 s throttle has passed (a stop does not reset
    // it); the server ends it by itself (6 s after the last refresh)
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let mut ah = hub(&api, &alice).await;
    ah.ws.send_json(&json!({ "type": "typing", "conversationId": conv })).await;
    let ev = expect_hub_event(&mut h.ws, &ctx, "typing").await;
    assert_eq!(ev["payload"]["memberId"], json!(alice.id));
    let f = h.ws.next_json(Duration::from_secs(12)).await;
    assert_eq!(
        (f["event"].as_str(), f["payload"]["memberId"].as_str()),
        (Some("typing.stop"), Some(alice.id.as_str())),
        "{f}"
    );

    // not a member
    let eve = api.user("eve").await;
    api.post_empty(&typing, &eve).await.expect_error(403, "forbidden");
    api.post_empty(&format!("/v1/conversations/{UNKNOWN_ULID}/typing"), &alice).await.expect_error(404, "not_found");
}

#[tokio::test]
async fn presence_roster() {
    let api = api();
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let pctx = presence_ctx(&ctx);
    let presence = format!("/v1/conversations/{conv}/presence");
    let mut watcher = hub(&api, &bob).await;
    subscribe(&mut watcher.ws, std::slice::from_ref(&ctx)).await;
    assert_eq!(api.get(&presence, &bob).await.expect(200), &json!({ "present": [] }));

    let mut tab1 = hub(&api, &alice).await;
    assert_eq!(subscribe(&mut tab1.ws, std::slice::from_ref(&pctx)).await, vec![pctx.clone()]);
    let ev = expect_hub_event(&mut watcher.ws, &ctx, "presence.joined").await;
    assert_eq!(ev["payload"]["memberId"], json!(alice.id));
    assert_eq!(api.get(&presence, &bob).await.expect(200), &json!({ "present": [alice.id] }));

    // a second tab counts once; closing the first leaves alice present
    let mut tab2 = hub(&api, &alice).await;
    subscribe(&mut tab2.ws, std::slice::from_ref(&pctx)).await;
    tab1.ws.close().await;
    assert_eq!(api.get(&presence, &bob).await.expect(200), &json!({ "present": [alice.id] }));
    // the last tab leaving: presence.left
    tab2.ws.send_json(&json!({ "type": "context.unsubscribe", "contexts": [pctx] })).await;
    let ev = expect_hub_event(&mut watcher.ws, &ctx, "presence.left").await;
    assert_eq!(ev["payload"]["memberId"], json!(alice.id));
    assert_eq!(api.get(&presence, &bob).await.expect(200), &json!({ "present": [] }));

    // closing a socket leaves at once
    let mut tab3 = hub(&api, &alice).await;
    subscribe(&mut tab3.ws, std::slice::from_ref(&pctx)).await;
    expect_hub_event(&mut watcher.ws, &ctx, "presence.joined").await;
    tab3.ws.close().await;
    let ev = expect_hub_event(&mut watcher.ws, &ctx, "presence.left").await;
    assert_eq!(ev["payload"]["memberId"], json!(alice.id));

    let eve = api.user("eve").await;
    api.get(&presence, &eve).await.expect_error(403, "forbidden");
}

/// After a first ack, more than 50 unacked events close the socket with 4002; before any ack, no limit.
#[tokio::test]
async fn unacked_window() {
    let api = api();
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let mut acker = hub(&api, &bob).await;
    subscribe(&mut acker.ws, std::slice::from_ref(&ctx)).await;
    let mut never = hub(&api, &bob).await;
    subscribe(&mut never.ws, std::slice::from_ref(&ctx)).await;

    api.send_text(&alice, &conv, "first").await;
    let ev = expect_hub_event(&mut acker.ws, &ctx, "message.created").await;
    acker.ws.send_json(&json!({ "type": "ack", "seq": ev["seq"] })).await;
    assert!(barrier(&mut acker.ws).await.is_empty());

    // Two senders, so that neither goes over the send rate limit (bursts of 30 per member).
    for i in 0..52 {
        let sender = if i % 2 == 0 { &alice } else { &bob };
        api.send_text(sender, &conv, &format!("flood {i}")).await;
    }
    let (code, events) = acker.ws.expect_close(Duration::from_secs(20)).await;
    assert_eq!(code, 4002, "close code after > 50 unacked events");
    assert!(events.len() >= 50, "events before the close: {}", events.len());

    // the socket that never acked got all 53 and is still open
    let mut n = 0;
    while n < 53 {
        expect_hub_event(&mut never.ws, &ctx, "message.created").await;
        n += 1;
    }
    assert!(barrier(&mut never.ws).await.is_empty(), "the never-acking socket is still open");
}

#[tokio::test]
async fn resume_with_session() {
    let api = api();
    let (alice, bob, sb, conv) = room(&api).await;
    let ctx = conv_ctx(&sb, &conv);
    let mut h = hub(&api, &bob).await;
    subscribe(&mut h.ws, std::slice::from_ref(&ctx)).await;
    let session = h.hello["sessionId"].as_str().unwrap().to_string();
    api.send_text(&alice, &conv, "seen").await;
    let seen = expect_hub_event(&mut h.ws, &ctx, "message.created").await["seq"].as_i64().unwrap();
    h.ws.close().await;

    let mut missed = Vec::new();
    for i in 0..3 {
        missed.push(api.send_text(&alice, &conv, &format!("missed {i}")).await);
    }
    let (ws, _) = Ws::open_hub(&api, WsAuth::Bearer(&bob.token), Some(&session), Some(seen), false, "bob-hub-resume")
        .await
        .unwrap_or_else(|r| panic!("resume refused: {} {}", r.status, r.text));
    let (mut h2, events, resync) = read_hello_and_ready(ws).await;
    assert!(resync.is_none(), "{resync:?}");
    assert_eq!(h2.hello["sessionId"], json!(session));
    assert_eq!(h2.hello["restored"], json!(true));
    assert_eq!(h2.hello["contexts"], json!([ctx]));
    let ids: Vec<&Value> = events.iter().map(|e| &e["payload"]["messageId"]).collect();
    assert_eq!(ids, missed.iter().map(|m| &m["id"]).collect::<Vec<_>>(), "exactly the missed events, in order");
    let mut prev = seen;
    for e in &events {
        let s = e["seq"].as_i64().unwrap();
        assert!(s > prev, "{events:?}");
        prev = s;
    }
    // `ready` is the user's newest seq: at least the last replayed (events of contexts this
    // session does not follow, e.g. a badge.updated from the push for a missed message, take seqs).
    assert!(h2.ready >= prev, "{} < {prev}", h2.ready);
    // live again, subscriptions restored
    let live = api.send_text(&alice, &conv, "live").await;
    let ev = expect_hub_event(&mut h2.ws, &ctx, "message.created").await;
    assert_eq!(ev["payload"]["messageId"], live["id"]);
    let live_seq = ev["seq"].as_i64().unwrap();
    h2.ws.close().await;

    // without session: since resumes the most recently closed session
    let m = api.send_text(&alice, &conv, "after close").await;
    let (ws, _) = Ws::open_hub(&api, WsAuth::Bearer(&bob.token), None, Some(live_seq), false, "bob-hub-resume2")
        .await
        .unwrap_or_else(|r| panic!("resume refused: {} {}", r.status, r.text));
    let (_h3, events, resync) = read_hello_and_ready(ws).await;
    assert!(resync.is_none(), "{resync:?}");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["payload"]["messageId"], m["id"]);

    // since newer than anything: resync
    let (ws, _) = Ws::open_hub(
        &api,
        WsAuth::Bearer(&bob.token),
        Some(&session),
        Some(live_seq + 10_000),
        false,
        "bob-hub-resync",
    )
    .await
    .unwrap_or_else(|r| panic!("resume refused: {} {}", r.status, r.text));
    let (_h4, events, resync) = read_hello_and_ready(ws).await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        resync.unwrap_or_else(|| panic!("no resync for a since beyond the latest seq"))["type"],
        json!("resync")
    );
}
