//! End-to-end tests of push notifications through the chat worker (issue 3), against a fake Expo
//! server on 127.0.0.1: the chat worker and the notifications worker in one server
//! (tests/e2e/serve.mjs, chat first). Tests drive the chat API (messages, sockets, mark-read, the
//! forwarded notification routes) and read what reached the fake Expo server. The notifications
//! worker alone (RPC payloads replayed directly) is `notifications_direct.rs`.
//!
//! Every test uses its own users, sandbox and device tokens, and reads only the fake's requests
//! that carry its own tokens, so the tests share the server and run in parallel.

mod notifications_common;

use notifications_common::*;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use switchboard_e2e::expo::FakeExpo;
use switchboard_e2e::serde_json::{json, Value};
use switchboard_e2e::*;

/// The chat server's presence grace period.
const GRACE_MS: u64 = 3000;

fn chat() -> &'static Setup {
    static CELL: OnceLock<Result<Setup, String>> = OnceLock::new();
    start_once(&CELL, || {
        let fake = FakeExpo::start();
        let mut nvars = fake.vars();
        nvars.push(("PRESENCE_GRACE_MS".into(), GRACE_MS.to_string()));
        let server = Server::start_with(&StartOptions { notifications_vars: nvars, ..Default::default() });
        Setup { fake, server }
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn bucket_count(badges: &Value, bucket: &str) -> i64 {
    badges["buckets"]
        .as_array()
        .and_then(|b| b.iter().find(|x| x["badgeBucket"] == bucket))
        .map(|x| x["badgeCount"].as_i64().unwrap_or(-1))
        .unwrap_or(0)
}

/// Waits until `token` got `n` delivered messages, then a little longer to be sure no more come.
async fn expect_delivered(fake: &FakeExpo, token: &str, n: usize) -> Vec<Value> {
    fake.wait_for(&format!("{n} push(es) to {token}"), WAIT, |f| (f.delivered_to(token).len() >= n).then_some(()))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = fake.delivered_to(token);
    assert_eq!(got.len(), n, "pushes to {token}: {got:#?}");
    got
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// A message to a conversation with two offline humans gives one push each with the right title,
/// body, data and badge; small requests are not gzipped and carry no access token.
#[tokio::test]
async fn two_offline_humans_get_one_push_each() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let sb = uid("sb");
    let (alice, bob, carol) = (api.user("alice").await, api.user("bob").await, api.user("carol").await);
    let bot = api.bot_token(&sb).await;
    api.put(&format!("/bot/v1/sandboxes/{sb}/profile"), &bot, &json!({ "label": "Claw" })).await.expect(200);
    for w in [&alice, &bob, &carol] {
        register(&api, w, &device(w)).await;
    }
    api.put("/v1/notification-preferences", &carol, &json!({ "preview": "full" })).await.expect(200);
    let conv = api.create_conversation(&alice, &sb, Some("Plans"), &[&bob.id, &carol.id]).await;
    let msg = api.send_text(&alice, &conv, "hello there").await;
    let mid = msg["id"].as_str().unwrap().to_string();

    let to_bob = expect_delivered(fake, &device(&bob), 1).await;
    let to_carol = expect_delivered(fake, &device(&carol), 1).await;
    let data = json!({ "type": "chat.message", "sandboxId": sb, "conversationId": conv, "messageId": mid });
    assert_eq!(
        to_bob[0],
        json!({ "to": device(&bob), "title": "Claw · Plans", "body": "New message", "data": data,
                "sound": "default", "priority": "high", "badge": 1 })
    );
    assert_eq!(to_carol[0]["body"], "hello there", "carol's preview is full");
    assert_eq!(to_carol[0]["title"], "Claw · Plans");
    assert_eq!(to_carol[0]["badge"], 1);
    assert!(fake.sends_to(&device(&alice)).is_empty(), "the sender gets no push");
    for r in fake.sends_to(&device(&bob)) {
        assert!(!r.gzip && r.raw_len <= 1024, "a small request is not gzipped ({} bytes)", r.raw_len);
        assert_eq!(r.header("authorization"), None, "no access token configured");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let b = badges(&api, &bob).await;
    assert_eq!(b["total"], 1);
    assert_eq!(bucket_count(&b, &bucket(&sb, &conv)), 1);
}

/// A bot's message goes to every human member; without a profile the label is the sandbox id.
#[tokio::test]
async fn bot_message_goes_to_all_humans() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let sb = uid("sb");
    let (alice, bob) = (api.user("alice").await, api.user("bob").await);
    register(&api, &alice, &device(&alice)).await;
    register(&api, &bob, &device(&bob)).await;
    let conv = api.create_conversation(&alice, &sb, None, &[&bob.id]).await;
    let bot = api.bot_token(&sb).await;
    api.post(
        &format!("/bot/v1/sandboxes/{sb}/conversations/{conv}/messages"),
        &bot,
        &json!({ "content": text("done") }),
    )
    .await
    .expect(201);
    for w in [&alice, &bob] {
        let got = expect_delivered(fake, &device(w), 1).await;
        // The conversation is untitled or auto-titled from this first message.
        let title = got[0]["title"].as_str().unwrap_or_default();
        assert!(title == format!("{sb} · Untitled") || title == format!("{sb} · done"), "{title}");
    }
}

/// Expo answering 500 then 200: the push is retried and the badge counts once.
#[tokio::test]
async fn expo_500_then_200_counts_badge_once() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let sb = uid("sb");
    let (alice, bob) = (api.user("alice").await, api.user("bob").await);
    let t = device(&bob);
    register(&api, &bob, &t).await;
    fake.fail_next(&t, 500, 1);
    let conv = api.create_conversation(&alice, &sb, Some("Retry"), &[&bob.id]).await;
    api.send_text(&alice, &conv, "one").await;
    let got = expect_delivered(fake, &t, 1).await;
    let sends = fake.sends_to(&t);
    assert_eq!(sends.iter().map(|r| r.status).collect::<Vec<_>>(), vec![500, 200]);
    assert_eq!(sends[0].messages_to(&t), sends[1].messages_to(&t), "the retry carries the same message");
    assert_eq!(got[0]["badge"], 1);
    let b = badges(&api, &bob).await;
    assert_eq!((b["total"].as_i64(), bucket_count(&b, &bucket(&sb, &conv))), (Some(1), 1));
    api.send_text(&alice, &conv, "two").await;
    let got = expect_delivered(fake, &t, 2).await;
    assert_eq!(got[1]["badge"], 2);
}

/// 429 is retried with exponential backoff (waits of at least 125 ms, then 250 ms).
#[tokio::test]
async fn expo_429_is_retried_with_backoff() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let (alice, bob) = (api.user("alice").await, api.user("bob").await);
    let t = device(&bob);
    register(&api, &bob, &t).await;
    fake.fail_next(&t, 429, 2);
    let conv = api.create_conversation(&alice, &uid("sb"), None, &[&bob.id]).await;
    api.send_text(&alice, &conv, "rate limited").await;
    expect_delivered(fake, &t, 1).await;
    let sends = fake.sends_to(&t);
    assert_eq!(sends.iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 429, 200]);
    let gap1 = sends[1].at - sends[0].at;
    let gap2 = sends[2].at - sends[1].at;
    assert!(gap1 >= Duration::from_millis(120), "first backoff {gap1:?}");
    assert!(gap2 >= Duration::from_millis(240), "second backoff {gap2:?}");
    assert_eq!(badges(&api, &bob).await["total"], 1);
}

/// A ticket `DeviceNotRegistered` removes that token: the next message no longer goes to it.
#[tokio::test]
async fn device_not_registered_removes_the_token() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let (alice, bob) = (api.user("alice").await, api.user("bob").await);
    let dead = format!("ExponentPushToken[{}-old]", bob.id);
    let live = device(&bob);
    register(&api, &bob, &dead).await;
    register(&api, &bob, &live).await;
    fake.ticket_error(&dead, "DeviceNotRegistered");
    let conv = api.create_conversation(&alice, &uid("sb"), None, &[&bob.id]).await;
    api.send_text(&alice, &conv, "one").await;
    expect_delivered(fake, &live, 1).await;
    assert_eq!(fake.sends_to(&dead).len(), 1);
    api.send_text(&alice, &conv, "two").await;
    expect_delivered(fake, &live, 2).await;
    assert_eq!(fake.sends_to(&dead).len(), 1, "the dead token was forgotten");
}

/// A viewer gets no push; nor within the grace period after leaving; after it, they do.
#[tokio::test]
async fn viewer_gets_no_push_until_the_grace_period_is_over() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let (alice, bob, carol) = (api.user("alice").await, api.user("bob").await, api.user("carol").await);
    let (tb, tc) = (device(&bob), device(&carol));
    register(&api, &bob, &tb).await;
    register(&api, &carol, &tc).await;
    let conv = api.create_conversation(&alice, &uid("sb"), None, &[&bob.id, &carol.id]).await;
    let (ws, _) = Ws::connect_ready(&api, &conv, &bob).await;
    api.send_text(&alice, &conv, "while bob looks").await;
    // Carol's push and bob's decision come from the same call.
    expect_delivered(fake, &tc, 1).await;
    assert!(fake.sends_to(&tb).is_empty(), "bob is viewing");
    ws.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let closed = Instant::now();
    api.send_text(&alice, &conv, "just after bob left").await;
    expect_delivered(fake, &tc, 2).await;
    assert!(closed.elapsed() < Duration::from_millis(GRACE_MS), "the test was too slow to check the grace period");
    assert!(fake.sends_to(&tb).is_empty(), "bob left less than the grace period ago");
    tokio::time::sleep(Duration::from_millis(GRACE_MS + 500).saturating_sub(closed.elapsed())).await;
    api.send_text(&alice, &conv, "later").await;
    let got = expect_delivered(fake, &tb, 1).await;
    assert_eq!(got[0]["badge"], 1, "suppressed messages were not counted");
}

/// Chat pushes switched off: none; switched on again: pushes resume.
#[tokio::test]
async fn preference_off_gives_no_push() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let (alice, bob, carol) = (api.user("alice").await, api.user("bob").await, api.user("carol").await);
    let (tb, tc) = (device(&bob), device(&carol));
    register(&api, &bob, &tb).await;
    register(&api, &carol, &tc).await;
    let off = api.put("/v1/notification-preferences", &bob, &json!({ "chatMessagesEnabled": false })).await;
    assert_eq!(off.expect(200), &json!({ "chatMessagesEnabled": false, "preview": "generic" }));
    let conv = api.create_conversation(&alice, &uid("sb"), None, &[&bob.id, &carol.id]).await;
    api.send_text(&alice, &conv, "muted").await;
    expect_delivered(fake, &tc, 1).await;
    assert!(fake.sends_to(&tb).is_empty(), "bob switched chat pushes off");
    api.put("/v1/notification-preferences", &bob, &json!({ "chatMessagesEnabled": true })).await.expect(200);
    api.send_text(&alice, &conv, "unmuted").await;
    let got = expect_delivered(fake, &tb, 1).await;
    assert_eq!(got[0]["badge"], 1);
}

/// 250 recipients' pushes go out in 3 requests (100, 100, 50), each gzipped (over 1 KiB).
#[tokio::test]
async fn many_recipients_go_out_in_gzipped_requests_of_100() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let alice = api.user("alice").await;
    let mut people = Vec::new();
    for batch in 0..25 {
        let made = futures_util::future::join_all((0..10).map(|i| {
            let api = api.clone();
            async move {
                let w = api.user(&format!("crowd{}", batch * 10 + i)).await;
                register(&api, &w, &device(&w)).await;
                w
            }
        }))
        .await;
        people.extend(made);
    }
    let first: Vec<&str> = people[..100].iter().map(|w| w.id.as_str()).collect();
    let conv = api.create_conversation(&alice, &uid("sb"), Some("Crowd"), &first).await;
    for chunk in people[100..].chunks(10) {
        futures_util::future::join_all(chunk.iter().map(|w| {
            let api = api.clone();
            let (alice, conv) = (alice.clone(), conv.clone());
            async move {
                let r =
                    api.post(&format!("/v1/conversations/{conv}/members"), &alice, &json!({ "userId": w.id })).await;
                assert_eq!(r.status, 201, "add member: {}", r.text);
            }
        }))
        .await;
    }
    api.send_text(&alice, &conv, "hello everyone").await;
    let tokens: Vec<String> = people.iter().map(device).collect();
    fake.wait_for("a push to each of 250 devices", WAIT, |f| {
        tokens.iter().all(|t| f.delivered_to(t).len() == 1).then_some(())
    })
    .await;
    let mine: Vec<_> =
        fake.requests().into_iter().filter(|r| r.is_send() && r.tokens().iter().any(|t| tokens.contains(t))).collect();
    let mut sizes: Vec<usize> = mine.iter().map(|r| r.messages().len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![50, 100, 100], "requests of at most 100 messages");
    for r in &mine {
        assert!(r.gzip, "a body over 1 KiB is gzipped");
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert!(r.raw_len < r.body.to_string().len(), "the gzipped body is smaller");
    }
}

/// Mark-read clears the conversation's bucket, so the next push's badge is lower.
#[tokio::test]
async fn mark_read_lowers_the_next_push_badge() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let sb = uid("sb");
    let (alice, bob) = (api.user("alice").await, api.user("bob").await);
    let t = device(&bob);
    register(&api, &bob, &t).await;
    let c1 = api.create_conversation(&alice, &sb, Some("One"), &[&bob.id]).await;
    let c2 = api.create_conversation(&alice, &sb, Some("Two"), &[&bob.id]).await;
    api.send_text(&alice, &c1, "a").await;
    expect_delivered(fake, &t, 1).await;
    let last = api.send_text(&alice, &c1, "b").await;
    expect_delivered(fake, &t, 2).await;
    api.send_text(&alice, &c2, "c").await;
    let got = expect_delivered(fake, &t, 3).await;
    assert_eq!(got.iter().map(|m| m["badge"].as_i64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
    let b = badges(&api, &bob).await;
    assert_eq!(
        (b["total"].as_i64(), bucket_count(&b, &bucket(&sb, &c1)), bucket_count(&b, &bucket(&sb, &c2))),
        (Some(3), 2, 1)
    );

    let r =
        api.post(&format!("/v1/conversations/{c1}/mark-read"), &bob, &json!({ "lastSeenMessageId": last["id"] })).await;
    assert_eq!(r.expect(200)["badgeCount"], 1, "{}", r.text);
    api.send_text(&alice, &c2, "d").await;
    let got = expect_delivered(fake, &t, 4).await;
    assert_eq!(got[3]["badge"], 2, "c1's two were cleared");

    let r = api.post("/v1/badges/mark-read", &bob, &json!({ "badgeBucket": bucket(&sb, &c2) })).await;
    assert_eq!(r.expect(200), &json!({ "badgeCount": 0 }));
    api.send_text(&alice, &c1, "e").await;
    let got = expect_delivered(fake, &t, 5).await;
    assert_eq!(got[4]["badge"], 1);
}

/// The forwarded routes authenticate and validate: push tokens, preferences, badges.
#[tokio::test]
async fn routes_authenticate_and_validate() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let (alice, bob, carol) = (api.user("alice").await, api.user("bob").await, api.user("carol").await);
    let t = device(&bob);

    api.send("POST", "/v1/push-tokens", None, Some(&json!({ "token": t }))).await.expect_error(401, "unauthorized");
    api.send("GET", "/v1/badges", Some("not.a.jwt"), None).await.expect_error(401, "unauthorized");
    api.post("/v1/push-tokens", &bob, &json!({ "token": "FcmToken[x]" })).await.expect_error(400, "invalid_request");
    api.post("/v1/push-tokens", &bob, &json!({ "token": t, "extra": 1 })).await.expect_error(400, "invalid_request");
    api.send_raw("POST", "/v1/push-tokens", Some(&bob.token), Some("{".into())).await.expect_error(400, "invalid_json");
    let r = api.post("/v1/push-tokens", &bob, &json!({ "token": t, "platform": "android" })).await;
    let b = r.expect(201);
    assert_eq!((b["token"].as_str(), b["platform"].as_str()), (Some(t.as_str()), Some("android")));
    api.post("/v1/push-tokens", &bob, &json!({ "token": t })).await.expect(200);

    // The token moves to carol: a message to bob no longer reaches that device. It is carol's
    // registration now, with only what carol said: nothing of bob's (platform, version, created).
    let before = now_ms();
    let r = api.post("/v1/push-tokens", &carol, &json!({ "token": t })).await;
    let b = r.expect(201);
    assert_eq!((b["platform"].clone(), b["appVersion"].clone()), (Value::Null, Value::Null), "{b}");
    assert!(b["createdAt"].as_i64() >= Some(before - 5_000), "created anew for carol: {b}");
    assert_eq!(b["createdAt"], b["updatedAt"], "{b}");
    let conv = api.create_conversation(&alice, &uid("sb"), None, &[&bob.id]).await;
    let barrier = format!("ExponentPushToken[{}-barrier]", alice.id);
    register(&api, &alice, &barrier).await;
    api.send_text(&alice, &conv, "to bob only").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(fake.sends_to(&t).is_empty(), "the token now belongs to carol");

    let del = api.send("DELETE", "/v1/push-tokens", Some(&carol.token), Some(&json!({ "token": t }))).await;
    del.expect(204);
    api.send("DELETE", "/v1/push-tokens", Some(&carol.token), Some(&json!({ "token": t }))).await.expect(204);

    let p = api.get("/v1/notification-preferences", &bob).await;
    assert_eq!(p.expect(200), &json!({ "chatMessagesEnabled": true, "preview": "generic" }));
    let p = api.put("/v1/notification-preferences", &bob, &json!({ "preview": "full" })).await;
    assert_eq!(p.expect(200), &json!({ "chatMessagesEnabled": true, "preview": "full" }));
    api.put("/v1/notification-preferences", &bob, &json!({ "preview": "loud" }))
        .await
        .expect_error(400, "invalid_request");
    let p = api.get("/v1/notification-preferences", &bob).await;
    assert_eq!(p.expect(200)["preview"], "full");

    assert_eq!(badges(&api, &carol).await, json!({ "buckets": [], "total": 0 }));
    api.post("/v1/badges/mark-read", &carol, &json!({ "badgeBucket": "nope" }))
        .await
        .expect_error(400, "invalid_request");
    let r = api.post("/v1/badges/mark-read", &carol, &json!({ "badgeBucket": bucket("sb1", &conv) })).await;
    assert_eq!(r.expect(200), &json!({ "badgeCount": 0 }));
    let bot = api.bot_token(&uid("sb")).await;
    api.get("/v1/badges", &bot).await.expect_error(403, "forbidden");
    api.send("PATCH", "/v1/push-tokens", Some(&bob.token), Some(&json!({})))
        .await
        .expect_error(405, "method_not_allowed");
}

/// The next `badge.updated` event on the hub (other instance events may come first).
async fn next_badge_event(ws: &mut Ws) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{}: no badge.updated within {WAIT:?}", ws.label);
        let f = ws.next_json(left).await;
        if f["event"] == json!("badge.updated") {
            return f;
        }
    }
}

/// Badge changes reach the user's open apps, on the sandbox's instance context: a push that counts
/// raises the total, and a mark-read that catches up lowers it.
#[tokio::test]
async fn badge_changes_reach_the_users_hub() {
    let Setup { fake, server } = chat();
    let api = Api::new(server);
    let sb = uid("sb");
    let (alice, bob) = (api.user("alice").await, api.user("bob").await);
    let t = device(&bob);
    register(&api, &bob, &t).await;
    let conv = api.create_conversation(&alice, &sb, Some("Badges"), &[&bob.id]).await;
    let (mut ws, _) = Ws::open_hub(&api, WsAuth::Bearer(&bob.token), None, None, false, "bob-badges")
        .await
        .unwrap_or_else(|r| panic!("hub refused: {} {}", r.status, r.text));
    assert_eq!(ws.next_json(FRAME_TIMEOUT).await["type"], json!("hello"));
    ws.read_until_ready().await;
    let ctx = format!("/kiloclaw/{sb}");
    ws.send_json(&json!({ "type": "context.subscribe", "contexts": [ctx] })).await;
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!((f["type"].as_str(), &f["contexts"]), (Some("context.subscribed"), &json!([ctx])), "{f}");

    let m = api.send_text(&alice, &conv, "ping bob").await;
    expect_delivered(fake, &t, 1).await;
    let up = next_badge_event(&mut ws).await;
    assert_eq!(up["context"], json!(ctx), "{up}");
    assert_eq!(up["payload"], json!({ "badgeBucket": bucket(&sb, &conv), "total": 1 }), "{up}");

    let r =
        api.post(&format!("/v1/conversations/{conv}/mark-read"), &bob, &json!({ "lastSeenMessageId": m["id"] })).await;
    assert_eq!(r.expect(200)["badgeCount"], 0, "{}", r.text);
    let down = next_badge_event(&mut ws).await;
    assert_eq!(down["payload"], json!({ "badgeBucket": bucket(&sb, &conv), "total": 0 }), "{down}");
    assert!(down["seq"].as_i64() > up["seq"].as_i64(), "{up} {down}");
}

#[tokio::test]
async fn push_token_routes_refuse_other_content_types() {
    let Setup { server, .. } = chat();
    let api = Api::new(server);
    let bob = api.user("bob").await;
    let body = json!({ "token": device(&bob) }).to_string();
    let r =
        api.send_typed("POST", "/v1/push-tokens", Some(&bob.token), "application/x-www-form-urlencoded", &body).await;
    r.expect_error(415, "unsupported_content_type");
    let r = api.send_typed("POST", "/v1/push-tokens", Some(&bob.token), "application/json", &body).await;
    r.expect(201);
}
