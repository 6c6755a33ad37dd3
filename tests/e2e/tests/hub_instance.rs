//! The hub's instance context (`/kiloclaw/{sandboxId}`, docs/events.md): the conversation list's
//! events (created, renamed, left, activity, read), badges and the bot's status.

mod hub_common;

use futures_util::future::join_all;
use hub_common::*;
use serde_json::json;
use switchboard_e2e::*;

#[tokio::test]
async fn the_first_conversation_in_a_sandbox_reaches_an_instance_context_subscribed_before_it() {
    let api = api();
    let alice = api.user("alice").await;
    let newcomer = api.user(&uid("newcomer")).await;
    let sb = uid("sb");
    let mut h = hub(&api, &newcomer).await;
    let ictx = instance_ctx(&sb);
    // No conversation in this sandbox yet: the subscription is taken all the same.
    h.ws.send_json(&json!({ "type": "context.subscribe", "contexts": [ictx] })).await;
    let frames = barrier(&mut h.ws).await;
    assert!(
        frames.iter().any(|f| f["type"] == json!("context.subscribed") && f["contexts"] == json!([ictx])),
        "{frames:?}"
    );
    let conv = api.create_conversation(&alice, &sb, Some("first"), &[&newcomer.id]).await;
    let ev = expect_hub_event(&mut h.ws, &ictx, "conversation.created").await;
    assert_eq!(ev["payload"]["conversationId"], json!(conv));
}

/// The instance context carries conversation.created/renamed/left/activity/read and bot.status.
#[tokio::test]
async fn instance_context_events() {
    let api = api();
    let (alice, bob, sb, conv1) = room(&api).await;
    let ictx = instance_ctx(&sb);
    let mut h = hub(&api, &bob).await;
    assert_eq!(subscribe(&mut h.ws, std::slice::from_ref(&ictx)).await, vec![ictx.clone()]);

    let conv2 = api.create_conversation(&alice, &sb, Some("second"), &[&bob.id]).await;
    let ev = expect_hub_event(&mut h.ws, &ictx, "conversation.created").await;
    assert_eq!(
        ev["payload"],
        json!({ "conversationId": conv2, "title": "second", "sandboxId": sb, "addedBy": alice.id })
    );

    api.patch(&format!("/v1/conversations/{conv2}"), &alice, &json!({ "title": "2nd" })).await.expect(200);
    let ev = expect_hub_event(&mut h.ws, &ictx, "conversation.renamed").await;
    assert_eq!(ev["payload"], json!({ "conversationId": conv2, "title": "2nd" }));

    let m = api.send_text(&alice, &conv2, "activity").await;
    let ev = expect_hub_event(&mut h.ws, &ictx, "conversation.activity").await;
    assert_eq!(ev["payload"]["conversationId"], json!(conv2));
    assert!(ev["payload"]["lastActivityAt"].as_i64() >= m["createdAt"].as_i64(), "{ev}");

    let r =
        api.post(&format!("/v1/conversations/{conv2}/mark-read"), &bob, &json!({ "lastSeenMessageId": m["id"] })).await;
    let read_at = r.expect(200)["lastReadAt"].clone();
    let ev = expect_hub_event(&mut h.ws, &ictx, "conversation.read").await;
    assert_eq!(ev["payload"]["conversationId"], json!(conv2));
    assert_eq!(ev["payload"]["memberId"], json!(bob.id));
    assert_eq!(ev["payload"]["lastReadAt"], read_at);
    // caught up: the conversation's badge bucket was cleared, and the hub hears the new total
    let ev = expect_hub_event(&mut h.ws, &ictx, "badge.updated").await;
    assert_eq!(ev["payload"], json!({ "badgeBucket": format!("kiloclaw:{sb}:{conv2}"), "total": 0 }));

    let bot = api.bot_token(&sb).await;
    let at = now_ms() + 1_000;
    let r = api.post(&format!("/bot/v1/sandboxes/{sb}/bot-status"), &bot, &json!({ "online": true, "at": at })).await;
    r.expect(200);
    let ev = expect_hub_event(&mut h.ws, &ictx, "bot.status").await;
    assert_eq!(ev["payload"], json!({ "sandboxId": sb, "online": true, "at": at }));

    api.post_empty(&format!("/v1/conversations/{conv1}/leave"), &bob).await.expect(204);
    let ev = expect_hub_event(&mut h.ws, &ictx, "conversation.left").await;
    assert_eq!(ev["payload"], json!({ "conversationId": conv1 }));
}

/// A bot in more conversations than one step of its status fan-out tells (10), with someone else in
/// each: everyone hears `bot.status` once, told by the bot's object in steps from its alarm.
#[tokio::test]
async fn a_bots_status_reaches_everyone_in_all_its_conversations() {
    let api = api();
    let sb = uid("sb");
    let people: Vec<Who> = join_all((0..12).map(|_| api.user("fan"))).await;
    let ictx = instance_ctx(&sb);
    let mut hubs = Vec::new();
    for p in &people {
        api.create_conversation(p, &sb, None, &[]).await;
        let mut h = hub(&api, p).await;
        assert_eq!(subscribe(&mut h.ws, std::slice::from_ref(&ictx)).await, vec![ictx.clone()]);
        hubs.push(h);
    }
    let bot = api.bot_token(&sb).await;
    let at = now_ms();
    let r = api.post(&format!("/bot/v1/sandboxes/{sb}/bot-status"), &bot, &json!({ "online": false, "at": at })).await;
    assert_eq!(r.expect(200), &json!({ "sandboxId": sb, "online": false, "at": at }));
    for h in &mut hubs {
        let ev = expect_hub_event(&mut h.ws, &ictx, "bot.status").await;
        assert_eq!(ev["payload"], json!({ "sandboxId": sb, "online": false, "at": at }));
        assert!(barrier(&mut h.ws).await.is_empty(), "{}: told once", h.ws.label);
    }
}
