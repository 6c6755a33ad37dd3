//! Idempotency records expire after IDEM_TTL_MS (a dedicated server with a 1.5 s TTL).

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_e2e::*;

#[tokio::test]
async fn client_id_can_be_reused_after_the_record_expires() {
    let server = Server::start(&[("IDEM_TTL_MS", "1500")]);
    let api = Api::new(&server);
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, &uid("sb"), None, &[]).await;
    let body = json!({ "conversationId": conv, "content": text("hello"), "clientId": "retry-me" });

    let first = api.post("/v1/messages", &alice, &body).await;
    let first = first.expect(201).clone();
    // within the TTL: the original
    let again = api.post("/v1/messages", &alice, &body).await;
    assert_eq!(again.expect(200)["messageId"], first["messageId"]);

    // after the TTL (and the object's cleanup alarm): a new message. Retry every 2 s (longer than
    // the TTL) for up to 30 s; until then every answer must be the original.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let start = Instant::now();
    let second = loop {
        let r = api.post("/v1/messages", &alice, &body).await;
        match r.status {
            201 => break r.body.clone(),
            200 => assert_eq!(r.body["messageId"], first["messageId"], "a 200 must answer the original: {}", r.text),
            _ => panic!("unexpected answer: {} {}", r.status, r.text),
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the idempotency record never expired (TTL 1.5 s); log:\n{}",
            server.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(2000)).await;
    };
    assert_ne!(second["messageId"], first["messageId"]);
    let list = api.messages(&alice, &conv).await;
    assert_eq!(list.len(), 2, "{list:?}");
    // the new record is in force again
    let r = api.post("/v1/messages", &alice, &body).await;
    assert_eq!(r.expect(200)["messageId"], second["messageId"]);
}
