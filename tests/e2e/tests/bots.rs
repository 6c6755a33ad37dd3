//! The bot API under /bot/v1/sandboxes/:sandboxId/...

use serde_json::json;
use switchboard_e2e::*;

fn api() -> Api {
    Api::new(shared())
}

#[tokio::test]
async fn bot_lists_reads_posts_edits_deletes() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let bot = api.bot_token(&sb).await;
    let conv = api.create_conversation(&alice, &sb, Some("with bot"), &[]).await;
    let other_sb_conv = api.create_conversation(&alice, &uid("sb"), None, &[]).await;
    let base = format!("/bot/v1/sandboxes/{sb}/conversations");

    // the bot lists its sandbox's conversation (membership may lag briefly)
    let start = std::time::Instant::now();
    let list = loop {
        let r = api.get(&format!("{base}?limit=100"), &bot).await;
        let b = r.expect(200).clone();
        let items = b["conversations"].as_array().unwrap().clone();
        if items.iter().any(|i| i["conversationId"] == json!(conv)) {
            break items;
        }
        assert!(start.elapsed().as_secs() < 15, "bot never listed {conv}: {b}");
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    };
    assert_eq!(list.len(), 1, "only its sandbox's conversation: {list:?}");
    assert_eq!(list[0]["sandboxId"], json!(sb));
    assert_eq!(list[0]["title"], json!("with bot"));

    // detail
    let r = api.get(&format!("{base}/{conv}"), &bot).await;
    let d = r.expect(200).clone();
    assert_eq!(d["id"], json!(conv));
    let me = d["members"].as_array().unwrap().iter().find(|m| m["id"] == json!(bot.id)).cloned();
    assert_eq!(me.unwrap_or_else(|| panic!("bot not a member: {d}"))["kind"], json!("bot"));

    // post: alice sees it live
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &alice).await;
    let r = api.post(&format!("{base}/{conv}/messages"), &bot, &json!({ "content": text("Hello from the bot") })).await;
    let b = r.expect(201).clone();
    let mid = b["messageId"].as_str().unwrap().to_string();
    assert_eq!(b["message"]["senderId"], json!(bot.id));
    assert_eq!(b["message"]["conversationId"], json!(conv));
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["messageId"], json!(mid));
    assert_eq!(ev["payload"]["senderId"], json!(bot.id));
    assert_eq!(ev["payload"]["content"], text("Hello from the bot"));

    // alice's message, to reply to and to fail to edit
    let am = api.send_text(&alice, &conv, "hi bot").await;
    ws.expect_event("message.created").await;
    let r = api
        .post(
            &format!("{base}/{conv}/messages"),
            &bot,
            &json!({ "content": text("reply"), "inReplyToMessageId": am["id"], "clientId": "bot-c1" }),
        )
        .await;
    let reply = r.expect(201).clone();
    assert_eq!(reply["message"]["inReplyToMessageId"], am["id"]);
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["payload"]["replyTo"], json!({ "messageId": am["id"], "senderId": alice.id }));
    // idempotent for bots too
    let r = api
        .post(
            &format!("{base}/{conv}/messages"),
            &bot,
            &json!({ "content": text("reply"), "inReplyToMessageId": am["id"], "clientId": "bot-c1" }),
        )
        .await;
    assert_eq!(r.expect(200)["messageId"], reply["messageId"]);

    // edit own message
    let t = now_ms();
    let r = api
        .patch(
            &format!("{base}/{conv}/messages/{mid}"),
            &bot,
            &json!({ "content": text("Edited by bot"), "timestamp": t }),
        )
        .await;
    let e = r.expect(200).clone();
    assert_eq!(e["messageId"], json!(mid));
    assert_eq!(e["message"]["content"], text("Edited by bot"));
    let ev = ws.expect_event("message.updated").await;
    assert_eq!(ev["payload"]["messageId"], json!(mid));
    assert_eq!(ev["payload"]["clientUpdatedAt"], json!(t));
    let r = api
        .patch(
            &format!("{base}/{conv}/messages/{mid}"),
            &bot,
            &json!({ "content": text("stale"), "timestamp": t - 1000 }),
        )
        .await;
    r.expect_error(409, "edit_conflict");
    // not alice's
    let amid = am["id"].as_str().unwrap();
    let r = api
        .patch(&format!("{base}/{conv}/messages/{amid}"), &bot, &json!({ "content": text("hijack"), "timestamp": t }))
        .await;
    r.expect_error(403, "forbidden");
    api.send_raw("DELETE", &format!("{base}/{conv}/messages/{amid}"), Some(&bot.token), None)
        .await
        .expect_error(403, "forbidden");
    // validation
    let r = api.post(&format!("{base}/{conv}/messages"), &bot, &json!({ "content": [] })).await;
    r.expect_error(400, "invalid_request");
    let r = api
        .post(&format!("{base}/{conv}/messages"), &bot, &json!({ "content": text("x"), "conversationId": conv }))
        .await;
    r.expect_error(400, "invalid_request");

    // list messages
    let r = api.get(&format!("{base}/{conv}/messages?limit=2"), &bot).await;
    let l = r.expect(200).clone();
    let msgs = l["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["id"], reply["messageId"]);
    assert_eq!(msgs[1]["id"], am["id"]);
    assert_eq!(l["hasMore"], json!(true));
    let next = l["nextCursor"].as_str().unwrap();
    let r = api.get(&format!("{base}/{conv}/messages?before={next}"), &bot).await;
    let l2 = r.expect(200).clone();
    let msgs2 = l2["messages"].as_array().unwrap();
    assert_eq!(msgs2.len(), 1);
    assert_eq!(msgs2[0]["id"], json!(mid));
    assert_eq!(msgs2[0]["content"], text("Edited by bot"));

    // delete own message
    let r = api.send_raw("DELETE", &format!("{base}/{conv}/messages/{mid}"), Some(&bot.token), None).await;
    r.expect(204);
    let ev = ws.expect_event("message.deleted").await;
    assert_eq!(ev["payload"]["messageId"], json!(mid));
    let msgs = api.messages(&alice, &conv).await;
    let deleted = msgs.iter().find(|m| m["id"] == json!(mid)).unwrap();
    assert_eq!(deleted["deleted"], json!(true));
    assert_eq!(deleted["content"], json!([]));

    // a conversation of another sandbox, through its own path: not a member
    let r = api.get(&format!("{base}/{other_sb_conv}"), &bot).await;
    r.expect_error(403, "forbidden");
    let r = api.post(&format!("{base}/{other_sb_conv}/messages"), &bot, &json!({ "content": text("intrude") })).await;
    r.expect_error(403, "forbidden");
    // unknown conversation
    api.get(&format!("{base}/{UNKNOWN_ULID}/messages"), &bot).await.expect_error(404, "not_found");
}

#[tokio::test]
async fn bot_of_another_sandbox_is_forbidden() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let conv = api.create_conversation(&alice, &sb, None, &[]).await;
    let m = api.send_text(&alice, &conv, "hi").await;
    let mid = m["id"].as_str().unwrap();
    let intruder = api.bot_token(&uid("sb")).await;
    let base = format!("/bot/v1/sandboxes/{sb}");
    api.get(&format!("{base}/conversations"), &intruder).await.expect_error(403, "forbidden");
    api.get(&format!("{base}/conversations/{conv}"), &intruder).await.expect_error(403, "forbidden");
    api.get(&format!("{base}/conversations/{conv}/messages"), &intruder).await.expect_error(403, "forbidden");
    api.post(&format!("{base}/conversations/{conv}/messages"), &intruder, &json!({ "content": text("x") }))
        .await
        .expect_error(403, "forbidden");
    api.patch(
        &format!("{base}/conversations/{conv}/messages/{mid}"),
        &intruder,
        &json!({ "content": text("x"), "timestamp": now_ms() }),
    )
    .await
    .expect_error(403, "forbidden");
    api.put(&format!("{base}/profile"), &intruder, &json!({ "label": "evil" })).await.expect_error(403, "forbidden");
    api.get(&format!("{base}/profile"), &intruder).await.expect_error(403, "forbidden");
    assert_eq!(api.messages(&alice, &conv).await.len(), 1);
}

#[tokio::test]
async fn human_token_on_bot_routes_is_forbidden() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let conv = api.create_conversation(&alice, &sb, None, &[]).await;
    let base = format!("/bot/v1/sandboxes/{sb}");
    api.get(&format!("{base}/conversations"), &alice).await.expect_error(403, "forbidden");
    api.get(&format!("{base}/conversations/{conv}/messages"), &alice).await.expect_error(403, "forbidden");
    api.post(&format!("{base}/conversations/{conv}/messages"), &alice, &json!({ "content": text("x") }))
        .await
        .expect_error(403, "forbidden");
    api.put(&format!("{base}/profile"), &alice, &json!({ "label": "x" })).await.expect_error(403, "forbidden");
    assert!(api.messages(&alice, &conv).await.is_empty());
}

#[tokio::test]
async fn bot_profile() {
    let api = api();
    let sb = uid("sb");
    let bot = api.bot_token(&sb).await;
    let path = format!("/bot/v1/sandboxes/{sb}/profile");
    let r = api.get(&path, &bot).await;
    assert_eq!(r.expect(200), &json!({ "sandboxId": sb, "label": sb }), "default label is the sandbox id");

    let r = api.put(&path, &bot, &json!({ "label": "Kilo Claw" })).await;
    assert_eq!(r.expect(200), &json!({ "sandboxId": sb, "label": "Kilo Claw" }));
    let r = api.get(&path, &bot).await;
    assert_eq!(r.expect(200), &json!({ "sandboxId": sb, "label": "Kilo Claw" }));

    for (what, body) in [
        ("empty label", json!({ "label": "" })),
        ("81-char label", json!({ "label": "l".repeat(81) })),
        ("missing label", json!({})),
        ("label wrong type", json!({ "label": 3 })),
        ("unknown field", json!({ "label": "x", "avatar": "y" })),
    ] {
        let r = api.put(&path, &bot, &body).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{what}: {} {}",
            r.status,
            r.text
        );
    }
    let r = api.put(&path, &bot, &json!({ "label": "m".repeat(80) })).await;
    r.expect(200);
    let r = api.get(&path, &bot).await;
    assert_eq!(r.expect(200)["label"], json!("m".repeat(80)));
}

#[tokio::test]
async fn members_read_the_bots_current_status() {
    let api = api();
    let alice = api.user("alice").await;
    let carol = api.user("carol").await;
    let sb = uid("sb");
    let bot = api.bot_token(&sb).await;
    let conv = api.create_conversation(&alice, &sb, None, &[]).await;
    let path = format!("/v1/conversations/{conv}/bot-status");

    // never reported: offline since never
    let r = api.get(&path, &alice).await;
    assert_eq!(r.expect(200), &json!({ "sandboxId": sb, "online": false, "at": null }));

    let r = api.post(&format!("/bot/v1/sandboxes/{sb}/bot-status"), &bot, &json!({ "online": true })).await;
    let reported = r.expect(200).clone();
    assert_eq!(api.get(&path, &alice).await.expect(200), &reported);
    // the bot reads it through its own conversation too
    assert_eq!(api.get(&path, &bot).await.expect(200), &reported);

    // not a member
    api.get(&path, &carol).await.expect_error(403, "forbidden");
}
