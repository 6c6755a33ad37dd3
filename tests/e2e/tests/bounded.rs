//! Bounded work per object (issue #18): request bodies refused while they stream, one message's
//! content capped, an event carrying a message's content once, and a resume capped by bytes.

use serde_json::{json, Value};
use switchboard_e2e::{shared, Api, StreamingRequest, Ws};

/// A body over 256 KiB is refused (413) while it is still streaming: the request's body never
/// ends here, so an answer proves the server stopped reading at the cap instead of buffering all.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_cap_is_refused_while_streaming() {
    let api = Api::new(shared());
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, "sb-bounded", None, &[]).await;
    let mut req = StreamingRequest::start(&api, "POST", "/v1/messages", Some(&alice.token), "application/json").await;
    req.send(format!(r#"{{"conversationId":"{conv}","content":[{{"type":"text","text":""#).as_bytes()).await;
    let chunk = vec![b'a'; 16 * 1024];
    for _ in 0..17 {
        // 17 × 16 KiB = 272 KiB > 256 KiB; the server may stop reading once past the cap.
        if !req.try_send(&chunk).await {
            break;
        }
    }
    let r = req.response().await;
    r.expect_error(413, "payload_too_large");
    assert!(api.messages(&alice, &conv).await.is_empty());
}

fn blocks(n: usize, chars: usize) -> Value {
    Value::Array((0..n).map(|_| json!({"type": "text", "text": "€".repeat(chars)})).collect())
}

/// One message's content is at most 64 KiB encoded (a socket frame is capped at 64 KiB already); an
/// event carries the content once.
#[tokio::test(flavor = "multi_thread")]
async fn content_is_capped_and_carried_once() {
    let api = Api::new(shared());
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, "sb-bounded", None, &[]).await;
    let (mut ws, _) = Ws::connect_ready(&api, &conv, &alice).await;
    // 3 blocks of 8,000 three-byte characters: 72,000 bytes.
    let body = json!({"conversationId": conv, "content": blocks(3, 8000)});
    let r = api.post("/v1/messages", &alice, &body).await;
    r.expect_error(413, "payload_too_large");
    assert!(r.error_message().starts_with("content: "), "{}", r.error_message());
    // Two full blocks fit; the event carries them once.
    let m = api.post("/v1/messages", &alice, &json!({"conversationId": conv, "content": blocks(2, 8000)})).await;
    m.expect(201);
    let ev = ws.expect_event("message.created").await;
    let raw = ev.to_string();
    assert_eq!(raw.matches(&"€".repeat(8000)).count(), 2, "two blocks, each once");
    assert!(ev["payload"]["message"].get("content").is_none());
    assert_eq!(ev["payload"]["content"], blocks(2, 8000));
    assert_eq!(api.messages(&alice, &conv).await.len(), 1);
}

/// A resume whose missed frames are over 4 MiB gets `resync`, never the frames.
#[tokio::test(flavor = "multi_thread")]
async fn a_resume_over_four_mib_resyncs() {
    let api = Api::new(shared());
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, "sb-bounded", None, &[]).await;
    // Each message.created frame is ~48 KB: 90 of them are over 4 MiB.
    for _ in 0..90 {
        let r = api.post("/v1/messages", &alice, &json!({"conversationId": conv, "content": blocks(2, 8000)})).await;
        r.expect(201);
    }
    let mut ws = Ws::connect(&api, &conv, &alice, Some(0)).await;
    let (events, resync, latest) = ws.read_until_ready().await;
    assert!(events.is_empty(), "{} events replayed", events.len());
    assert_eq!(resync.unwrap()["seq"], json!(latest));
    // The recent part still replays.
    let mut ws = Ws::connect(&api, &conv, &alice, Some(latest - 5)).await;
    let (events, resync, _) = ws.read_until_ready().await;
    assert!(resync.is_none());
    assert_eq!(events.len(), 5);
}
