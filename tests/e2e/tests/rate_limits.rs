//! Rate limits and caps as a client meets them (docs/api.md "Limits"): 429 with `Retry-After` and
//! `{error:{code:"rate_limited",message,retryAfterMs}}` on HTTP, the `rate_limited` error frame and
//! the 4029 close on sockets, the socket and hub caps, the reaction caps, the daily conversation
//! cap, the typing throttle. One dedicated server with small limits set by vars, so that every
//! limit is reached in a few requests; nothing here depends on timing (the limits refill over
//! minutes, far longer than a test).

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_e2e::*;

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        Server::start(&[
            ("LIMIT_SENDS", "1/1m,3"),
            ("LIMIT_REACTIONS", "1/1m,4"),
            ("LIMIT_CONNECT_TICKETS", "1/1m,2"),
            ("LIMIT_SOCKET_FRAMES", "1/1m,3"),
            ("LIMIT_FLOOD_STRIKES", "3"),
            ("TYPING_THROTTLE_MS", "600000"),
            ("MAX_SOCKETS_PER_MEMBER", "2"),
            ("MAX_HUB_SESSIONS", "2"),
            ("MAX_REACTIONS_PER_MEMBER", "2"),
            ("MAX_REACTIONS_PER_MESSAGE", "3"),
            ("MAX_CONVERSATIONS_PER_DAY", "3"),
        ])
    })
}

fn api() -> Api {
    Api::new(server())
}

/// An HTTP answer with its `Retry-After` header.
async fn post_with_headers(api: &Api, path: &str, who: &Who, body: &Value) -> (u16, Option<String>, Value) {
    let r = api
        .http
        .post(format!("{}{}", api.base, path))
        .header("authorization", format!("Bearer {}", who.token))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = r.text().await.expect("body");
    (status, retry, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts a 429 `rate_limited` answer: `Retry-After` in whole seconds, rounded up from the body's
/// `retryAfterMs`; answers that many milliseconds.
#[track_caller]
fn assert_rate_limited(status: u16, retry_after: Option<String>, body: &Value) -> u64 {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], json!("rate_limited"), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let ms = body["error"]["retryAfterMs"].as_u64().unwrap_or_else(|| panic!("no retryAfterMs: {body}"));
    assert!(ms >= 1, "{body}");
    let header: u64 = retry_after.expect("a Retry-After header").parse().expect("Retry-After in whole seconds");
    assert_eq!(header, ms.div_ceil(1000), "Retry-After is retryAfterMs rounded up to seconds");
    ms
}

async fn room(api: &Api) -> (Who, Who, String) {
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let conv = api.create_conversation(&alice, &uid("sb"), None, &[&bob.id]).await;
    (alice, bob, conv)
}

fn message(conv: &str, text_: &str) -> Value {
    json!({ "conversationId": conv, "content": text(text_) })
}

#[tokio::test]
async fn sends_over_the_limit_get_429_with_retry_after_and_the_socket_shares_the_bucket() {
    let api = api();
    let (alice, bob, conv) = room(&api).await;
    // Bursts of 3: two over HTTP, the third over the socket, the fourth is refused on both.
    api.send_text(&alice, &conv, "one").await;
    api.send_text(&alice, &conv, "two").await;
    let (mut ws, _) = Ws::connect_ready(&api, &conv, &alice).await;
    ws.send_json(&json!({"type": "message.create", "requestId": "r3", "content": text("three")})).await;
    ws.expect_event("message.created").await;
    let ack = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!((ack["type"].as_str(), ack["requestId"].as_str()), (Some("message.ack"), Some("r3")), "{ack}");
    let (status, retry, body) = post_with_headers(&api, "/v1/messages", &alice, &message(&conv, "four")).await;
    assert_rate_limited(status, retry, &body);
    // Bob has his own bucket.
    api.send_text(&bob, &conv, "bob's").await;
    // Nothing refused was written: the conversation holds exactly the four accepted messages.
    let texts: Vec<String> =
        api.messages(&bob, &conv).await.iter().map(|m| m["content"][0]["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(texts, vec!["bob's", "three", "two", "one"]);
}

#[tokio::test]
async fn a_bots_sends_are_limited_too() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    let bot = api.bot_token(&sb).await;
    let conv = api.create_conversation(&alice, &sb, None, &[]).await;
    let path = format!("/bot/v1/sandboxes/{sb}/conversations/{conv}/messages");
    for i in 0..3 {
        let (status, _, body) = post_with_headers(&api, &path, &bot, &json!({"content": text(&format!("b{i}"))})).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, retry, body) = post_with_headers(&api, &path, &bot, &json!({"content": text("over")})).await;
    assert_rate_limited(status, retry, &body);
}

#[tokio::test]
async fn a_flooding_socket_gets_error_frames_then_the_4029_close() {
    let api = api();
    let (alice, _bob, conv) = room(&api).await;
    let (mut ws, _) = Ws::connect_ready(&api, &conv, &alice).await;
    // Three frames fit the bucket (answered as unknown frames), the next ones are refused...
    for _ in 0..3 {
        ws.send_json(&json!({"type": "nope"})).await;
        let f = ws.next_json(FRAME_TIMEOUT).await;
        assert_eq!(f["code"], json!("unknown_frame_type"), "{f}");
    }
    for _ in 0..2 {
        ws.send_json(&json!({"type": "nope"})).await;
        let f = ws.next_json(FRAME_TIMEOUT).await;
        assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("rate_limited")), "{f}");
        assert!(f["retryAfterMs"].as_u64().is_some_and(|ms| ms >= 1), "{f}");
        assert!(f["message"].is_string(), "{f}");
    }
    // ...and the third refusal in a row closes the connection.
    ws.send_json(&json!({"type": "nope"})).await;
    match ws.next_frame(FRAME_TIMEOUT).await {
        Some(Frame::Close(code, reason)) => assert_eq!((code, reason.as_str()), (4029, "rate limited")),
        other => panic!("expected the 4029 close, got {other:?}"),
    }
    // The member's other connections are not affected.
    let (mut other, _) = Ws::connect_ready(&api, &conv, &alice).await;
    other.send_json(&json!({"type": "nope"})).await;
    assert_eq!(other.next_json(FRAME_TIMEOUT).await["code"], json!("unknown_frame_type"));
}

#[tokio::test]
async fn a_hub_socket_that_floods_is_closed_with_4029() {
    let api = api();
    let alice = api.user("alice").await;
    let (mut ws, _) = Ws::open_hub(&api, WsAuth::Bearer(&alice.token), None, None, false, "hub")
        .await
        .unwrap_or_else(|r| panic!("hub refused: {} {}", r.status, r.text));
    let hello = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(hello["type"], json!("hello"));
    ws.read_until_ready().await;
    let ack = json!({"type": "ack", "seq": 0});
    for _ in 0..3 {
        ws.send_json(&ack).await;
    }
    ws.send_json(&ack).await;
    let f = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("rate_limited")), "{f}");
    ws.send_json(&ack).await;
    assert_eq!(ws.next_json(FRAME_TIMEOUT).await["code"], json!("rate_limited"));
    ws.send_json(&ack).await;
    match ws.next_frame(FRAME_TIMEOUT).await {
        Some(Frame::Close(code, _)) => assert_eq!(code, 4029),
        other => panic!("expected the 4029 close, got {other:?}"),
    }
}

#[tokio::test]
async fn the_socket_cap_refuses_the_next_socket_before_the_upgrade() {
    let api = api();
    let (alice, bob, conv) = room(&api).await;
    let (first, _) = Ws::connect_ready(&api, &conv, &alice).await;
    let (_second, _) = Ws::connect_ready(&api, &conv, &alice).await;
    let r = Ws::refused(&api, &conv, WsAuth::Bearer(&alice.token), None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (429, Some("too_many_connections")), "{}", r.text);
    // Another member is not affected; closing one makes room.
    let _bobs = Ws::connect_ready(&api, &conv, &bob).await;
    first.close().await;
    poll_until("a closed socket makes room", Duration::from_secs(10), Duration::from_millis(100), || {
        let (api, conv, token) = (api.clone(), conv.clone(), alice.token.clone());
        async move {
            match Ws::open(&api, &conv, WsAuth::Bearer(&token), None, "third").await {
                Ok(ws) => Some(ws),
                Err(r) => {
                    assert_eq!(r.status, 429, "{}", r.text);
                    None
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn the_hub_session_cap_refuses_the_next_socket() {
    let api = api();
    let alice = api.user("alice").await;
    let open = || Ws::open_hub(&api, WsAuth::Bearer(&alice.token), None, None, false, "hub");
    let _a = open().await.unwrap_or_else(|r| panic!("{}", r.text));
    let _b = open().await.unwrap_or_else(|r| panic!("{}", r.text));
    let r = Ws::refused_path(&api, "/connect", WsAuth::Bearer(&alice.token), None).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (429, Some("too_many_connections")), "{}", r.text);
}

#[tokio::test]
async fn reactions_are_validated_and_capped() {
    let api = api();
    let (alice, bob, conv) = room(&api).await;
    let mid = api.send_text(&alice, &conv, "react to me").await["id"].as_str().unwrap().to_string();
    let path = format!("/v1/messages/{mid}/reactions");
    let react = |who: &Who, emoji: &str| {
        let body = json!({ "conversationId": conv, "emoji": emoji });
        let (api, who, path) = (api.clone(), who.clone(), path.clone());
        async move { api.post(&path, &who, &body).await }
    };
    // Text is no emoji (refused before it counts).
    react(&alice, "lol").await.expect_error(400, "invalid_request");
    react(&alice, "👍").await.expect(201);
    react(&alice, ":tada:").await.expect(201);
    // A third distinct emoji of one member: 409.
    react(&alice, "🔥").await.expect_error(409, "too_many_reactions");
    react(&bob, "🚀").await.expect(201);
    // A fourth distinct emoji on the message: 409; joining an existing one is fine.
    react(&bob, "🎉").await.expect_error(409, "too_many_reactions");
    react(&bob, "👍").await.expect(201);
    // Reactions also have a rate: alice's bucket of 4 is spent (two accepted, one capped, this
    // repeat, which changes nothing).
    react(&alice, "👍").await.expect(200);
    let (status, retry, body) =
        post_with_headers(&api, &path, &alice, &json!({ "conversationId": conv, "emoji": "👍" })).await;
    assert_rate_limited(status, retry, &body);
}

#[tokio::test]
async fn conversation_creations_are_capped_per_rolling_day() {
    let api = api();
    let carol = api.user("carol").await;
    for _ in 0..3 {
        api.create_conversation(&carol, &uid("sb"), None, &[]).await;
    }
    let (status, retry, body) =
        post_with_headers(&api, "/v1/conversations", &carol, &json!({"sandboxId": uid("sb")})).await;
    let ms = assert_rate_limited(status, retry, &body);
    assert!(ms > 23 * 3600 * 1000, "until the first creation is a day old: {ms} ms");
    // Nothing was created by the refused request.
    assert_eq!(api.all_conversations(&carol, "").await.len(), 3);
}

#[tokio::test]
async fn connect_tickets_are_rate_limited() {
    let api = api();
    let dave = api.user("dave").await;
    api.ticket(&dave).await;
    api.ticket(&dave).await;
    let (status, retry, body) = post_with_headers(&api, "/connect-ticket", &dave, &json!({})).await;
    assert_rate_limited(status, retry, &body);
}

#[tokio::test]
async fn typing_is_broadcast_once_per_throttle_whatever_stops_come_between() {
    let api = api();
    let (alice, bob, conv) = room(&api).await;
    let (mut ws, _) = Ws::connect_ready(&api, &conv, &bob).await;
    for _ in 0..3 {
        api.post_empty(&format!("/v1/conversations/{conv}/typing"), &alice).await.expect(204);
        api.post_empty(&format!("/v1/conversations/{conv}/typing/stop"), &alice).await.expect(204);
    }
    // Then a message, as a barrier: what came before it is everything typing produced.
    api.send_text(&alice, &conv, "done typing").await;
    let mut seen = Vec::new();
    loop {
        let f = ws.next_json(FRAME_TIMEOUT).await;
        let name = f["event"].as_str().unwrap_or_default().to_string();
        if name == "message.created" {
            break;
        }
        seen.push(name);
    }
    assert_eq!(seen, vec!["typing", "typing.stop"], "one typing and one stop for three pairs");
}
