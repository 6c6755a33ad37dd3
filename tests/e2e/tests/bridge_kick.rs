//! The Kick bridge against Switchboard's own Pusher protocol-7 endpoint, with Kick-shaped events published on
//! `chatrooms.{id}.v2` through its signed HTTP API (the `pusher` npm SDK, in tests/e2e/js/fake-kick.mjs, which
//! also plays Kick's chat API and stands between the bridge and the endpoint to cut connections): messages in
//! order, a deletion deletes, a close with 4200 (the endpoint's own) and a dropped connection (1006) reconnect
//! without duplicates, unlinking stops everything, and an unknown app key (4001) ends in `failed`.

mod bridge_common;

use bridge_common::*;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard_e2e::*;

const APP_ID: &str = "switchboard";
const KEY: &str = "switchboard-key";
const SECRET: &str = "bridge-kick-e2e-secret";
const CHATROOM: u64 = 4242;
const WITHIN: Duration = Duration::from_secs(30);
const BACK_WITHIN: Duration = Duration::from_secs(75);

fn channel(chatroom: u64) -> String {
    format!("chatrooms.{chatroom}.v2")
}

fn chat(id: &str, content: &str) -> Value {
    json!({"id": id, "chatroom_id": CHATROOM, "content": content, "type": "message",
           "created_at": "2026-04-19T12:00:00+00:00",
           "sender": {"id": 777, "username": "Kicker", "slug": "kicker",
                      "identity": {"color": "#00FF00", "badges": [{"type": "moderator", "text": "Moderator"}]}}})
}

async fn trigger(fake: &NodePeer, event: &str, data: Value) {
    let r = fake.control("POST", "/trigger", json!({"channel": channel(CHATROOM), "event": event, "data": data})).await;
    assert_eq!(r["status"], 200, "{r}");
}

async fn trigger_chat(fake: &NodePeer, id: &str, content: &str) {
    trigger(fake, "App\\Events\\ChatMessageEvent", chat(id, content)).await;
}

/// Publishes message `id` again and again until the conversation has it: an event published while the bridge is
/// still resubscribing is lost (Pusher keeps nothing), and repeats are what the bridge must not duplicate.
async fn publish_until_seen(api: &Api, who: &Who, conv: &str, fake: &NodePeer, id: &str, content: &str) {
    poll_until(&format!("kick message {id}"), BACK_WITHIN, Duration::from_millis(500), || async {
        if bridged_texts(api, who, conv).await.iter().any(|t| t == content) {
            return Some(());
        }
        trigger_chat(fake, id, content).await;
        None
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kick_bridge_reads_the_chatroom_and_recovers() {
    let fake = NodePeer::start("fake-kick.mjs", &[]);
    let kp = fake.port("kickPort");
    let pusher_url = format!("ws://127.0.0.1:{kp}/app/{KEY}?protocol=7&client=js&version=8.4.0&flash=false");
    let server = Server::start_with(&StartOptions::with_vars(&[
        ("PUSHER_APP_ID", APP_ID),
        ("PUSHER_APP_KEY", KEY),
        ("PUSHER_APP_SECRET", SECRET),
        ("KICK_PUSHER_URL", &pusher_url),
        ("KICK_API_URL", &format!("http://127.0.0.1:{kp}")),
        ("KICK_ACCESS_TOKEN", "kick-e2e-token"),
    ]));
    let upstream = json!({"base": server.ws_base(), "appId": APP_ID, "key": KEY, "secret": SECRET});
    fake.control("POST", "/upstream", upstream).await;
    let api = Api::new(&server);
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("kick"), &[]).await;
    let path = format!("/v1/conversations/{conv}/bridges");

    let r = api.post(&path, &alice, &json!({"platform": "kick", "chatroomId": "12a"})).await;
    r.expect_error(400, "invalid_request");
    assert!(r.error_message().starts_with("chatroomId"), "{r:?}");

    let (mut ws, _) = Ws::connect_ready(&api, &conv, &alice).await;
    let link = json!({"platform": "kick", "chatroomId": CHATROOM, "relayOutbound": true});
    let bridge = api.post(&path, &alice, &link).await.expect(201)["bridge"].clone();
    let id = bridge["id"].as_str().expect("bridge id").to_string();
    assert_eq!((bridge["platform"].as_str(), bridge["room"].as_str()), (Some("kick"), Some("4242")));
    wait_state(&api, &alice, &conv, &id, "live", WITHIN).await;

    // Messages arrive in the order Kick sent them, from `kick:{sender}` with their source.
    for (k, text) in [("k1", "one"), ("k2", "two"), ("k3", "three")] {
        trigger_chat(&fake, k, text).await;
    }
    let mut ours = Vec::new();
    for text in ["one", "two", "three"] {
        let m = next_message(&mut ws, text, |m| m["source"]["platform"] == "kick").await;
        assert_eq!(text_of(&m), text, "in order: {m}");
        assert_eq!(m["senderId"], "kick:777");
        assert_eq!(m["source"]["author"]["username"], "Kicker");
        ours.push(m["id"].as_str().unwrap_or_default().to_string());
    }

    // A deletion in Kick deletes our copy.
    trigger(&fake, "App\\Events\\MessageDeletedEvent", json!({"id": "del-1", "message": {"id": "k2"}})).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let f = ws.next_json(deadline.saturating_duration_since(tokio::time::Instant::now())).await;
        if f["event"] == "message.deleted" {
            assert_eq!(f["payload"]["messageId"], ours[1].as_str(), "{f}");
            break;
        }
    }
    assert_eq!(bridged_texts(&api, &alice, &conv).await, vec!["one", "three"]);

    // A member's message goes to Kick's chat API as the bot, with the token; Kick then shows it in the
    // chatroom, where our own subscription sees it: it is not brought back in as a new message.
    fake.control("POST", "/echo", json!({"channel": channel(CHATROOM)})).await;
    api.send_text(&alice, &conv, "hello kick").await;
    let chat = poll_until("kick got our message", WITHIN, Duration::from_millis(100), || async {
        fake.state().await["chat"].as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await;
    assert_eq!(chat[0]["authorization"], "Bearer kick-e2e-token");
    assert_eq!(chat[0]["body"]["type"], "bot");
    assert!(chat[0]["body"]["content"].as_str().unwrap_or_default().contains("hello kick"), "{chat:?}");
    // The echo was published before the API answered; a viewer's message after it shows it was handled.
    publish_until_seen(&api, &alice, &conv, &fake, "k-after-echo", "after the echo").await;
    let texts = bridged_texts(&api, &alice, &conv).await;
    assert!(!texts.iter().any(|t| t.contains("hello kick")), "our own message came back in: {texts:?}");
    fake.control("POST", "/echo", json!({"channel": null})).await;

    // Kick refuses (403): the message is dropped, the reason says so, and sends are held back (no retry loop).
    fake.control("POST", "/refuse-chat", json!({"on": true})).await;
    api.send_text(&alice, &conv, "refused").await;
    let refused = poll_until("the refusal reported", WITHIN, Duration::from_millis(200), || async {
        bridges(&api, &alice, &conv)
            .await
            .into_iter()
            .find(|b| b["id"] == id.as_str() && b["reason"].as_str().is_some_and(|r| r.contains("forbidden (403)")))
    })
    .await;
    assert_eq!(refused["state"], "live", "a refused send does not change the connection's state: {refused}");
    // Kick accepts again: sends resume once the hold is over (a message sent during the hold is dropped, so send
    // until one gets through), and the refused message was never tried again.
    fake.control("POST", "/refuse-chat", json!({"on": false})).await;
    let mut n = 0;
    poll_until("a send after the refusal", BACK_WITHIN, Duration::from_millis(300), || {
        n += 1;
        let text = format!("after the refusal {n}");
        let (api, alice, conv, fake) = (&api, &alice, &conv, &fake);
        async move {
            let chat = fake.state().await["chat"].as_array().cloned().unwrap_or_default();
            if chat.iter().any(|c| c["body"]["content"].as_str().is_some_and(|t| t.contains("after the refusal"))) {
                return Some(chat);
            }
            api.send_text(alice, conv, &text).await;
            None
        }
    })
    .await;
    let chat = fake.state().await["chat"].as_array().cloned().unwrap_or_default();
    let tries = chat.iter().filter(|c| c["body"]["content"].as_str().is_some_and(|t| t.ends_with("refused"))).count();
    assert_eq!(tries, 1, "a refused message is not retried: {chat:?}");

    // The endpoint closes every socket with 4200: the bridge reconnects at once; a replay is not a duplicate.
    let connects = fake.state().await["connects"].as_i64().unwrap_or(0);
    let r = api.send_raw("POST", "/dev/pusher/reconnect", None, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    poll_until("a reconnect after 4200", WITHIN, Duration::from_millis(100), || async {
        (fake.state().await["connects"].as_i64().unwrap_or(0) > connects).then_some(())
    })
    .await;
    assert!(fake.state().await["upstreamCloses"].as_array().is_some_and(|c| c.contains(&json!(4200))));
    publish_until_seen(&api, &alice, &conv, &fake, "k4", "four").await;
    trigger_chat(&fake, "k3", "three").await;
    publish_until_seen(&api, &alice, &conv, &fake, "k5", "five").await;
    assert_eq!(bridged_texts(&api, &alice, &conv).await, vec!["one", "three", "after the echo", "four", "five"]);

    // The connection drops without a close frame (1006): backoff, reconnect, no duplicate.
    let connects = fake.state().await["connects"].as_i64().unwrap_or(0);
    fake.control("POST", "/cut", json!({})).await;
    poll_until("a reconnect after 1006", BACK_WITHIN, Duration::from_millis(100), || async {
        (fake.state().await["connects"].as_i64().unwrap_or(0) > connects).then_some(())
    })
    .await;
    publish_until_seen(&api, &alice, &conv, &fake, "k5", "five").await;
    publish_until_seen(&api, &alice, &conv, &fake, "k6", "six").await;
    assert_eq!(bridged_texts(&api, &alice, &conv).await, vec!["one", "three", "after the echo", "four", "five", "six"]);
    wait_state(&api, &alice, &conv, &id, "live", WITHIN).await;

    // Unlink: the socket closes and nothing more comes in.
    let before = fake.state().await;
    assert_eq!(api.delete(&format!("{path}/{id}"), &alice).await.status, 204);
    let after = poll_until("the bridge closed its socket", WITHIN, Duration::from_millis(100), || async {
        let s = fake.state().await;
        (s["open"] == 0).then_some(s)
    })
    .await;
    assert!(after["clientCloses"].as_i64() > before["clientCloses"].as_i64(), "{after}");
    trigger_chat(&fake, "k7", "seven").await;
    assert!(bridges(&api, &alice, &conv).await.is_empty());

    // An unknown app key: the endpoint closes with 4001, the bridge fails and does not retry.
    fake.control("POST", "/bad-key", json!({"on": true})).await;
    let other = json!({"platform": "kick", "chatroomId": CHATROOM + 1});
    let failing =
        api.post(&path, &alice, &other).await.expect(201)["bridge"]["id"].as_str().unwrap_or_default().to_string();
    let failed = wait_state(&api, &alice, &conv, &failing, "failed", WITHIN).await;
    assert!(failed["reason"].as_str().unwrap_or_default().contains("4001"), "{failed}");
    let s = fake.state().await;
    assert_eq!(s["connects"].as_i64(), after["connects"].as_i64().map(|c| c + 1), "one attempt, no retry: {s}");
    assert_eq!(bridged_texts(&api, &alice, &conv).await, vec!["one", "three", "after the echo", "four", "five", "six"]);
}
