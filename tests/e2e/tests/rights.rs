//! Rights (issue #17, docs/security.md): who may use a sandbox, who adds, removes and renames, what
//! a removed member loses (every channel at once), tickets spent only by a request that passed every
//! other check, and local mode's second lock on `POST /dev/token`.

use serde_json::{json, Value};
use std::sync::OnceLock;
use switchboard_e2e::*;

fn api() -> Api {
    Api::new(shared())
}

const OPERATOR_SECRET: &str = "an-operator-secret-for-e2e-tests";

/// A server in production mode (`LOCAL_MODE=false`), with an operator secret: tokens are minted
/// with the test secret, as a deployment's auth service would.
fn production() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        Server::start(&[
            ("LOCAL_MODE", "false"),
            ("OPERATOR_SECRET", OPERATOR_SECRET),
            ("PUSHER_APP_SECRET", "the-rights-pusher-app-secret"),
        ])
    })
}

fn user_token(user: &str) -> Who {
    Who { id: user.to_string(), token: mint_user_token(user) }
}

fn bot_of(sandbox: &str) -> Who {
    let now = now_secs();
    Who {
        id: format!("bot:kiloclaw:{sandbox}"),
        token: sign_jwt(jwt_secret().as_bytes(), &bot_claims(sandbox, now, now + 1800)),
    }
}

async fn put_users(api: &Api, path: &str, token: &str, users: &[&str]) -> Resp {
    api.send("PUT", path, Some(token), Some(&json!({ "users": users }))).await
}

#[tokio::test]
async fn in_production_only_allowed_users_use_a_sandbox() {
    let api = Api::new(production());
    let sb = uid("sb");
    let alice = user_token(&uid("alice"));
    let mallory = user_token(&uid("mallory"));
    let create = |who: &Who| {
        let api = api.clone();
        let token = who.token.clone();
        let sb = sb.clone();
        async move { api.send("POST", "/v1/conversations", Some(&token), Some(&json!({ "sandboxId": sb }))).await }
    };
    // No list yet: nobody, with a message that says how to open it.
    let r = create(&alice).await;
    r.expect_error(403, "forbidden");
    assert!(r.error_message().contains(&format!("PUT /bot/v1/sandboxes/{sb}/users")), "{}", r.text);

    // Only the sandbox's own bot sets the list.
    let users_path = format!("/bot/v1/sandboxes/{sb}/users");
    put_users(&api, &users_path, &bot_of(&uid("other")).token, &[&mallory.id]).await.expect_error(403, "forbidden");
    put_users(&api, &users_path, &mallory.token, &[&mallory.id]).await.expect_error(403, "forbidden");
    put_users(&api, &users_path, &bot_of(&sb).token, &["bot:kiloclaw:x"]).await.expect_error(400, "invalid_request");
    let r = put_users(&api, &users_path, &bot_of(&sb).token, &[&alice.id, &alice.id]).await;
    assert_eq!(r.expect(200), &json!({ "sandboxId": sb, "users": [alice.id] }));
    create(&alice).await.expect(201);
    let r = create(&mallory).await;
    r.expect_error(403, "forbidden");
    assert!(r.error_message().contains("you may not use sandbox"), "{}", r.text);

    // The operator's endpoint: its own secret, compared whole.
    let op_path = format!("/operator/v1/sandboxes/{sb}/users");
    put_users(&api, &op_path, "wrong-secret-of-some-length", &[&mallory.id]).await.expect_error(401, "unauthorized");
    put_users(&api, &op_path, &alice.token, &[&mallory.id]).await.expect_error(401, "unauthorized");
    put_users(&api, &op_path, OPERATOR_SECRET, &[&mallory.id]).await.expect(200);
    create(&mallory).await.expect(201);
    create(&alice).await.expect_error(403, "forbidden");

    // Local mode is off: no dev tokens, whoever asks.
    api.send("POST", "/dev/token", None, Some(&json!({ "userId": "x" }))).await.expect_error(404, "not_found");
}

#[tokio::test]
async fn local_mode_keeps_unlisted_sandboxes_open_and_has_no_operator_without_a_secret() {
    let api = api();
    let alice = api.user("alice").await;
    let sb = uid("sb");
    api.create_conversation(&alice, &sb, None, &[]).await;
    // Once the bot lists users, the sandbox is closed to others, local mode or not.
    let bot = api.bot_token(&sb).await;
    let bob = api.user("bob").await;
    put_users(&api, &format!("/bot/v1/sandboxes/{sb}/users"), &bot.token, &[&alice.id]).await.expect(200);
    api.post("/v1/conversations", &bob, &json!({ "sandboxId": sb })).await.expect_error(403, "forbidden");
    api.create_conversation(&alice, &sb, None, &[&bob.id]).await;
    // Without OPERATOR_SECRET the operator routes do not exist.
    put_users(&api, &format!("/operator/v1/sandboxes/{sb}/users"), "anything-at-all-long", &[])
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn dev_tokens_only_for_requests_from_this_machine() {
    let api = api();
    let r = api
        .http
        .post(format!("{}/dev/token", api.base))
        .header("content-type", "application/json")
        .header("cf-connecting-ip", "203.0.113.9")
        .body(r#"{"userId":"alice"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 404, "a request from another address gets no token");
    api.dev_token("alice").await;
}

/// Reads hub frames until an event named `name` arrives.
async fn hub_event(ws: &mut Ws, name: &str) -> Value {
    loop {
        let f = ws.next_json(FRAME_TIMEOUT).await;
        if f["type"] == json!("event") && f["event"] == json!(name) {
            return f;
        }
    }
}

#[tokio::test]
async fn people_add_the_owner_removes_and_the_removed_lose_every_channel() {
    let api = api();
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let carol = api.user("carol").await;
    let sb = uid("sb");
    let bot = api.bot_token(&sb).await;
    let conv = api.create_conversation(&alice, &sb, None, &[&bob.id]).await;
    let members = format!("/v1/conversations/{conv}/members");

    // The bot neither adds nor renames; people do, and everyone sees who added whom.
    api.post(&members, &bot, &json!({ "userId": carol.id })).await.expect_error(403, "forbidden");
    api.patch(&format!("/v1/conversations/{conv}"), &bot, &json!({ "title": "x" }))
        .await
        .expect_error(403, "forbidden");
    api.patch(&format!("/v1/conversations/{conv}"), &bob, &json!({ "title": "by bob" })).await.expect(200);
    let (mut carol_hub, _) = Ws::open_hub(&api, WsAuth::Bearer(&carol.token), None, None, false, "carol-hub")
        .await
        .unwrap_or_else(|r| panic!("hub refused: {} {}", r.status, r.text));
    let instance = format!("/kiloclaw/{sb}");
    carol_hub.send_json(&json!({ "type": "context.subscribe", "contexts": [instance] })).await;
    api.post(&members, &bob, &json!({ "userId": carol.id })).await.expect(201);
    let created = hub_event(&mut carol_hub, "conversation.created").await;
    assert_eq!(created["payload"]["addedBy"], json!(bob.id), "{created}");
    let detail = api.get(&format!("/v1/conversations/{conv}"), &carol).await;
    let d = detail.expect(200);
    let me = d["members"].as_array().unwrap().iter().find(|m| m["id"] == json!(carol.id)).cloned().unwrap();
    assert_eq!(me["addedBy"], json!(bob.id), "{}", detail.text);
    let owner = d["members"].as_array().unwrap().iter().find(|m| m["role"] == json!("owner")).cloned().unwrap();
    assert_eq!(owner["id"], json!(alice.id), "{}", detail.text);

    // Carol follows the conversation on every channel.
    let conv_ctx = format!("/kiloclaw/{sb}/{conv}");
    carol_hub.send_json(&json!({ "type": "context.subscribe", "contexts": [conv_ctx] })).await;
    let (mut carol_ws, _) = Ws::connect_ready(&api, &conv, &carol).await;
    api.post(&format!("/bot/v1/sandboxes/{sb}/bot-status"), &bot, &json!({ "online": true })).await.expect(200);
    let mut carol_live = Ws::open_path(
        &api,
        &format!("/v1/conversations/{conv}/live"),
        WsAuth::Bearer(&carol.token),
        None,
        "carol-live",
    )
    .await
    .unwrap_or_else(|r| panic!("live refused: {} {}", r.status, r.text));

    // Bob is not the owner; nobody removes the bot.
    api.delete(&format!("{members}/{}", carol.id), &bob).await.expect_error(403, "forbidden");
    api.delete(&format!("{members}/{}", bot.id), &alice).await.expect_error(403, "forbidden");
    api.delete(&format!("{members}/nobody-here"), &alice).await.expect_error(404, "not_found");

    // The owner removes carol: everything of hers ends at once.
    let r = api.delete(&format!("{members}/{}", carol.id), &alice).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let (code, events) = carol_ws.expect_close(FRAME_TIMEOUT).await;
    assert_eq!(code, 4003, "conversation socket: {events:?}");
    let left = events.iter().find(|e| e["event"] == json!("member.left")).cloned().unwrap_or(Value::Null);
    assert_eq!(left["payload"]["removedBy"], json!(alice.id), "{events:?}");
    match carol_live.next_frame(FRAME_TIMEOUT).await {
        Some(Frame::Close(code, _)) => assert_eq!(code, 4003, "live subscription"),
        other => panic!("live: expected a close, got {other:?}"),
    }
    let gone = hub_event(&mut carol_hub, "conversation.left").await;
    assert_eq!(gone["payload"], json!({ "conversationId": conv, "removedBy": alice.id }));
    api.get(&format!("/v1/conversations/{conv}"), &carol).await.expect_error(403, "forbidden");
    Ws::expect_refused(&api, &conv, WsAuth::Bearer(&carol.token), None, 403, "forbidden").await;

    // Bob removes himself (as leaving does).
    let (mut bob_ws, _) = Ws::connect_ready(&api, &conv, &bob).await;
    assert_eq!(api.delete(&format!("{members}/{}", bob.id), &bob).await.status, 204);
    assert_eq!(bob_ws.expect_close(FRAME_TIMEOUT).await.0, 4003);
    carol_hub.close().await;
}

#[tokio::test]
async fn a_ticket_is_spent_only_by_a_request_that_passed_every_other_check() {
    let api = api();
    let alice = api.user("alice").await;
    let eve = api.user("eve").await;
    let theirs = api.create_conversation(&eve, &uid("sb"), None, &[]).await;
    let mine = api.create_conversation(&alice, &uid("sb"), None, &[]).await;
    let ticket = api.ticket(&alice).await;
    // Refused for other reasons: not a member, an unknown conversation, a bad id, a bad since.
    Ws::expect_refused(&api, &theirs, WsAuth::Ticket(&ticket), None, 403, "forbidden").await;
    Ws::expect_refused(&api, "01HZZZZZZZZZZZZZZZZZZZZZZZ", WsAuth::Ticket(&ticket), None, 404, "not_found").await;
    Ws::expect_refused(&api, "not-an-id", WsAuth::Ticket(&ticket), None, 400, "invalid_request").await;
    Ws::expect_refused(&api, &mine, WsAuth::Ticket(&ticket), Some("x"), 400, "invalid_request").await;
    // A live subscription is refused with a close code (browsers read those, not statuses).
    let mut live =
        Ws::open_path(&api, &format!("/v1/conversations/{theirs}/live"), WsAuth::Ticket(&ticket), None, "live")
            .await
            .unwrap_or_else(|r| panic!("live: {} {}", r.status, r.text));
    assert!(matches!(live.next_frame(FRAME_TIMEOUT).await, Some(Frame::Close(4001, _))));
    let r = Ws::refused_path(&api, "/connect?session=nope", WsAuth::Ticket(&ticket), None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // The ticket still works, once.
    let mut ws = Ws::open(&api, &mine, WsAuth::Ticket(&ticket), None, "alice")
        .await
        .unwrap_or_else(|r| panic!("refused: {} {}", r.status, r.text));
    assert_eq!(ws.next_json(FRAME_TIMEOUT).await["type"], json!("ready"));
    Ws::expect_refused(&api, &mine, WsAuth::Ticket(&ticket), None, 401, "unauthorized").await;
    ws.close().await;
}

/// Waits for `ws` to close; answers the close code (frames before it are skipped).
async fn close_code(ws: &mut Ws, within: std::time::Duration) -> u16 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next_frame(left).await {
            Some(Frame::Close(code, _)) => return code,
            Some(Frame::Text(_)) => continue,
            other => panic!("{}: expected a close, got {other:?}", ws.label),
        }
    }
}

/// A socket lives no longer than the token that opened it: when the token stops being accepted
/// (`exp` + 60 s of clock skew), every socket kind closes with 4010 `token expired`, also one opened
/// with a ticket minted from that token. The token here expired 55 s ago, so it is accepted for
/// about 5 s more.
#[tokio::test]
async fn sockets_close_with_4010_when_their_token_expires() {
    let api = api();
    let user = uid("alice");
    let now = now_secs();
    let expiring = Who {
        id: user.clone(),
        token: sign_jwt(jwt_secret().as_bytes(), &human_claims(&user, Some(now - 100), Some(now - 55), AUDIENCE)),
    };
    let fresh = Who { id: user.clone(), token: mint_user_token(&user) };
    let sb = uid("sb");
    let conv = api.create_conversation(&fresh, &sb, None, &[]).await;
    let bot = api.bot_token(&sb).await;
    api.post(&format!("/bot/v1/sandboxes/{sb}/bot-status"), &bot, &json!({ "online": true })).await.expect(200);

    let (mut conv_ws, _) = Ws::connect_ready(&api, &conv, &expiring).await;
    let ticket = api.ticket(&expiring).await;
    let mut by_ticket = Ws::open(&api, &conv, WsAuth::Ticket(&ticket), None, "by-ticket")
        .await
        .unwrap_or_else(|r| panic!("ticket refused: {} {}", r.status, r.text));
    let (mut hub, _) = Ws::open_hub(&api, WsAuth::Bearer(&expiring.token), None, None, false, "hub")
        .await
        .unwrap_or_else(|r| panic!("hub refused: {} {}", r.status, r.text));
    let mut live =
        Ws::open_path(&api, &format!("/v1/conversations/{conv}/live"), WsAuth::Bearer(&expiring.token), None, "live")
            .await
            .unwrap_or_else(|r| panic!("live refused: {} {}", r.status, r.text));
    // A socket of a fresh token stays.
    let (mut fresh_ws, _) = Ws::connect_ready(&api, &conv, &fresh).await;

    let within = std::time::Duration::from_secs(30);
    assert_eq!(close_code(&mut conv_ws, within).await, 4010, "conversation socket");
    assert_eq!(close_code(&mut by_ticket, within).await, 4010, "conversation socket opened with a ticket");
    assert_eq!(close_code(&mut hub, within).await, 4010, "hub");
    assert_eq!(close_code(&mut live, within).await, 4010, "live subscription");
    api.send_text(&fresh, &conv, "still here").await;
    assert_eq!(fresh_ws.next_event().await["event"], json!("message.created"), "the fresh socket is open");
    fresh_ws.close().await;
}

const PUSHER_SECRET: &str = "the-rights-pusher-app-secret";

/// A Pusher socket (`label`), its socket id once connected.
async fn pusher_socket(api: &Api, label: &str) -> (Ws, String) {
    let mut ws = Ws::open_path(api, "/app/switchboard-key?protocol=7", WsAuth::None, None, label)
        .await
        .unwrap_or_else(|r| panic!("pusher socket refused: {} {}", r.status, r.text));
    let hello = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(hello["event"], json!("pusher:connection_established"), "{hello}");
    let data: Value = serde_json::from_str(hello["data"].as_str().unwrap_or("{}")).expect("connection data");
    let socket_id = data["socket_id"].as_str().expect("socket_id").to_string();
    (ws, socket_id)
}

/// `POST /pusher/auth` as `who` for `socket_id` on `channel`.
async fn pusher_auth(api: &Api, who: &Who, socket_id: &str, channel: &str) -> Resp {
    let body = json!({"socket_id": socket_id, "channel_name": channel});
    api.send("POST", "/pusher/auth", Some(&who.token), Some(&body)).await
}

/// Subscribes with `auth` (and nothing else, as every Pusher client sends a private channel's).
async fn pusher_subscribe(ws: &mut Ws, channel: &str, auth: &str) {
    ws.send_json(&json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}})).await;
    let ok = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(ok["event"], json!("pusher_internal:subscription_succeeded"), "{}: {ok}", ws.label);
}

/// A removed member's Pusher socket on the conversation's private channel is closed with 4200
/// (pusher-js reconnects and authorizes again), and the channel is no longer signed for them.
/// Another member's socket stays subscribed and gets the next message; a socket whose auth names
/// nobody (signed with the app secret by a backend, as the `pusher` libraries sign it) cannot be
/// told apart from the removed member's and must authorize again too.
#[tokio::test]
async fn a_removed_members_pusher_socket_must_authorize_again_and_cannot() {
    let api = Api::new(production());
    let sb = uid("sb");
    let alice = user_token(&uid("alice"));
    let carol = user_token(&uid("carol"));
    put_users(&api, &format!("/bot/v1/sandboxes/{sb}/users"), &bot_of(&sb).token, &[&alice.id]).await.expect(200);
    let conv = api.create_conversation(&alice, &sb, None, &[&carol.id]).await;
    let channel = format!("private-conversation-{conv}");

    let (mut carol_ws, carol_socket) = pusher_socket(&api, "carol-pusher").await;
    let auth = pusher_auth(&api, &carol, &carol_socket, &channel).await;
    pusher_subscribe(&mut carol_ws, &channel, auth.expect(200)["auth"].as_str().expect("auth")).await;
    let (mut alice_ws, alice_socket) = pusher_socket(&api, "alice-pusher").await;
    let auth = pusher_auth(&api, &alice, &alice_socket, &channel).await;
    pusher_subscribe(&mut alice_ws, &channel, auth.expect(200)["auth"].as_str().expect("auth")).await;
    let (mut backend_ws, backend_socket) = pusher_socket(&api, "backend-signed-pusher").await;
    let sig = hmac_hex(PUSHER_SECRET, &format!("{backend_socket}:{channel}"));
    pusher_subscribe(&mut backend_ws, &channel, &format!("switchboard-key:{sig}")).await;

    let r = api.delete(&format!("/v1/conversations/{conv}/members/{}", carol.id), &alice).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(close_code(&mut carol_ws, FRAME_TIMEOUT).await, 4200, "reconnect and authorize again");
    // A retried removal converges: 204 again (the worker ends her channels again).
    let again = api.delete(&format!("/v1/conversations/{conv}/members/{}", carol.id), &alice).await;
    assert_eq!(again.status, 204, "{}", again.text);
    assert_eq!(close_code(&mut backend_ws, FRAME_TIMEOUT).await, 4200, "a subscription that names nobody");
    pusher_auth(&api, &carol, &carol_socket, &channel).await.expect_error(403, "forbidden");
    // alice's socket was not closed: the next message reaches it (after carol's member.left)
    api.send_text(&alice, &conv, "after carol").await;
    let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match alice_ws.next_frame(left).await {
            Some(Frame::Text(t)) if t.contains("message.created") => {
                assert!(t.contains("after carol"), "{t}");
                break;
            }
            Some(Frame::Text(_)) => continue,
            other => panic!("alice's Pusher socket: expected the message, got {other:?}"),
        }
    }
    alice_ws.close().await;
}
