//! Messages: create, validation, paging, edit, delete, reactions, replies.

use serde_json::{json, Value};
use switchboard_e2e::*;

fn api() -> Api {
    Api::new(shared())
}

struct Room {
    api: Api,
    alice: Who,
    bob: Who,
    conv: String,
}

async fn room() -> Room {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("room"), &[&bob.id]).await;
    Room { api, alice, bob, conv }
}

fn ids(msgs: &[Value]) -> Vec<String> {
    msgs.iter().map(|m| m["id"].as_str().unwrap_or_else(|| panic!("message without id: {m}")).to_string()).collect()
}

fn actions_block() -> Value {
    json!({
        "type": "actions",
        "groupId": "perm-1",
        "actions": [
            { "label": "Allow once", "style": "primary", "value": "allow-once" },
            { "label": "Always", "style": "secondary", "value": "allow-always" },
            { "label": "Deny", "style": "danger", "value": "deny" }
        ]
    })
}

#[tokio::test]
async fn create_text_message() {
    let Room { api, alice, bob, conv } = room().await;
    let before = now_ms();
    let r =
        api.post("/v1/messages", &alice, &json!({ "conversationId": conv, "content": text("  hello there \n") })).await;
    let b = r.expect(201).clone();
    let id = b["messageId"].as_str().unwrap_or_else(|| panic!("{b}")).to_string();
    assert!(is_ulid(&id), "messageId not a ULID: {id}");
    assert!(b.get("clientId").is_none_or(|c| c.is_null()), "no clientId was sent: {b}");
    let m = &b["message"];
    assert_eq!(m["id"], json!(id));
    assert_eq!(m["conversationId"], json!(conv));
    assert_eq!(m["senderId"], json!(alice.id));
    assert_eq!(m["content"], text("hello there"), "text is trimmed");
    assert!(m["inReplyToMessageId"].is_null(), "{m}");
    let created = m["createdAt"].as_i64().unwrap_or_else(|| panic!("createdAt: {m}"));
    assert!(created >= before - 5_000 && created <= now_ms() + 5_000, "createdAt {created} not about now");
    assert_eq!(m["deleted"], json!(false));
    assert_eq!(m["deliveryFailed"], json!(false));
    assert_eq!(m["reactions"], json!([]));

    // the other member reads it, identical
    let list = api.messages(&bob, &conv).await;
    assert_eq!(list.len(), 1);
    assert_eq!(&list[0], m, "listed message differs from the created one");
}

#[tokio::test]
async fn create_actions_and_mixed_messages() {
    let Room { api, alice, bob, conv } = room().await;
    let content = json!([actions_block()]);
    let r = api.post("/v1/messages", &alice, &json!({ "conversationId": conv, "content": content })).await;
    assert_eq!(r.expect(201)["message"]["content"], content);

    let resolved = json!([{
        "type": "actions", "groupId": "perm-2",
        "actions": [{ "label": "OK", "style": "primary", "value": "allow-once" }],
        "resolved": { "value": "allow-once", "by": alice.id, "at": 1_700_000_000_000i64 }
    }]);
    let r = api.post("/v1/messages", &alice, &json!({ "conversationId": conv, "content": resolved })).await;
    assert_eq!(r.expect(201)["message"]["content"], resolved);

    let mixed = json!([{ "type": "text", "text": "Run this?" }, actions_block(), { "type": "text", "text": "second" }]);
    let r = api.post("/v1/messages", &bob, &json!({ "conversationId": conv, "content": mixed })).await;
    assert_eq!(r.expect(201)["message"]["content"], mixed);

    let list = api.messages(&alice, &conv).await;
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["content"], mixed);
    assert_eq!(list[1]["content"], resolved);
    assert_eq!(list[2]["content"], content);
}

#[tokio::test]
async fn boundaries_are_accepted() {
    let Room { api, alice, conv, .. } = room().await;
    let twenty: Vec<Value> = (0..20).map(|i| json!({ "type": "text", "text": format!("block {i}") })).collect();
    let long = "a".repeat(8000);
    let ten_actions: Vec<Value> =
        (0..10).map(|i| json!({ "label": format!("a{i}"), "style": "primary", "value": "deny" })).collect();
    let bodies = vec![
        json!(twenty),
        text(&long),
        json!([{ "type": "actions", "groupId": "g".repeat(64), "actions": ten_actions }]),
        json!([{ "type": "actions", "groupId": "g", "actions": [{ "label": "l".repeat(100), "style": "danger", "value": "deny" }] }]),
        // 8000 characters, not bytes
        text(&"é".repeat(8000)),
        // trimmed to 8000
        text(&format!("  {}  ", "b".repeat(8000))),
    ];
    for content in &bodies {
        let r = api.post("/v1/messages", &alice, &json!({ "conversationId": conv, "content": content })).await;
        let b = r.expect(201);
        assert_eq!(b["message"]["content"].as_array().unwrap().len(), content.as_array().unwrap().len());
    }
    assert_eq!(api.messages(&alice, &conv).await.len(), bodies.len());
}

/// Every invalid body answers 400 and creates nothing: the list is unchanged and the next event on
/// a member's socket is the next valid message, one seq after the ready seq.
#[tokio::test]
async fn validation_errors_create_nothing() {
    let Room { api, alice, bob, conv } = room().await;
    let first = api.send_text(&alice, &conv, "the only message").await;
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &bob).await;

    let ok_action = json!({ "label": "ok", "style": "primary", "value": "deny" });
    let blocks21: Vec<Value> = (0..21).map(|i| json!({ "type": "text", "text": format!("b{i}") })).collect();
    let actions11: Vec<Value> = (0..11).map(|_| ok_action.clone()).collect();
    let c = conv.clone();
    let with = |content: Value| json!({ "conversationId": c, "content": content });
    let action_block = |action: Value| json!([{ "type": "actions", "groupId": "g", "actions": [action] }]);
    let cases: Vec<(&str, Value)> = vec![
        ("empty content", with(json!([]))),
        ("21 blocks", with(json!(blocks21))),
        ("8001-char text", with(text(&"x".repeat(8001)))),
        ("empty text", with(text(""))),
        ("whitespace-only text", with(text(" \n\t  "))),
        ("text of wrong type", with(json!([{ "type": "text", "text": 5 }]))),
        ("text block without text", with(json!([{ "type": "text" }]))),
        ("unknown block type", with(json!([{ "type": "image", "url": "http://x" }]))),
        ("block without type", with(json!([{ "text": "hi" }]))),
        ("block not an object", with(json!(["hi"]))),
        ("content is a string", with(json!("hello"))),
        ("content missing", json!({ "conversationId": conv })),
        ("conversationId missing", json!({ "content": text("hi") })),
        ("conversationId wrong type", json!({ "conversationId": 12, "content": text("hi") })),
        ("bad style", with(action_block(json!({ "label": "x", "style": "warning", "value": "deny" })))),
        ("bad value", with(action_block(json!({ "label": "x", "style": "primary", "value": "maybe" })))),
        ("empty label", with(action_block(json!({ "label": "", "style": "primary", "value": "deny" })))),
        (
            "101-char label",
            with(action_block(json!({ "label": "l".repeat(101), "style": "primary", "value": "deny" }))),
        ),
        ("11 actions", with(json!([{ "type": "actions", "groupId": "g", "actions": actions11 }]))),
        ("0 actions", with(json!([{ "type": "actions", "groupId": "g", "actions": [] }]))),
        ("empty groupId", with(json!([{ "type": "actions", "groupId": "", "actions": [ok_action] }]))),
        ("65-char groupId", with(json!([{ "type": "actions", "groupId": "g".repeat(65), "actions": [ok_action] }]))),
        ("actions not an array", with(json!([{ "type": "actions", "groupId": "g", "actions": "allow" }]))),
        (
            "resolved not an object",
            with(json!([{ "type": "actions", "groupId": "g", "actions": [ok_action], "resolved": "yes" }])),
        ),
        ("unknown top-level field", json!({ "conversationId": conv, "content": text("hi"), "priority": "high" })),
        ("unknown field in a text block", with(json!([{ "type": "text", "text": "hi", "bold": true }]))),
        (
            "unknown field in an action",
            with(action_block(json!({ "label": "x", "style": "primary", "value": "deny", "icon": "x" }))),
        ),
        (
            "bad inReplyToMessageId",
            json!({ "conversationId": conv, "content": text("hi"), "inReplyToMessageId": "nope" }),
        ),
        ("empty clientId", json!({ "conversationId": conv, "content": text("hi"), "clientId": "" })),
        ("129-char clientId", json!({ "conversationId": conv, "content": text("hi"), "clientId": "c".repeat(129) })),
        (
            "clientId with control char",
            json!({ "conversationId": conv, "content": text("hi"), "clientId": "abc\u{7}def" }),
        ),
        ("clientId wrong type", json!({ "conversationId": conv, "content": text("hi"), "clientId": 7 })),
    ];
    for (what, body) in &cases {
        let r = api.post("/v1/messages", &alice, body).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{what}: expected 400 invalid_request, got {} {}",
            r.status,
            r.text
        );
    }
    // the message names the offending field
    let r = api
        .post("/v1/messages", &alice, &json!({ "conversationId": conv, "content": text("hi"), "priority": "high" }))
        .await;
    assert!(r.error_message().contains("priority"), "message should name the field: {}", r.text);
    let r = api.post("/v1/messages", &alice, &json!({ "content": text("hi") })).await;
    assert!(r.error_message().contains("conversationId"), "message should name the field: {}", r.text);

    for (what, raw) in [
        ("malformed JSON", "{\"conversationId\": "),
        ("array", "[]"),
        ("null", "null"),
        ("string", "\"hi\""),
        ("empty body", ""),
    ] {
        let r = api.send_raw("POST", "/v1/messages", Some(&alice.token), Some(raw.to_string())).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_json")),
            "{what}: expected 400 invalid_json, got {} {}",
            r.status,
            r.text
        );
    }

    // nothing was created
    let list = api.messages(&alice, &conv).await;
    assert_eq!(ids(&list), vec![first["id"].as_str().unwrap().to_string()], "invalid sends created messages");
    // and nothing was emitted
    let next = api.send_text(&alice, &conv, "valid").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 1), "events were emitted for invalid sends: {ev}");
    assert_eq!(ev["payload"]["messageId"], next["id"]);
}

#[tokio::test]
async fn oversize_body_is_413() {
    let Room { api, alice, conv, .. } = room().await;
    let body = json!({ "conversationId": conv, "content": text(&"z".repeat(300 * 1024)) });
    api.post("/v1/messages", &alice, &body).await.expect_error(413, "payload_too_large");
    assert!(api.messages(&alice, &conv).await.is_empty());
}

#[tokio::test]
async fn list_newest_first_with_paging() {
    let Room { api, alice, bob, conv } = room().await;
    let mut sent = Vec::new();
    for i in 0..7 {
        let who = if i % 2 == 0 { &alice } else { &bob };
        sent.push(api.send_text(who, &conv, &format!("m{i}")).await["id"].as_str().unwrap().to_string());
    }
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    let all = api.messages(&bob, &conv).await;
    assert_eq!(ids(&all), newest_first);
    for w in all.windows(2) {
        assert!(w[0]["createdAt"].as_i64() >= w[1]["createdAt"].as_i64(), "createdAt not descending: {w:?}");
    }

    // pages of 3: [6,5,4] [3,2,1] [0]
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut path = format!("/v1/conversations/{conv}/messages?limit=3");
        if let Some(b) = &before {
            path.push_str(&format!("&before={b}"));
        }
        let r = api.get(&path, &alice).await;
        let b = r.expect(200).clone();
        let page = ids(b["messages"].as_array().unwrap());
        pages.push(page.len());
        seen.extend(page);
        assert!(pages.len() <= 5, "paging does not end");
        if b["hasMore"] == json!(true) {
            before =
                Some(b["nextCursor"].as_str().unwrap_or_else(|| panic!("hasMore without nextCursor: {b}")).to_string());
        } else {
            assert_eq!(b["hasMore"], json!(false));
            break;
        }
    }
    assert_eq!(pages, vec![3, 3, 1]);
    assert_eq!(seen, newest_first);

    // an explicit before: the messages strictly older than it
    let r = api.get(&format!("/v1/conversations/{conv}/messages?before={}&limit=2", sent[3]), &alice).await;
    let b = r.expect(200);
    assert_eq!(ids(b["messages"].as_array().unwrap()), vec![sent[2].clone(), sent[1].clone()]);
    assert_eq!(b["hasMore"], json!(true));
    let r = api.get(&format!("/v1/conversations/{conv}/messages?before={}", sent[0]), &alice).await;
    let b = r.expect(200);
    assert_eq!(b["messages"], json!([]));
    assert_eq!(b["hasMore"], json!(false));
    // default limit is 50: exact page when fewer
    let r = api.get(&format!("/v1/conversations/{conv}/messages"), &alice).await;
    assert_eq!(r.expect(200)["messages"].as_array().unwrap().len(), 7);

    for q in ["limit=0", "limit=101", "limit=x", "before=nope"] {
        api.get(&format!("/v1/conversations/{conv}/messages?{q}"), &alice).await.expect_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn edit_message() {
    let Room { api, alice, bob, conv } = room().await;
    let m = api.send_text(&alice, &conv, "first draft").await;
    let mid = m["id"].as_str().unwrap().to_string();
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &bob).await;

    let t1 = now_ms();
    let r = api
        .patch(
            &format!("/v1/messages/{mid}"),
            &alice,
            &json!({ "conversationId": conv, "content": text("second draft"), "timestamp": t1 }),
        )
        .await;
    let b = r.expect(200).clone();
    assert_eq!(b["messageId"], json!(mid));
    assert_eq!(b["message"]["id"], json!(mid));
    assert_eq!(b["message"]["content"], text("second draft"));
    assert_eq!(b["message"]["clientUpdatedAt"], json!(t1));
    assert!(b["message"]["updatedAt"].is_i64(), "updatedAt after an edit: {b}");
    assert_eq!(b["message"]["createdAt"], m["createdAt"], "createdAt changed on edit");

    let ev = ws.expect_event("message.updated").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["messageId"], json!(mid));
    assert_eq!(ev["payload"]["content"], text("second draft"));
    assert_eq!(ev["payload"]["clientUpdatedAt"], json!(t1));
    assert!(ev["payload"]["message"].get("content").is_none(), "an event carries the content once: {ev}");
    assert_eq!(ev["payload"]["message"]["clientUpdatedAt"], json!(t1));

    // a stale timestamp: 409, nothing changes
    let r = api
        .patch(
            &format!("/v1/messages/{mid}"),
            &alice,
            &json!({ "conversationId": conv, "content": text("stale"), "timestamp": t1 - 10_000 }),
        )
        .await;
    r.expect_error(409, "edit_conflict");
    // someone else's message: 403
    let r = api
        .patch(
            &format!("/v1/messages/{mid}"),
            &bob,
            &json!({ "conversationId": conv, "content": text("bob was here"), "timestamp": t1 + 5_000 }),
        )
        .await;
    r.expect_error(403, "forbidden");
    // validation
    let r = api
        .patch(
            &format!("/v1/messages/{mid}"),
            &alice,
            &json!({ "conversationId": conv, "content": [], "timestamp": t1 + 5_000 }),
        )
        .await;
    r.expect_error(400, "invalid_request");
    let r = api
        .patch(&format!("/v1/messages/{mid}"), &alice, &json!({ "conversationId": conv, "content": text("x") }))
        .await;
    r.expect_error(400, "invalid_request");
    let r = api
        .patch(
            &format!("/v1/messages/{mid}"),
            &alice,
            &json!({ "conversationId": conv, "content": text("x"), "timestamp": "soon" }),
        )
        .await;
    r.expect_error(400, "invalid_request");
    // unknown message
    let r = api
        .patch(
            &format!("/v1/messages/{UNKNOWN_ULID}"),
            &alice,
            &json!({ "conversationId": conv, "content": text("x"), "timestamp": t1 + 5_000 }),
        )
        .await;
    r.expect_error(404, "not_found");
    let r = api
        .patch(
            "/v1/messages/not-a-ulid",
            &alice,
            &json!({ "conversationId": conv, "content": text("x"), "timestamp": t1 + 5_000 }),
        )
        .await;
    r.expect_error(400, "invalid_request");

    let list = api.messages(&alice, &conv).await;
    assert_eq!(list[0]["content"], text("second draft"), "a rejected edit changed the message");
    assert_eq!(list[0]["clientUpdatedAt"], json!(t1));

    // a newer edit works; its event is the next one (the rejected edits emitted nothing)
    let t2 = t1 + 1_000;
    let r = api
        .patch(
            &format!("/v1/messages/{mid}"),
            &alice,
            &json!({ "conversationId": conv, "content": text("final"), "timestamp": t2 }),
        )
        .await;
    r.expect(200);
    let ev = ws.expect_event("message.updated").await;
    assert_eq!(ev["seq"], json!(ready + 2));
    assert_eq!(ev["payload"]["content"], text("final"));
    assert_eq!(api.messages(&bob, &conv).await[0]["content"], text("final"));
}

#[tokio::test]
async fn delete_message() {
    let Room { api, alice, bob, conv } = room().await;
    let m = api.send_text(&alice, &conv, "regrettable").await;
    let mid = m["id"].as_str().unwrap().to_string();
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &bob).await;

    // only the sender may delete
    api.delete(&format!("/v1/messages/{mid}?conversationId={conv}"), &bob).await.expect_error(403, "forbidden");
    // conversationId is required
    api.delete(&format!("/v1/messages/{mid}"), &alice).await.expect_error(400, "invalid_request");

    let r = api.delete(&format!("/v1/messages/{mid}?conversationId={conv}"), &alice).await;
    r.expect(204);
    assert!(r.text.is_empty(), "204 with a body: {}", r.text);
    let ev = ws.expect_event("message.deleted").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["messageId"], json!(mid));

    let list = api.messages(&bob, &conv).await;
    assert_eq!(list.len(), 1, "a soft-deleted message stays listed");
    assert_eq!(list[0]["id"], json!(mid));
    assert_eq!(list[0]["deleted"], json!(true));
    assert_eq!(list[0]["content"], json!([]));

    // again: 204 and no second event
    api.delete(&format!("/v1/messages/{mid}?conversationId={conv}"), &alice).await.expect(204);
    // editing or reacting to it: 409 message_deleted
    api.patch(
        &format!("/v1/messages/{mid}"),
        &alice,
        &json!({ "conversationId": conv, "content": text("undo"), "timestamp": now_ms() }),
    )
    .await
    .expect_error(409, "message_deleted");
    api.post(&format!("/v1/messages/{mid}/reactions"), &bob, &json!({ "conversationId": conv, "emoji": "👍" }))
        .await
        .expect_error(409, "message_deleted");
    api.delete(&format!("/v1/messages/{UNKNOWN_ULID}?conversationId={conv}"), &alice)
        .await
        .expect_error(404, "not_found");

    let next = api.send_text(&alice, &conv, "next").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 2), "the repeated delete (or a rejected call) emitted an event");
    assert_eq!(ev["payload"]["messageId"], next["id"]);
    let list = api.messages(&alice, &conv).await;
    assert_eq!(list[1]["deleted"], json!(true));
    assert_eq!(list[1]["content"], json!([]));
}

#[tokio::test]
async fn reactions() {
    let Room { api, alice, bob, conv } = room().await;
    let m = api.send_text(&alice, &conv, "react to me").await;
    let mid = m["id"].as_str().unwrap().to_string();
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &alice).await;
    let path = format!("/v1/messages/{mid}/reactions");

    let r = api.post(&path, &bob, &json!({ "conversationId": conv, "emoji": "👍" })).await;
    let b = r.expect(201).clone();
    assert_eq!(b["id"], json!(mid));
    assert_eq!(b["reactions"], json!([{ "emoji": "👍", "count": 1, "memberIds": [bob.id] }]));
    // again: 200, unchanged, no event
    let r = api.post(&path, &bob, &json!({ "conversationId": conv, "emoji": "👍" })).await;
    assert_eq!(r.expect(200)["reactions"], json!([{ "emoji": "👍", "count": 1, "memberIds": [bob.id] }]));
    let r = api.post(&path, &alice, &json!({ "conversationId": conv, "emoji": "👍" })).await;
    let b = r.expect(201).clone();
    let rs = b["reactions"].as_array().unwrap();
    assert_eq!(rs.len(), 1, "{b}");
    assert_eq!(rs[0]["count"], json!(2));
    let mut members: Vec<String> =
        rs[0]["memberIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    members.sort();
    let mut want = vec![alice.id.clone(), bob.id.clone()];
    want.sort();
    assert_eq!(members, want);
    let r = api.post(&path, &bob, &json!({ "conversationId": conv, "emoji": "🎉" })).await;
    r.expect(201);

    for (i, (who, emoji)) in [(&bob, "👍"), (&alice, "👍"), (&bob, "🎉")].iter().enumerate() {
        let ev = ws.expect_event("reaction.added").await;
        assert_eq!(ev["seq"], json!(ready + 1 + i as i64));
        assert_eq!(ev["payload"], json!({ "messageId": mid, "memberId": who.id, "emoji": emoji }));
    }

    // the list shows the summaries
    let list = api.messages(&bob, &conv).await;
    let rs = list[0]["reactions"].as_array().unwrap().clone();
    let thumbs = rs.iter().find(|r| r["emoji"] == json!("👍")).unwrap_or_else(|| panic!("{rs:?}"));
    assert_eq!(thumbs["count"], json!(2));
    let party = rs.iter().find(|r| r["emoji"] == json!("🎉")).unwrap_or_else(|| panic!("{rs:?}"));
    assert_eq!(party["count"], json!(1));
    assert_eq!(party["memberIds"], json!([bob.id]));

    // remove
    let r = api.delete(&format!("{path}?conversationId={conv}&emoji={}", urlencode("👍")), &bob).await;
    let b = r.expect(200).clone();
    assert_eq!(b["id"], json!(mid));
    let thumbs = b["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["emoji"] == json!("👍"))
        .cloned()
        .unwrap_or_else(|| panic!("{b}"));
    assert_eq!(thumbs, json!({ "emoji": "👍", "count": 1, "memberIds": [alice.id] }));
    let ev = ws.expect_event("reaction.removed").await;
    assert_eq!(ev["seq"], json!(ready + 4));
    assert_eq!(ev["payload"], json!({ "messageId": mid, "memberId": bob.id, "emoji": "👍" }));
    let r = api.delete(&format!("{path}?conversationId={conv}&emoji={}", urlencode("🎉")), &bob).await;
    let b = r.expect(200).clone();
    assert!(
        b["reactions"].as_array().unwrap().iter().all(|r| r["emoji"] != json!("🎉")),
        "a reaction with count 0 is still listed: {b}"
    );
    ws.expect_event("reaction.removed").await;

    // validation
    let emoji_65_bytes = "😀".repeat(16) + "a"; // 65 bytes
    for (what, emoji) in [
        ("empty", json!("")),
        ("65 bytes", json!(emoji_65_bytes)),
        ("control char", json!("a\u{1}")),
        ("not a string", json!(1)),
    ] {
        let r = api.post(&path, &bob, &json!({ "conversationId": conv, "emoji": emoji })).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "emoji {what}: {} {}",
            r.status,
            r.text
        );
    }
    // 64 bytes is fine
    let r = api.post(&path, &bob, &json!({ "conversationId": conv, "emoji": "😀".repeat(16) })).await;
    r.expect(201);
    api.post(&path, &bob, &json!({ "emoji": "👍" })).await.expect_error(400, "invalid_request");
    api.post(
        &format!("/v1/messages/{UNKNOWN_ULID}/reactions"),
        &bob,
        &json!({ "conversationId": conv, "emoji": "👍" }),
    )
    .await
    .expect_error(404, "not_found");
}

#[tokio::test]
async fn reply_to() {
    let Room { api, alice, bob, conv } = room().await;
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &alice).await;
    let m1 = api.send_text(&alice, &conv, "question?").await;
    let ev = ws.expect_event("message.created").await;
    assert!(ev["payload"]["replyTo"].is_null(), "replyTo of a plain message: {ev}");
    assert!(ev["payload"]["inReplyToMessageId"].is_null(), "{ev}");

    let r = api
        .post(
            "/v1/messages",
            &bob,
            &json!({ "conversationId": conv, "content": text("answer"), "inReplyToMessageId": m1["id"] }),
        )
        .await;
    let b = r.expect(201).clone();
    assert_eq!(b["message"]["inReplyToMessageId"], m1["id"]);
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 2));
    assert_eq!(ev["payload"]["inReplyToMessageId"], m1["id"]);
    assert_eq!(ev["payload"]["replyTo"], json!({ "messageId": m1["id"], "senderId": alice.id }));
    assert_eq!(ev["payload"]["senderId"], json!(bob.id));
    assert_eq!(ev["payload"]["message"]["inReplyToMessageId"], m1["id"]);
    let list = api.messages(&alice, &conv).await;
    assert_eq!(list[0]["inReplyToMessageId"], m1["id"]);
}

#[tokio::test]
async fn created_event_payload() {
    let Room { api, alice, bob, conv } = room().await;
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &bob).await;
    let r = api
        .post(
            "/v1/messages",
            &alice,
            &json!({ "conversationId": conv, "content": text("with id"), "clientId": "client-1" }),
        )
        .await;
    let b = r.expect(201).clone();
    assert_eq!(b["clientId"], json!("client-1"));
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    let p = &ev["payload"];
    assert_eq!(p["messageId"], b["messageId"]);
    assert_eq!(p["senderId"], json!(alice.id));
    assert_eq!(p["content"], text("with id"));
    assert_eq!(p["clientId"], json!("client-1"));
    assert!(p["inReplyToMessageId"].is_null() && p["replyTo"].is_null(), "{p}");
    // `message` is the message without its content (the event carries it once, above).
    let mut rest = b["message"].clone();
    rest.as_object_mut().unwrap().remove("content");
    assert_eq!(p["message"], rest);
}

#[tokio::test]
async fn unknown_message_is_404() {
    let Room { api, alice, conv, .. } = room().await;
    let u = UNKNOWN_ULID;
    api.patch(
        &format!("/v1/messages/{u}"),
        &alice,
        &json!({ "conversationId": conv, "content": text("x"), "timestamp": now_ms() }),
    )
    .await
    .expect_error(404, "not_found");
    api.delete(&format!("/v1/messages/{u}?conversationId={conv}"), &alice).await.expect_error(404, "not_found");
    api.post(&format!("/v1/messages/{u}/reactions"), &alice, &json!({ "conversationId": conv, "emoji": "👍" }))
        .await
        .expect_error(404, "not_found");
    api.delete(&format!("/v1/messages/{u}/reactions?conversationId={conv}&emoji=x"), &alice)
        .await
        .expect_error(404, "not_found");
    // a message id that exists, but in another conversation
    let other = api.create_conversation(&alice, &uid("sb"), None, &[]).await;
    let m = api.send_text(&alice, &other, "elsewhere").await;
    let mid = m["id"].as_str().unwrap();
    api.patch(
        &format!("/v1/messages/{mid}"),
        &alice,
        &json!({ "conversationId": conv, "content": text("x"), "timestamp": now_ms() }),
    )
    .await
    .expect_error(404, "not_found");
    api.delete(&format!("/v1/messages/{mid}?conversationId={conv}"), &alice).await.expect_error(404, "not_found");
    assert_eq!(api.messages(&alice, &other).await[0]["content"], text("elsewhere"));
}
