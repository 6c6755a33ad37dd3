//! Read state: `POST /v1/conversations/:id/mark-read` and `conversation.read` receipts.

use serde_json::json;
use switchboard_e2e::*;

fn api() -> Api {
    Api::new(shared())
}

#[tokio::test]
async fn mark_read_moves_forward_and_emits_receipts() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let sb = uid("sb");
    let conv = api.create_conversation(&alice, &sb, Some("reads"), &[&bob.id]).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(api.send_text(&alice, &conv, &format!("m{i}")).await["id"].as_str().unwrap().to_string());
    }
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &alice).await;
    let path = format!("/v1/conversations/{conv}/mark-read");

    // up to the second message: not caught up, badgeCount null
    let r = api.post(&path, &bob, &json!({ "lastSeenMessageId": ids[1] })).await;
    let b = r.expect(200).clone();
    assert_eq!(b["conversationId"], json!(conv));
    let read1 = b["lastReadAt"].as_i64().unwrap_or_else(|| panic!("lastReadAt not an integer: {b}"));
    assert!(b["badgeCount"].is_null(), "not caught up: badgeCount must be null: {b}");
    let ev = ws.expect_event("conversation.read").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["conversationId"], json!(conv));
    assert_eq!(ev["payload"]["memberId"], json!(bob.id));
    assert_eq!(ev["payload"]["lastReadAt"], json!(read1));
    assert_eq!(ev["payload"]["lastReadMessageId"], json!(ids[1]));

    // an older id changes nothing (and emits nothing)
    let r = api.post(&path, &bob, &json!({ "lastSeenMessageId": ids[0] })).await;
    let b = r.expect(200).clone();
    assert_eq!(b["lastReadAt"], json!(read1), "the read position moved backwards: {b}");

    // the newest: caught up, badgeCount is the remaining total (bob has nothing else unread)
    let r = api.post(&path, &bob, &json!({ "lastSeenMessageId": ids[2] })).await;
    let b = r.expect(200).clone();
    let read2 = b["lastReadAt"].as_i64().unwrap_or_else(|| panic!("{b}"));
    assert!(read2 >= read1, "{b}");
    assert_eq!(b["badgeCount"], json!(0), "caught up: badgeCount is the remaining total: {b}");
    let ev = ws.expect_event("conversation.read").await;
    assert_eq!(ev["seq"], json!(ready + 2), "marking an older message emitted an event");
    assert_eq!(ev["payload"]["lastReadMessageId"], json!(ids[2]));
    assert_eq!(ev["payload"]["lastReadAt"], json!(read2));

    // bob's list shows it
    api.wait_for_list(&bob, "", "bob's list item has the new lastReadAt", |l| {
        l.iter().any(|i| i["conversationId"] == json!(conv) && i["lastReadAt"] == json!(read2))
    })
    .await;
}

#[tokio::test]
async fn mark_read_errors() {
    let api = api();
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("reads"), &[]).await;
    let m = api.send_text(&alice, &conv, "hi").await;
    let path = format!("/v1/conversations/{conv}/mark-read");
    api.post(&path, &alice, &json!({})).await.expect_error(400, "invalid_request");
    api.post(&path, &alice, &json!({ "lastSeenMessageId": "nope" })).await.expect_error(400, "invalid_request");
    api.post(&path, &alice, &json!({ "lastSeenMessageId": m["id"], "extra": 1 }))
        .await
        .expect_error(400, "invalid_request");
    api.send_raw("POST", &path, Some(&alice.token), Some("{".into())).await.expect_error(400, "invalid_json");
    let eve = api.user("eve").await;
    api.post(&path, &eve, &json!({ "lastSeenMessageId": m["id"] })).await.expect_error(403, "forbidden");
    api.post(&format!("/v1/conversations/{UNKNOWN_ULID}/mark-read"), &alice, &json!({ "lastSeenMessageId": m["id"] }))
        .await
        .expect_error(404, "not_found");
    api.send("POST", &path, None, Some(&json!({ "lastSeenMessageId": m["id"] })))
        .await
        .expect_error(401, "unauthorized");
}
