//! Idempotent sends: a repeated `clientId` from the same sender answers the original message
//! (`duplicate: true`); the same `clientId` with other content is a 409 `idempotency_conflict`.
//! (Conversations get a title so that the first message's auto-title emits no extra event.)

use futures_util::future::join_all;
use serde_json::{json, Value};
use switchboard_e2e::*;

fn api() -> Api {
    Api::new(shared())
}

fn body(conv: &str, t: &str, client_id: &str) -> Value {
    json!({ "conversationId": conv, "content": text(t), "clientId": client_id })
}

#[tokio::test]
async fn same_client_id_twice_is_one_message() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("idem"), &[&bob.id]).await;
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &bob).await;
    let cid = uid("cid");

    let r1 = api.post("/v1/messages", &alice, &body(&conv, "once", &cid)).await;
    let b1 = r1.expect(201).clone();
    assert_eq!(b1["clientId"], json!(cid));
    let r2 = api.post("/v1/messages", &alice, &body(&conv, "once", &cid)).await;
    let b2 = r2.expect(200).clone();
    assert_eq!(b2["messageId"], b1["messageId"]);
    assert_eq!(b2["message"], b1["message"], "the repeat must answer the original message");
    assert_eq!(b2["duplicate"], json!(true));
    // the same clientId with different content is a conflict, and changes nothing
    let r3 = api.post("/v1/messages", &alice, &body(&conv, "changed my mind", &cid)).await;
    r3.expect_error(409, "idempotency_conflict");
    assert!(r3.error_message().starts_with("clientId"), "{r3:?}");

    let list = api.messages(&alice, &conv).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], b1["messageId"]);

    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["messageId"], b1["messageId"]);
    assert_eq!(ev["payload"]["clientId"], json!(cid));
    // no second event: the next one is a new message
    let next = api.send_text(&alice, &conv, "sentinel").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 2), "a repeated send emitted an event");
    assert_eq!(ev["payload"]["messageId"], next["id"]);
}

#[tokio::test]
async fn twenty_concurrent_identical_sends_make_one_message() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("idem"), &[&bob.id]).await;
    let (mut ws, ready) = Ws::connect_ready(&api, &conv, &bob).await;
    let cid = uid("burst");
    let b = body(&conv, "burst", &cid);

    let results = join_all((0..20).map(|_| api.post("/v1/messages", &alice, &b))).await;
    let mut created = 0;
    let mut ids = std::collections::BTreeSet::new();
    for r in &results {
        match r.status {
            201 => created += 1,
            200 => {}
            _ => panic!("concurrent identical send answered {} {}", r.status, r.text),
        }
        ids.insert(r.body["messageId"].as_str().unwrap_or_else(|| panic!("no messageId: {}", r.text)).to_string());
    }
    assert_eq!(ids.len(), 1, "distinct message ids from 20 identical sends: {ids:?}");
    assert_eq!(created, 1, "exactly one of the 20 sends should answer 201");
    let id = ids.into_iter().next().unwrap();

    let list = api.messages(&alice, &conv).await;
    assert_eq!(list.len(), 1, "messages after 20 identical sends: {list:?}");
    assert_eq!(list[0]["id"], json!(id));

    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 1));
    assert_eq!(ev["payload"]["messageId"], json!(id));
    let next = api.send_text(&alice, &conv, "sentinel").await;
    let ev = ws.expect_event("message.created").await;
    assert_eq!(ev["seq"], json!(ready + 2), "more than one event for 20 identical sends");
    assert_eq!(ev["payload"]["messageId"], next["id"]);
}

#[tokio::test]
async fn same_client_id_other_sender_is_a_new_message() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("idem"), &[&bob.id]).await;
    let cid = uid("shared");
    let a = api.post("/v1/messages", &alice, &body(&conv, "from alice", &cid)).await;
    let a = a.expect(201).clone();
    let b = api.post("/v1/messages", &bob, &body(&conv, "from bob", &cid)).await;
    let b = b.expect(201).clone();
    assert_ne!(a["messageId"], b["messageId"]);
    assert_eq!(b["message"]["senderId"], json!(bob.id));
    assert_eq!(b["message"]["content"], text("from bob"));
    let list = api.messages(&alice, &conv).await;
    assert_eq!(list.len(), 2);
    // each sender's repeat still answers its own original
    let a2 = api.post("/v1/messages", &alice, &body(&conv, "from alice", &cid)).await;
    assert_eq!(a2.expect(200)["messageId"], a["messageId"]);
    let b2 = api.post("/v1/messages", &bob, &body(&conv, "from bob", &cid)).await;
    assert_eq!(b2.expect(200)["messageId"], b["messageId"]);
    assert_eq!(api.messages(&alice, &conv).await.len(), 2);
}

#[tokio::test]
async fn same_client_id_in_another_conversation_is_a_new_message() {
    let api = api();
    let alice = api.user("alice").await;
    let c1 = api.create_conversation(&alice, &uid("sb"), None, &[]).await;
    let c2 = api.create_conversation(&alice, &uid("sb"), None, &[]).await;
    let cid = uid("cid");
    let a = api.post("/v1/messages", &alice, &body(&c1, "one", &cid)).await;
    let a = a.expect(201).clone();
    let b = api.post("/v1/messages", &alice, &body(&c2, "two", &cid)).await;
    let b = b.expect(201).clone();
    assert_ne!(a["messageId"], b["messageId"]);
    assert_eq!(b["message"]["conversationId"], json!(c2));
    assert_eq!(api.messages(&alice, &c1).await.len(), 1);
    assert_eq!(api.messages(&alice, &c2).await.len(), 1);
}

#[tokio::test]
async fn invalid_send_does_not_claim_the_client_id() {
    let api = api();
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, &uid("sb"), None, &[]).await;
    let cid = uid("cid");
    let bad = json!({ "conversationId": conv, "content": [], "clientId": cid });
    api.post("/v1/messages", &alice, &bad).await.expect_error(400, "invalid_request");
    let r = api.post("/v1/messages", &alice, &body(&conv, "now valid", &cid)).await;
    assert_eq!(r.expect(201)["message"]["content"], text("now valid"));
}
