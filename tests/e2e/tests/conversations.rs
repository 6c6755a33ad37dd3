//! Conversations: create, list (order, paging, filter), detail, rename, members, leave, access.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_e2e::*;

fn api() -> Api {
    Api::new(shared())
}

fn member_ids(detail: &Value) -> Vec<String> {
    let mut ids: Vec<String> = detail["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members array: {detail}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_else(|| panic!("member without id: {m}")).to_string())
        .collect();
    ids.sort();
    ids
}

fn ids_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["conversationId"].as_str().unwrap_or_else(|| panic!("item without conversationId: {i}")).to_string())
        .collect()
}

#[tokio::test]
async fn create_with_title_and_detail() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let before = now_ms();
    let r = api.post("/v1/conversations", &alice, &json!({ "sandboxId": sb, "title": "Hello world" })).await;
    let b = r.expect(201).clone();
    let id = b["conversationId"].as_str().unwrap_or_else(|| panic!("{}", r.text)).to_string();
    assert!(is_ulid(&id), "not a ULID: {id}");
    let item = &b["conversationListItem"];
    assert_eq!(item["conversationId"], json!(id), "{b}");
    assert_eq!(item["title"], json!("Hello world"), "{b}");
    assert_eq!(item["sandboxId"], json!(sb), "{b}");
    let joined = item["joinedAt"].as_i64().unwrap_or_else(|| panic!("joinedAt not an integer: {b}"));
    assert!(joined >= before - 5_000 && joined <= now_ms() + 5_000, "joinedAt {joined} is not about now");
    for k in ["lastActivityAt", "lastReadAt"] {
        assert!(
            item.get(k).is_some() && (item[k].is_null() || item[k].is_i64()),
            "{k} missing or not integer/null: {b}"
        );
    }

    let r = api.get(&format!("/v1/conversations/{id}"), &alice).await;
    let d = r.expect(200);
    assert_eq!(d["id"], json!(id));
    assert_eq!(d["title"], json!("Hello world"));
    assert_eq!(d["sandboxId"], json!(sb));
    assert_eq!(d["createdBy"], json!(alice.id));
    assert!(d["createdAt"].is_i64(), "createdAt: {d}");
    let members = d["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "creator and the sandbox's bot: {d}");
    let bot_id = format!("bot:kiloclaw:{sb}");
    let find = |id: &str| {
        members.iter().find(|m| m["id"] == json!(id)).cloned().unwrap_or_else(|| panic!("{id} not a member: {d}"))
    };
    assert_eq!(find(&alice.id)["kind"], json!("user"));
    assert_eq!(find(&bot_id)["kind"], json!("bot"));
    assert!(find(&alice.id)["joinedAt"].is_i64() && find(&bot_id)["joinedAt"].is_i64(), "joinedAt: {d}");

    // it is in the creator's list
    let list = api.all_conversations(&alice, "").await;
    assert_eq!(ids_of(&list), vec![id.clone()]);
    assert_eq!(list[0]["title"], json!("Hello world"));
    assert_eq!(list[0]["sandboxId"], json!(sb));
}

#[tokio::test]
async fn create_without_title() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let r = api.post("/v1/conversations", &alice, &json!({ "sandboxId": sb })).await;
    let b = r.expect(201).clone();
    assert!(b["conversationListItem"]["title"].is_null(), "title should be null: {b}");
    let id = b["conversationId"].as_str().unwrap();
    let d = api.get(&format!("/v1/conversations/{id}"), &alice).await;
    assert!(d.expect(200)["title"].is_null(), "{}", d.text);
}

#[tokio::test]
async fn create_with_additional_members() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let carol = api.user("carol").await;
    let sb = uid("sb");
    let id = api.create_conversation(&alice, &sb, Some("team"), &[&bob.id, &carol.id]).await;
    let d = api.get(&format!("/v1/conversations/{id}"), &alice).await;
    let d = d.expect(200).clone();
    let mut want = vec![alice.id.clone(), bob.id.clone(), carol.id.clone(), format!("bot:kiloclaw:{sb}")];
    want.sort();
    assert_eq!(member_ids(&d), want);
    for m in d["members"].as_array().unwrap() {
        let kind = if m["id"].as_str().unwrap().starts_with("bot:") { "bot" } else { "user" };
        assert_eq!(m["kind"], json!(kind), "{m}");
    }
    // the added members see it in their lists and may read it
    for who in [&bob, &carol] {
        api.wait_listed(who, &id, true).await;
        api.get(&format!("/v1/conversations/{id}"), who).await.expect(200);
        api.get(&format!("/v1/conversations/{id}/messages"), who).await.expect(200);
    }
}

#[tokio::test]
async fn create_validation() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let too_many: Vec<String> = (0..101).map(|i| format!("{}-{i}", uid("m"))).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("missing sandboxId", json!({ "title": "x" }), "invalid_request"),
        ("bad sandboxId", json!({ "sandboxId": "not ok!" }), "invalid_request"),
        ("sandboxId too long", json!({ "sandboxId": "a".repeat(65) }), "invalid_request"),
        ("sandboxId wrong type", json!({ "sandboxId": 5 }), "invalid_request"),
        ("title wrong type", json!({ "sandboxId": sb, "title": 5 }), "invalid_request"),
        ("additionalMembers wrong type", json!({ "sandboxId": sb, "additionalMembers": "bob" }), "invalid_request"),
        ("101 additional members", json!({ "sandboxId": sb, "additionalMembers": too_many }), "invalid_request"),
        ("unknown field", json!({ "sandboxId": sb, "color": "red" }), "invalid_request"),
        ("array body", json!([{ "sandboxId": sb }]), "invalid_json"),
    ];
    for (what, body, code) in cases {
        let r = api.post("/v1/conversations", &alice, &body).await;
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (400, Some(code)), "{what}: {} {}", r.status, r.text);
    }
    let r = api.send_raw("POST", "/v1/conversations", Some(&alice.token), Some("{\"sandboxId\":".into())).await;
    r.expect_error(400, "invalid_json");
    // the message names the unknown field
    let r = api.post("/v1/conversations", &alice, &json!({ "sandboxId": sb, "color": "red" })).await;
    assert!(r.error_message().contains("color"), "message should name the field: {}", r.text);
    // a wrong type's message starts with the field's path
    for (body, field) in [
        (json!({ "sandboxId": 5 }), "sandboxId"),
        (json!({ "sandboxId": sb, "title": 5 }), "title"),
        (json!({ "sandboxId": sb, "additionalMembers": ["bob", 7] }), "additionalMembers[1]"),
    ] {
        let r = api.post("/v1/conversations", &alice, &body).await;
        r.expect_error(400, "invalid_request");
        assert!(r.error_message().starts_with(&format!("{field}: ")), "should start with {field}: {}", r.text);
    }
    // nothing was created
    assert_eq!(api.all_conversations(&alice, "").await, Vec::<Value>::new());
    // exactly 100 additional members is fine
    let hundred: Vec<String> = (0..100).map(|i| format!("{}-{i}", uid("m"))).collect();
    let r = api.post("/v1/conversations", &alice, &json!({ "sandboxId": sb, "additionalMembers": hundred })).await;
    r.expect(201);
}

#[tokio::test]
async fn bots_cannot_create_conversations() {
    let api = api();
    let sb = uid("sb");
    let bot = api.bot_token(&sb).await;
    api.post("/v1/conversations", &bot, &json!({ "sandboxId": sb })).await.expect_error(403, "forbidden");
}

/// GET /v1/conversations is in the humans' section of docs/api.md; a bot lists through
/// /bot/v1/sandboxes/:sandboxId/conversations ("a bot calling a human-only route": 403).
#[tokio::test]
async fn bot_token_on_human_list_route_is_forbidden() {
    let api = api();
    let bot = api.bot_token(&uid("sb")).await;
    api.get("/v1/conversations", &bot).await.expect_error(403, "forbidden");
}

/// Newest activity (or join) first, then id descending; cursor paging walks the same order.
#[tokio::test]
async fn list_order_and_paging() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let a = api.create_conversation(&alice, &sb, Some("A"), &[]).await;
    let b = api.create_conversation(&alice, &sb, Some("B"), &[]).await;
    let c = api.create_conversation(&alice, &sb, Some("C"), &[]).await;
    let d = api.create_conversation(&alice, &sb, Some("D"), &[]).await;
    // before any activity: by join time, newest first
    assert_eq!(ids_of(&api.all_conversations(&alice, "").await), vec![d.clone(), c.clone(), b.clone(), a.clone()]);

    // activity in B then A moves them to the front (after at most ACTIVITY_FLUSH_MS)
    api.send_text(&alice, &b, "bump b").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    api.send_text(&alice, &a, "bump a").await;
    let want = vec![a.clone(), b.clone(), d.clone(), c.clone()];
    let list = api.wait_for_list(&alice, "", "the list is ordered A, B, D, C", |l| ids_of(l) == want).await;
    let a_item = &list[0];
    assert!(a_item["lastActivityAt"].is_i64(), "lastActivityAt after a message: {a_item}");
    assert!(list[0]["lastActivityAt"].as_i64() >= list[1]["lastActivityAt"].as_i64(), "{list:?}");

    // paging with limit 1 and limit 3 gives the same order
    for limit in [1usize, 3] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("/v1/conversations?limit={limit}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let r = api.get(&path, &alice).await;
            let body = r.expect(200).clone();
            let items = body["conversations"].as_array().unwrap().clone();
            assert!(items.len() <= limit, "page larger than limit {limit}: {body}");
            seen.extend(ids_of(&items));
            pages += 1;
            assert!(pages <= 10, "paging does not end: {seen:?}");
            if body["hasMore"] == json!(true) {
                assert_eq!(items.len(), limit, "a page with hasMore must be full: {body}");
                cursor = Some(
                    body["nextCursor"]
                        .as_str()
                        .unwrap_or_else(|| panic!("hasMore without nextCursor: {body}"))
                        .to_string(),
                );
            } else {
                assert_eq!(body["hasMore"], json!(false), "{body}");
                break;
            }
        }
        assert_eq!(seen, want, "paging with limit {limit}");
    }

    // limits out of range
    for bad in ["0", "101", "-1", "abc"] {
        api.get(&format!("/v1/conversations?limit={bad}"), &alice).await.expect_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn list_filters_by_sandbox() {
    let api = api();
    let alice = api.user("alice").await;
    let sb1 = uid("sb");
    let sb2 = uid("sb");
    let x1 = api.create_conversation(&alice, &sb1, None, &[]).await;
    let y1 = api.create_conversation(&alice, &sb2, None, &[]).await;
    let x2 = api.create_conversation(&alice, &sb1, None, &[]).await;
    let l1 = api.all_conversations(&alice, &format!("&sandboxId={sb1}")).await;
    assert_eq!(ids_of(&l1), vec![x2.clone(), x1.clone()]);
    assert!(l1.iter().all(|i| i["sandboxId"] == json!(sb1)), "{l1:?}");
    let l2 = api.all_conversations(&alice, &format!("&sandboxId={sb2}")).await;
    assert_eq!(ids_of(&l2), vec![y1.clone()]);
    let none = api.all_conversations(&alice, &format!("&sandboxId={}", uid("sb"))).await;
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(api.all_conversations(&alice, "").await.len(), 3);
}

#[tokio::test]
async fn rename_emits_event() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let sb = uid("sb");
    let id = api.create_conversation(&alice, &sb, Some("old"), &[&bob.id]).await;
    let (mut ws, ready) = Ws::connect_ready(&api, &id, &bob).await;

    let r = api.patch(&format!("/v1/conversations/{id}"), &alice, &json!({ "title": "New title" })).await;
    let b = r.expect(200);
    assert_eq!(b["id"], json!(id));
    assert_eq!(b["title"], json!("New title"));

    let ev = ws.expect_event("conversation.renamed").await;
    assert_eq!(ev["seq"], json!(ready + 1), "{ev}");
    assert_eq!(ev["payload"]["conversationId"], json!(id));
    assert_eq!(ev["payload"]["title"], json!("New title"));

    let d = api.get(&format!("/v1/conversations/{id}"), &bob).await;
    assert_eq!(d.expect(200)["title"], json!("New title"));
    api.wait_for_list(&bob, "", "bob's list shows the new title", |l| {
        l.iter().any(|i| i["conversationId"] == json!(id) && i["title"] == json!("New title"))
    })
    .await;

    // validation and access
    api.patch(&format!("/v1/conversations/{id}"), &alice, &json!({})).await.expect_error(400, "invalid_request");
    api.patch(&format!("/v1/conversations/{id}"), &alice, &json!({ "title": 7 }))
        .await
        .expect_error(400, "invalid_request");
    api.patch(&format!("/v1/conversations/{id}"), &alice, &json!({ "title": "x", "extra": 1 }))
        .await
        .expect_error(400, "invalid_request");
    let eve = api.user("eve").await;
    api.patch(&format!("/v1/conversations/{id}"), &eve, &json!({ "title": "mine" }))
        .await
        .expect_error(403, "forbidden");
    // nothing else was emitted: the next event is the next real one
    api.send_text(&alice, &id, "after").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 2), "{ev}");
}

#[tokio::test]
async fn add_member_emits_event_and_lists() {
    let api = api();
    let alice = api.user("alice").await;
    let dave = api.user("dave").await;
    let sb = uid("sb");
    let id = api.create_conversation(&alice, &sb, None, &[]).await;
    let (mut ws, ready) = Ws::connect_ready(&api, &id, &alice).await;
    // dave cannot see it yet
    api.get(&format!("/v1/conversations/{id}"), &dave).await.expect_error(403, "forbidden");

    let r = api.post(&format!("/v1/conversations/{id}/members"), &alice, &json!({ "userId": dave.id })).await;
    let b = r.expect(201).clone();
    let ids: Vec<&str> = b["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members: {b}"))
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&dave.id.as_str()) && ids.contains(&alice.id.as_str()), "{b}");

    let ev = ws.expect_event("member.joined").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["conversationId"], json!(id));
    assert_eq!(ev["payload"]["memberId"], json!(dave.id));

    // adding again: 200, no event
    let r = api.post(&format!("/v1/conversations/{id}/members"), &alice, &json!({ "userId": dave.id })).await;
    r.expect(200);

    api.wait_listed(&dave, &id, true).await;
    let d = api.get(&format!("/v1/conversations/{id}"), &dave).await;
    assert!(member_ids(d.expect(200)).contains(&dave.id));

    // dave can post; the next event on alice's socket is that message (no event for the repeat add)
    let m = api.send_text(&dave, &id, "hi, I'm new").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 2));
    assert_eq!(ev["payload"]["messageId"], m["id"]);

    // validation and access
    api.post(&format!("/v1/conversations/{id}/members"), &alice, &json!({})).await.expect_error(400, "invalid_request");
    api.post(&format!("/v1/conversations/{id}/members"), &alice, &json!({ "userId": "" }))
        .await
        .expect_error(400, "invalid_request");
    let eve = api.user("eve").await;
    api.post(&format!("/v1/conversations/{id}/members"), &eve, &json!({ "userId": eve.id }))
        .await
        .expect_error(403, "forbidden");
    api.post(&format!("/v1/conversations/{UNKNOWN_ULID}/members"), &alice, &json!({ "userId": eve.id }))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn leave_closes_socket_and_revokes_access() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let sb = uid("sb");
    let id = api.create_conversation(&alice, &sb, None, &[&bob.id]).await;
    let (mut alice_ws, ready) = Ws::connect_ready(&api, &id, &alice).await;
    let (mut bob_ws, _) = Ws::connect_ready(&api, &id, &bob).await;
    api.wait_listed(&bob, &id, true).await;

    let r = api.post_empty(&format!("/v1/conversations/{id}/leave"), &bob).await;
    r.expect(204);
    assert!(r.text.is_empty(), "204 with a body: {}", r.text);

    // bob's socket is closed with 4003 (a member.left event may come first)
    let (code, events) = bob_ws.expect_close(FRAME_TIMEOUT).await;
    assert_eq!(code, 4003, "bob's socket close code (events before: {events:?})");
    for e in &events {
        assert_eq!(e["event"], json!("member.left"), "unexpected event before close: {e}");
    }

    // alice sees member.left
    let ev = alice_ws.expect_event("member.left").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["conversationId"], json!(id));
    assert_eq!(ev["payload"]["memberId"], json!(bob.id));

    // bob has lost access, and the conversation is gone from his list
    api.get(&format!("/v1/conversations/{id}"), &bob).await.expect_error(403, "forbidden");
    api.get(&format!("/v1/conversations/{id}/messages"), &bob).await.expect_error(403, "forbidden");
    api.post("/v1/messages", &bob, &json!({ "conversationId": id, "content": text("still here?") }))
        .await
        .expect_error(403, "forbidden");
    api.post_empty(&format!("/v1/conversations/{id}/leave"), &bob).await.expect_error(403, "forbidden");
    Ws::expect_refused(&api, &id, WsAuth::Bearer(&bob.token), None, 403, "forbidden").await;
    api.wait_listed(&bob, &id, false).await;
    let d = api.get(&format!("/v1/conversations/{id}"), &alice).await;
    assert!(!member_ids(d.expect(200)).contains(&bob.id), "bob still a member: {}", d.text);

    // alice still works; her socket is still open
    api.send_text(&alice, &id, "bye bob").await;
    let ev = alice_ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 2));
}

#[tokio::test]
async fn non_member_is_forbidden() {
    let api = api();
    let alice = api.user("alice").await;
    let eve = api.user("eve").await;
    let sb = uid("sb");
    let id = api.create_conversation(&alice, &sb, Some("private"), &[]).await;
    let m = api.send_text(&alice, &id, "secret").await;
    let mid = m["id"].as_str().unwrap();
    api.get(&format!("/v1/conversations/{id}"), &eve).await.expect_error(403, "forbidden");
    api.get(&format!("/v1/conversations/{id}/messages"), &eve).await.expect_error(403, "forbidden");
    api.post("/v1/messages", &eve, &json!({ "conversationId": id, "content": text("hi") }))
        .await
        .expect_error(403, "forbidden");
    api.patch(
        &format!("/v1/messages/{mid}"),
        &eve,
        &json!({ "conversationId": id, "content": text("x"), "timestamp": now_ms() }),
    )
    .await
    .expect_error(403, "forbidden");
    api.delete(&format!("/v1/messages/{mid}?conversationId={id}"), &eve).await.expect_error(403, "forbidden");
    api.post(&format!("/v1/messages/{mid}/reactions"), &eve, &json!({ "conversationId": id, "emoji": "👍" }))
        .await
        .expect_error(403, "forbidden");
    api.post_empty(&format!("/v1/conversations/{id}/leave"), &eve).await.expect_error(403, "forbidden");
    Ws::expect_refused(&api, &id, WsAuth::Bearer(&eve.token), None, 403, "forbidden").await;
    // and nothing changed
    assert_eq!(api.messages(&alice, &id).await.len(), 1);
}

#[tokio::test]
async fn unknown_conversation_is_404() {
    let api = api();
    let alice = api.user("alice").await;
    let u = UNKNOWN_ULID;
    api.get(&format!("/v1/conversations/{u}"), &alice).await.expect_error(404, "not_found");
    api.get(&format!("/v1/conversations/{u}/messages"), &alice).await.expect_error(404, "not_found");
    api.patch(&format!("/v1/conversations/{u}"), &alice, &json!({ "title": "x" })).await.expect_error(404, "not_found");
    api.post_empty(&format!("/v1/conversations/{u}/leave"), &alice).await.expect_error(404, "not_found");
    api.post("/v1/messages", &alice, &json!({ "conversationId": u, "content": text("x") }))
        .await
        .expect_error(404, "not_found");
    Ws::expect_refused(&api, u, WsAuth::Bearer(&alice.token), None, 404, "not_found").await;
}

#[tokio::test]
async fn bad_conversation_id_is_400() {
    let api = api();
    let alice = api.user("alice").await;
    for bad in ["not-a-ulid", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01ARZ3NDEKTSV4RRFFQ69G5FAVX", "01ARZ3NDEKTSV4RRFFQ69G5FAU"]
    {
        api.get(&format!("/v1/conversations/{bad}"), &alice).await.expect_error(400, "invalid_request");
        api.get(&format!("/v1/conversations/{bad}/messages"), &alice).await.expect_error(400, "invalid_request");
    }
    api.post("/v1/messages", &alice, &json!({ "conversationId": "nope", "content": text("x") }))
        .await
        .expect_error(400, "invalid_request");
}

/// kilo-chat's auto-title (docs/api.md does not mention it): the first message of an untitled
/// conversation titles it with the first 80 characters of its text, whitespace collapsed, and
/// emits `conversation.renamed` after `message.created`. Titled conversations keep their title.
#[tokio::test]
async fn first_message_auto_titles_untitled_conversation() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let id = api.create_conversation(&alice, &uid("sb"), None, &[&bob.id]).await;
    let (mut ws, ready) = Ws::connect_ready(&api, &id, &bob).await;
    let long = format!("Plan   the\nlaunch {}", "x".repeat(100));
    let m = api.send_text(&alice, &id, &long).await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["messageId"], m["id"]);
    let want: String = format!("Plan the launch {}", "x".repeat(100)).chars().take(80).collect();
    let ev = ws.expect_event("conversation.renamed").await;
    assert_eq!(ev["seq"], json!(ready + 2));
    assert_eq!(ev["payload"], json!({ "conversationId": id, "title": want }));
    assert_eq!(api.get(&format!("/v1/conversations/{id}"), &alice).await.expect(200)["title"], json!(want));
    // the second message does not rename
    let m2 = api.send_text(&bob, &id, "another").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 3));
    assert_eq!(ev["payload"]["messageId"], m2["id"]);

    // a titled conversation is not renamed by its first message
    let titled = api.create_conversation(&alice, &uid("sb"), Some("Fixed"), &[&bob.id]).await;
    let (mut ws, ready) = Ws::connect_ready(&api, &titled, &bob).await;
    api.send_text(&alice, &titled, "first").await;
    api.send_text(&alice, &titled, "second").await;
    assert_eq!(ws.expect_event("message.created").await["seq"], json!(ready + 1));
    assert_eq!(ws.expect_event("message.created").await["seq"], json!(ready + 2));
    assert_eq!(api.get(&format!("/v1/conversations/{titled}"), &alice).await.expect(200)["title"], json!("Fixed"));
}

/// At most 1,000 members, the bot included: 1 creator + 100 additional + the bot, then adds one by
/// one up to 1,000; the next add answers 400 `invalid_request` and changes nothing. Every member
/// added is in the detail's member list. Re-adding a member at the limit answers 200; after a
/// member leaves, a new one fits again.
#[tokio::test]
async fn member_limit_is_1000() {
    use futures_util::future::join_all;
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let prefix = uid("m");
    let initial: Vec<String> = (0..100).map(|i| format!("{prefix}-c{i}")).collect();
    let initial_refs: Vec<&str> = initial.iter().map(String::as_str).collect();
    let id = api.create_conversation(&alice, &sb, Some("crowd"), &initial_refs).await;
    let members_path = format!("/v1/conversations/{id}/members");
    let detail = api.get(&format!("/v1/conversations/{id}"), &alice).await;
    assert_eq!(detail.expect(200)["members"].as_array().map(Vec::len), Some(102), "creator + 100 + bot");

    // 898 adds, 10 requests at a time, each one member
    let added: Vec<String> = (0..898).map(|i| format!("{prefix}-a{i}")).collect();
    let start = std::time::Instant::now();
    for chunk in added.chunks(10) {
        let bodies: Vec<Value> = chunk.iter().map(|u| json!({ "userId": u })).collect();
        let answers = join_all(bodies.iter().map(|b| api.post(&members_path, &alice, b))).await;
        for (u, r) in chunk.iter().zip(answers) {
            assert_eq!(r.status, 201, "adding {u}: {} {}", r.status, r.text);
        }
    }
    eprintln!("898 members added in {:.1} s", start.elapsed().as_secs_f64());

    let d = api.get(&format!("/v1/conversations/{id}"), &alice).await;
    let d = d.expect(200).clone();
    let ids = member_ids(&d);
    assert_eq!(ids.len(), 1000, "1,000 members including the bot");
    let mut want: Vec<String> = initial.iter().chain(&added).cloned().collect();
    want.push(alice.id.clone());
    want.push(format!("bot:kiloclaw:{sb}"));
    want.sort();
    assert_eq!(ids, want, "the detail lists exactly the creator, the bot, the initial and the added members");
    for m in d["members"].as_array().unwrap() {
        let kind = if m["id"].as_str().unwrap().starts_with("bot:") { "bot" } else { "user" };
        assert_eq!(m["kind"], json!(kind), "{m}");
        assert!(m["joinedAt"].is_i64(), "{m}");
    }

    // the 1,001st
    let extra = format!("{prefix}-extra");
    let r = api.post(&members_path, &alice, &json!({ "userId": extra })).await;
    r.expect_error(400, "invalid_request");
    let d = api.get(&format!("/v1/conversations/{id}"), &alice).await;
    let ids = member_ids(d.expect(200));
    assert_eq!(ids.len(), 1000);
    assert!(!ids.contains(&extra), "the refused member was added anyway");
    let extra_who = api.dev_token(&extra).await;
    api.get(&format!("/v1/conversations/{id}"), &extra_who).await.expect_error(403, "forbidden");
    // an existing member at the limit: 200, nothing changes
    let last = added.last().unwrap();
    let r = api.post(&members_path, &alice, &json!({ "userId": last })).await;
    r.expect(200);
    // the last one added is a member: may read the conversation
    let last_who = api.dev_token(last).await;
    let d = api.get(&format!("/v1/conversations/{id}"), &last_who).await;
    assert_eq!(member_ids(d.expect(200)).len(), 1000);
    api.get(&format!("/v1/conversations/{id}/messages"), &last_who).await.expect(200);

    // one leaves; now the extra one fits, and is listed
    api.post_empty(&format!("/v1/conversations/{id}/leave"), &last_who).await.expect(204);
    let r = api.post(&members_path, &alice, &json!({ "userId": extra })).await;
    r.expect(201);
    let d = api.get(&format!("/v1/conversations/{id}"), &extra_who).await;
    let ids = member_ids(d.expect(200));
    assert_eq!(ids.len(), 1000);
    assert!(ids.contains(&extra) && !ids.contains(last), "after one left and one joined");
    let r = api.post(&members_path, &alice, &json!({ "userId": format!("{prefix}-extra2") })).await;
    r.expect_error(400, "invalid_request");
}

#[tokio::test]
async fn json_routes_refuse_other_content_types() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let body = json!({ "sandboxId": sb, "title": "typed" }).to_string();
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let r = api.send_typed("POST", "/v1/conversations", Some(&alice.token), ct, &body).await;
        r.expect_error(415, "unsupported_content_type");
        assert!(r.error_message().contains("application/json"), "{ct}: {}", r.text);
    }
    assert_eq!(api.all_conversations(&alice, "").await, Vec::<Value>::new());
    // JSON with parameters is JSON
    let r =
        api.send_typed("POST", "/v1/conversations", Some(&alice.token), "application/json; charset=utf-8", &body).await;
    let id = r.expect(201)["conversationId"].as_str().unwrap_or_default().to_string();
    // no content-type at all (curl -d without -H, many scripts) is read as JSON
    let resp = api
        .http
        .patch(format!("{}/v1/conversations/{id}", api.base))
        .header("authorization", format!("Bearer {}", alice.token))
        .body(json!({ "title": "untyped" }).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PATCH without content-type: {e}"));
    assert_eq!(resp.status().as_u16(), 200);
    // the bot routes too
    let bot = api.bot_token(&sb).await;
    let r = api
        .send_typed(
            "POST",
            &format!("/bot/v1/sandboxes/{sb}/bot-status"),
            Some(&bot.token),
            "text/plain",
            "{\"online\":true}",
        )
        .await;
    r.expect_error(415, "unsupported_content_type");
}
