//! Bounded input, always readable data (issue #18): every integer a client sends is range-checked
//! before anything is written (400 naming the field), and every accepted boundary value reads back
//! exactly through every route and socket that shows it: the message list, the conversation, the
//! bot status, the conversation socket's replay and the hub's replay.

use serde_json::{json, Value};
use switchboard_e2e::{now_ms, shared, text, Api, Ws, WsAuth, FRAME_TIMEOUT};

const DAY: i64 = 86_400_000;
const MAX_SAFE: i64 = (1 << 53) - 1;
/// Clock slack between this test and the server (same machine; generous).
const SLACK: i64 = 60_000;

fn refused_naming(r: &switchboard_e2e::Resp, field: &str) {
    r.expect_error(400, "invalid_request");
    assert!(r.error_message().starts_with(&format!("{field}: ")), "{}", r.error_message());
}

/// Every out-of-range integer is refused before anything is written.
#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_integers_are_refused_with_the_field() {
    let api = Api::new(shared());
    let alice = api.user("alice").await;
    let sandbox = switchboard_e2e::uid("sb");
    let bot = api.bot_token(&sandbox).await;
    let conv = api.create_conversation(&alice, &sandbox, Some("t"), &[]).await;
    let msg = api.send_text(&alice, &conv, "original").await;
    let id = msg["id"].as_str().unwrap().to_string();
    let now = now_ms();
    for bad in [
        json!(now + DAY + SLACK),
        json!(now - DAY - SLACK),
        json!(-1),
        json!(MAX_SAFE),
        json!(MAX_SAFE + 1),
        json!(i64::MAX),
        json!(u64::MAX),
    ] {
        let body = json!({"conversationId": conv, "content": text("edited"), "timestamp": bad});
        let r = api.patch(&format!("/v1/messages/{id}"), &alice, &body).await;
        if bad == json!(u64::MAX) {
            // Not an i64 at all: a shape error, naming the field too.
            refused_naming(&r, "timestamp");
            continue;
        }
        refused_naming(&r, "timestamp");
        let path = format!("/bot/v1/sandboxes/{sandbox}/bot-status");
        refused_naming(&api.post(&path, &bot, &json!({"online": true, "at": bad})).await, "at");
    }
    // Nothing was written: the message is as sent, the bot never reported.
    let messages = api.messages(&alice, &conv).await;
    assert_eq!(messages[0]["content"], text("original"));
    assert_eq!(messages[0]["clientUpdatedAt"], Value::Null);
    let status = api.get(&format!("/bot/v1/sandboxes/{sandbox}/bot-status"), &bot).await;
    assert_eq!(status.expect(200)["at"], Value::Null);
    // Query integers: limits, since, cursors.
    for q in ["limit=0", "limit=101", "limit=-1", "limit=99999999999999999999"] {
        api.get(&format!("/v1/conversations/{conv}/messages?{q}"), &alice).await.expect_error(400, "invalid_request");
        api.get(&format!("/v1/conversations?{q}"), &alice).await.expect_error(400, "invalid_request");
    }
    let cursor = format!("{}.{conv}", MAX_SAFE + 1);
    let r = api.get(&format!("/v1/conversations?cursor={cursor}"), &alice).await;
    r.expect_error(400, "invalid_request");
    for since in [MAX_SAFE as i128 + 1, -1, u64::MAX as i128 + 1] {
        let s = since.to_string();
        let r = Ws::refused(&api, &conv, WsAuth::Bearer(&alice.token), Some(&s)).await;
        assert_eq!(r.status, 400, "since={s}: {}", r.text);
    }
}

/// The extreme accepted values, written through every route that takes a number, read back
/// exactly everywhere.
#[tokio::test(flavor = "multi_thread")]
async fn every_accepted_boundary_value_reads_back() {
    let api = Api::new(shared());
    let alice = api.user("alice").await;
    let sandbox = switchboard_e2e::uid("sb");
    let bot = api.bot_token(&sandbox).await;
    // alice's hub follows the conversation and the instance from the start.
    let (mut hub, _) = Ws::open_hub(&api, WsAuth::Bearer(&alice.token), None, None, true, "alice-hub").await.unwrap();
    let hello = hub.next_json(FRAME_TIMEOUT).await;
    let session = hello["sessionId"].as_str().unwrap().to_string();
    hub.read_until_ready().await;
    let conv = api.create_conversation(&alice, &sandbox, Some("t"), &[]).await;
    let contexts = [format!("/kiloclaw/{sandbox}"), format!("/kiloclaw/{sandbox}/{conv}")];
    hub.send_json(&json!({"type": "context.subscribe", "contexts": contexts})).await;
    assert_eq!(hub.next_json(FRAME_TIMEOUT).await["type"], "context.subscribed");

    let now = now_ms();
    let (earliest, latest) = (now - DAY + SLACK, now + DAY - SLACK);
    let m1 = api.send_text(&alice, &conv, "one").await["id"].as_str().unwrap().to_string();
    let m2 = api.send_text(&alice, &conv, "two").await["id"].as_str().unwrap().to_string();
    for (id, ts) in [(&m1, earliest), (&m2, latest)] {
        let body = json!({"conversationId": conv, "content": text("edited"), "timestamp": ts});
        api.patch(&format!("/v1/messages/{id}"), &alice, &body).await.expect(200);
    }
    // An edit at the latest stored time again is not a conflict; one just before it is.
    let body = json!({"conversationId": conv, "content": text("edited"), "timestamp": latest - 1});
    api.patch(&format!("/v1/messages/{m2}"), &alice, &body).await.expect_error(409, "edit_conflict");
    let path = format!("/bot/v1/sandboxes/{sandbox}/bot-status");
    let r = api.post(&path, &bot, &json!({"online": true, "at": latest})).await;
    assert_eq!(r.expect(200)["at"], json!(latest));
    api.post(&format!("/v1/conversations/{conv}/mark-read"), &alice, &json!({"lastSeenMessageId": m2}))
        .await
        .expect(200);

    // The list, paged at both limit bounds.
    let want = |messages: &[Value]| {
        let by_id = |id: &str| messages.iter().find(|m| m["id"] == json!(id)).cloned().unwrap();
        assert_eq!(by_id(&m1)["clientUpdatedAt"], json!(earliest));
        assert_eq!(by_id(&m2)["clientUpdatedAt"], json!(latest));
    };
    want(&api.messages(&alice, &conv).await);
    let one = api.get(&format!("/v1/conversations/{conv}/messages?limit=1"), &alice).await;
    assert_eq!(one.expect(200)["messages"].as_array().unwrap().len(), 1);
    // the detail carries the read position just written (read receipts)
    let got = api.get(&format!("/v1/conversations/{conv}"), &alice).await;
    let detail = got.expect(200);
    let me = detail["members"].as_array().unwrap().iter().find(|m| m["id"] == json!(alice.id)).cloned().unwrap();
    assert_eq!(me["lastReadMessageId"], json!(m2), "{detail}");
    assert!(me["lastReadAt"].is_i64(), "{detail}");
    assert_eq!(api.get(&path, &bot).await.expect(200)["at"], json!(latest));
    assert_eq!(api.get(&format!("/v1/conversations/{conv}/bot-status"), &alice).await.expect(200)["at"], json!(latest));
    let listed = api.get("/v1/conversations?limit=100", &alice).await;
    assert!(listed.expect(200)["conversations"].as_array().unwrap().iter().any(|c| c["conversationId"] == json!(conv)));

    // The conversation socket's replay from the start: every event, the edits with their times.
    let mut ws = Ws::connect(&api, &conv, &alice, Some(0)).await;
    let (events, resync, _) = ws.read_until_ready().await;
    assert!(resync.is_none(), "{resync:?}");
    let edits: Vec<Value> = events
        .iter()
        .filter(|e| e["event"] == "message.updated")
        .map(|e| e["payload"]["message"]["clientUpdatedAt"].clone())
        .collect();
    assert_eq!(edits, vec![json!(earliest), json!(latest)], "{events:?}");
    // since at the largest accepted value: newer than anything, so resync, never an error.
    let mut ws = Ws::connect(&api, &conv, &alice, Some(MAX_SAFE)).await;
    let (_, resync, _) = ws.read_until_ready().await;
    assert!(resync.is_some());

    // The hub's replay of the same session from its start carries the same values.
    hub.send_json(&json!({"type": "ack", "seq": MAX_SAFE})).await;
    drop(hub);
    let (mut again, _) =
        Ws::open_hub(&api, WsAuth::Bearer(&alice.token), Some(&session), Some(0), true, "alice-hub-again")
            .await
            .unwrap();
    assert_eq!(again.next_json(FRAME_TIMEOUT).await["type"], "hello");
    let (events, resync, _) = again.read_until_ready().await;
    assert!(resync.is_none(), "{resync:?}");
    let seen: Vec<(String, Value)> = events
        .iter()
        .filter_map(|e| match e["event"].as_str() {
            Some("message.updated") => Some(("edit".into(), e["payload"]["message"]["clientUpdatedAt"].clone())),
            Some("bot.status") => Some(("bot".into(), e["payload"]["at"].clone())),
            _ => None,
        })
        .collect();
    assert!(seen.contains(&("edit".into(), json!(earliest))), "{events:?}");
    assert!(seen.contains(&("edit".into(), json!(latest))), "{events:?}");
    assert!(seen.contains(&("bot".into(), json!(latest))), "{events:?}");
}
