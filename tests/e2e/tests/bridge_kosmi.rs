//! The Kosmi bridge against a fake Kosmi (tests/e2e/js/fake-kosmi.mjs, the real `graphql-ws` server): messages
//! both ways, no echo, no duplicate after a dropped socket (the room replays its history on join), a refused token
//! costs exactly one new login, an unreachable server means `backoff` then `live` again, and unlinking closes the
//! socket for good.

mod bridge_common;

use bridge_common::*;
use serde_json::json;
use std::time::Duration;
use switchboard_e2e::*;

const ROOM: &str = "@lounge";
const LIVE_WITHIN: Duration = Duration::from_secs(30);
/// The bridge backs off up to 60 s between attempts (BackoffPolicy::BRIDGE); a short outage waits less.
const BACK_WITHIN: Duration = Duration::from_secs(75);

#[tokio::test(flavor = "multi_thread")]
async fn kosmi_bridge_relays_both_ways_and_recovers() {
    let _one = serial().await;
    let fake = NodePeer::start("fake-kosmi.mjs", &[]);
    let kp = fake.port("kosmiPort");
    let server = Server::start_with(&StartOptions::with_vars(&[
        ("KOSMI_HTTP_URL", &format!("http://127.0.0.1:{kp}/")),
        ("KOSMI_WS_URL", &format!("ws://127.0.0.1:{kp}/gql-ws")),
    ]));
    let api = Api::new(&server);
    let alice = api.user("alice").await;
    let outsider = api.user("eve").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("kosmi"), &[]).await;
    let path = format!("/v1/conversations/{conv}/bridges");

    // Validation and membership come first.
    let r = api.post(&path, &alice, &json!({"platform": "kosmi", "room": "https://example.com/x"})).await;
    r.expect_error(400, "invalid_request");
    assert!(r.error_message().starts_with("room"), "{r:?}");
    api.post(&path, &alice, &json!({"platform": "twitch", "room": "x"})).await.expect_error(400, "invalid_request");
    assert_eq!(api.post(&path, &outsider, &json!({"platform": "kosmi", "room": ROOM})).await.status, 403);
    assert_eq!(api.get(&path, &outsider).await.status, 403);

    let (mut ws, _) = Ws::connect_ready(&api, &conv, &alice).await;
    let created =
        api.post(&path, &alice, &json!({"platform": "kosmi", "room": "https://app.kosmi.io/room/@lounge"})).await;
    let bridge = created.expect(201)["bridge"].clone();
    let id = bridge["id"].as_str().expect("bridge id").to_string();
    assert_eq!((bridge["platform"].as_str(), bridge["room"].as_str()), (Some("kosmi"), Some(ROOM)));
    assert_eq!(bridge["relayOutbound"], true);
    let again = api.post(&path, &alice, &json!({"platform": "kosmi", "room": ROOM})).await;
    assert_eq!(again.expect(200)["bridge"]["id"], id, "linking the same room again answers the same bridge");

    wait_state(&api, &alice, &conv, &id, "live", LIVE_WITHIN).await;
    assert_eq!(fake.state().await["logins"], 1);

    // In: a person in the room.
    fake.control("POST", "/inject", json!({"room": ROOM, "id": "k1", "user": "bob", "body": "hello from kosmi"})).await;
    let m = next_message(&mut ws, "from kosmi", |m| text_of(m) == "hello from kosmi").await;
    assert_eq!(m["senderId"], "kosmi:bob");
    assert_eq!(m["source"]["platform"], "kosmi");
    assert_eq!(m["source"]["room"], ROOM);
    assert_eq!(m["source"]["externalId"], "k1");

    // Out: a member's message reaches the room once, and its echo does not come back in.
    api.send_text(&alice, &conv, "hello from switchboard").await;
    let sent = poll_until("the fake got our message", LIVE_WITHIN, Duration::from_millis(100), || async {
        let s = fake.state().await;
        s["sent"].as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let body = sent[0]["body"].as_str().unwrap_or_default();
    assert!(body.contains("hello from switchboard"), "{body}");
    assert_eq!(sent[0]["roomId"], ROOM);
    // A later message from the room arrives after the echo would have: the echo was not taken in.
    fake.control("POST", "/inject", json!({"room": ROOM, "id": "k2", "user": "bob", "body": "after the echo"})).await;
    next_message(&mut ws, "after the echo", |m| text_of(m) == "after the echo").await;
    let bridged = bridged_texts(&api, &alice, &conv).await;
    assert_eq!(bridged, vec!["hello from kosmi", "after the echo"], "no echo of our own message");
    let status = bridges(&api, &alice, &conv).await;
    assert!(status[0]["received"].as_i64().unwrap_or(0) >= 2, "{status:?}");

    // The fake drops the socket; on rejoin the room replays its history: nothing is taken in twice.
    let connects = fake.state().await["connects"].as_i64().unwrap_or(0);
    fake.control("POST", "/drop", json!({})).await;
    poll_until("a new joined connection", BACK_WITHIN, Duration::from_millis(200), || async {
        let s = fake.state().await;
        (s["connects"].as_i64().unwrap_or(0) > connects && s["joinedOpen"] == 1).then_some(())
    })
    .await;
    wait_state(&api, &alice, &conv, &id, "live", LIVE_WITHIN).await;
    fake.control("POST", "/inject", json!({"room": ROOM, "id": "k3", "user": "bob", "body": "after the drop"})).await;
    next_message(&mut ws, "after the drop", |m| text_of(m) == "after the drop").await;
    let texts = bridged_texts(&api, &alice, &conv).await;
    assert_eq!(texts, vec!["hello from kosmi", "after the echo", "after the drop"], "no duplicate after the drop");
    assert_eq!(fake.state().await["logins"], 1, "a drop keeps the token");

    // Kosmi refuses the token: exactly one new login, then live again.
    fake.control("POST", "/refuse", json!({})).await;
    poll_until("a second login and a joined connection", BACK_WITHIN, Duration::from_millis(200), || async {
        let s = fake.state().await;
        (s["logins"] == 2 && s["joinedOpen"] == 1).then_some(())
    })
    .await;
    wait_state(&api, &alice, &conv, &id, "live", LIVE_WITHIN).await;
    api.send_text(&alice, &conv, "after the new login").await;
    poll_until("the second relayed message", LIVE_WITHIN, Duration::from_millis(100), || async {
        let s = fake.state().await;
        (s["sent"].as_array().map_or(0, Vec::len) == 2).then_some(())
    })
    .await;
    let s = fake.state().await;
    assert_eq!(s["logins"], 2, "one refusal, one new login: {s}");
    assert_eq!(s["refusedConnects"], 1, "{s}");

    // Kosmi is unreachable: backoff; back: live again.
    fake.control("POST", "/stop", json!({})).await;
    wait_state(&api, &alice, &conv, &id, "backoff", LIVE_WITHIN).await;
    fake.control("POST", "/start", json!({})).await;
    wait_state(&api, &alice, &conv, &id, "live", BACK_WITHIN).await;
    fake.control("POST", "/inject", json!({"room": ROOM, "id": "k4", "user": "bob", "body": "back again"})).await;
    next_message(&mut ws, "back again", |m| text_of(m) == "back again").await;

    // Unlink: the object closes its socket and stays away.
    let unlinked = api.delete(&format!("{path}/{id}"), &alice).await;
    assert_eq!(unlinked.status, 204, "{unlinked:?}");
    assert!(bridges(&api, &alice, &conv).await.is_empty());
    let closes = poll_until("the bridge closed its socket", LIVE_WITHIN, Duration::from_millis(100), || async {
        let s = fake.state().await;
        (s["open"] == 0).then_some(s)
    })
    .await;
    assert!(closes["clientCloses"].as_i64().unwrap_or(0) >= 1, "{closes}");
    // Messages no longer go out, and the room no longer comes in.
    let sent_before = closes["sent"].as_array().map_or(0, Vec::len);
    api.send_text(&alice, &conv, "not relayed").await;
    let connects = closes["connects"].clone();
    let deleted = api.delete(&format!("{path}/{id}"), &alice).await;
    assert_eq!(deleted.status, 404, "{deleted:?}");
    let s = fake.state().await;
    assert_eq!((s["open"].clone(), s["connects"].clone()), (json!(0), connects), "no reconnect after unlink: {s}");
    assert_eq!(s["sent"].as_array().map_or(0, Vec::len), sent_before, "{s}");
}

/// One test server at a time in this binary (each test runs its own, and the host has two cores).
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE.lock().await
}

#[tokio::test(flavor = "multi_thread")]
async fn kosmi_bridge_comes_back_after_a_restart() {
    let _one = serial().await;
    let fake = NodePeer::start("fake-kosmi.mjs", &[]);
    let kp = fake.port("kosmiPort");
    let server = Server::start_with(&StartOptions::with_vars(&[
        ("KOSMI_HTTP_URL", &format!("http://127.0.0.1:{kp}/")),
        ("KOSMI_WS_URL", &format!("ws://127.0.0.1:{kp}/gql-ws")),
    ]));
    let api = Api::new(&server);
    let alice = api.user("alice").await;
    let conv = api.create_conversation(&alice, &uid("sb"), Some("kosmi restart"), &[]).await;
    let path = format!("/v1/conversations/{conv}/bridges");
    let id = api.post(&path, &alice, &json!({"platform": "kosmi", "room": ROOM})).await.expect(201)["bridge"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_state(&api, &alice, &conv, &id, "live", LIVE_WITHIN).await;
    // A member's message goes to the room; the room keeps it in the history it replays on join.
    api.send_text(&alice, &conv, "said before the restart").await;
    poll_until("the relayed message", LIVE_WITHIN, Duration::from_millis(100), || async {
        (fake.state().await["sent"].as_array().map_or(0, Vec::len) == 1).then_some(())
    })
    .await;
    let before = fake.state().await;

    // A restart (like a deploy) ends the socket; nothing calls the bridge object afterwards: only its watchdog
    // alarm can bring it back, from what it stored (the link and the token).
    tokio::task::block_in_place(|| server.restart());
    poll_until("the bridge reconnected on its own", Duration::from_secs(150), Duration::from_millis(500), || async {
        let s = fake.state().await;
        (s["connects"].as_i64() > before["connects"].as_i64() && s["joinedOpen"] == 1).then_some(())
    })
    .await;
    fake.control("POST", "/inject", json!({"room": ROOM, "id": "r1", "user": "bob", "body": "after the restart"}))
        .await;
    poll_until("the message after the restart", LIVE_WITHIN, Duration::from_millis(200), || async {
        bridged_texts(&api, &alice, &conv).await.iter().any(|t| t == "after the restart").then_some(())
    })
    .await;
    assert_eq!(fake.state().await["logins"], 1, "the stored token was used again");
    // The history replayed on join held our own message: it was known as ours after the restart too.
    let texts = bridged_texts(&api, &alice, &conv).await;
    assert!(!texts.iter().any(|t| t.contains("said before the restart")), "our own message came back in: {texts:?}");
}
