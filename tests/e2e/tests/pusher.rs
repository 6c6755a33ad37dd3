//! The Pusher Channels protocol 7 endpoint (docs/pusher.md), end to end.
//!
//! One server for this file, run with the published test credentials of Pusher's auth-signature
//! documentation (so `/pusher/auth` can be checked against the published vector) and with
//! `PUSHER_WEBHOOK_URL` pointing at a port the Node tests listen on. Tests run one at a time: the
//! last Node test closes every Pusher socket of the app with 4200.
//!
//! - `pusher_js_and_sdk`: unmodified `pusher-js` 8 and `pusher` 5 from npm, in Node
//!   (`tests/e2e/js/pusher.test.mjs`); fails when node exits non-zero.
//! - raw-socket checks the npm client cannot make: close codes, bad frames, the ping auto-response.

use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::Duration;
use switchboard_e2e::{hmac_hex, Api, Frame, Server, StartOptions, StreamingRequest, Ws, WsAuth, FRAME_TIMEOUT};

/// Pusher's published auth-signature example (pusher.com/docs/channels/library_auth_reference).
const VECTOR_KEY: &str = "278d425bdf160c739803";
const VECTOR_SECRET: &str = "7ad3773142a6692b25b8";
const VECTOR_AUTH: &str = "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
const APP_ID: &str = "e2e-app";

struct Fixture {
    server: Server,
    webhook_port: u16,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let webhook_port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
        let hook = format!("http://127.0.0.1:{webhook_port}/webhook");
        let server = Server::start_with(&StartOptions::with_vars(&[
            ("PUSHER_APP_ID", APP_ID),
            ("PUSHER_APP_KEY", VECTOR_KEY),
            ("PUSHER_APP_SECRET", VECTOR_SECRET),
            ("PUSHER_WEBHOOK_URL", &hook),
        ]));
        Fixture { server, webhook_port }
    })
}

/// One test at a time (see the module comment).
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static M: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    M.lock().await
}

async fn raw(api: &Api, path: &str, label: &str) -> Ws {
    Ws::open_path(api, path, WsAuth::None, None, label).await.unwrap_or_else(|r| panic!("{label}: refused {r:?}"))
}

/// Reads the next JSON frame and decodes its `data` string when it is one.
async fn next(ws: &mut Ws) -> (Value, Value) {
    let f = ws.next_json(FRAME_TIMEOUT).await;
    let data = match &f["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        other => other.clone(),
    };
    (f, data)
}

async fn connected(api: &Api, label: &str) -> (Ws, String) {
    let mut ws = raw(api, &format!("/app/{VECTOR_KEY}?protocol=7&client=e2e&version=1"), label).await;
    let (f, data) = next(&mut ws).await;
    assert_eq!(f["event"], "pusher:connection_established", "{f}");
    assert_eq!(data["activity_timeout"], 30, "{f}");
    let id = data["socket_id"].as_str().unwrap_or_default().to_string();
    assert!(id.split_once('.').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()), "{id}");
    (ws, id)
}

async fn channel_auth(api: &Api, token: &str, socket_id: &str, channel: &str) -> Value {
    let body = format!("socket_id={socket_id}&channel_name={channel}");
    let r = api.send_raw("POST", "/pusher/auth", Some(token), Some(body)).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn pusher_js_and_sdk() {
    let _one = serial().await;
    let f = fixture();
    let env = vec![
        ("SWITCHBOARD_URL", f.server.base_url()),
        ("PUSHER_APP_ID", APP_ID.to_string()),
        ("PUSHER_APP_KEY", VECTOR_KEY.to_string()),
        ("PUSHER_APP_SECRET", VECTOR_SECRET.to_string()),
        ("WEBHOOK_PORT", f.webhook_port.to_string()),
    ];
    switchboard_e2e::run_node_tests("tests/e2e/js/pusher.test.mjs", env).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_endpoint_signs_the_published_vector() {
    let _one = serial().await;
    let api = Api::new(&fixture().server);
    let alice = api.dev_token("vector-alice").await;
    // a private channel's auth names its member: `<key>:<member id in hex>:<signature>`, where the
    // signature is the published one's HMAC over `<socket>:<channel>::member::<member id>`
    assert_eq!(format!("{VECTOR_KEY}:{}", hmac_hex(VECTOR_SECRET, "1234.1234:private-foobar")), VECTOR_AUTH);
    let auth = channel_auth(&api, &alice.token, "1234.1234", "private-foobar").await;
    let member_hex: String = alice.id.bytes().map(|b| format!("{b:02x}")).collect();
    let signed = format!("1234.1234:private-foobar::member::{}", alice.id);
    assert_eq!(auth, json!({"auth": format!("{VECTOR_KEY}:{member_hex}:{}", hmac_hex(VECTOR_SECRET, &signed))}));
    // JSON bodies are accepted too; presence answers our channel_data
    let body = json!({"socket_id": "1234.1234", "channel_name": "presence-foobar"}).to_string();
    let r = api.send_raw("POST", "/pusher/auth", Some(&alice.token), Some(body)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["channel_data"], json!(json!({"user_id": alice.id}).to_string()));
    // refusals: no token, bad socket id, public and malformed channel names, unknown conversation
    let cases: [(&str, Option<&str>, u16); 5] = [
        ("socket_id=1234.1234&channel_name=private-x", None, 401),
        ("socket_id=nope&channel_name=private-x", Some(&alice.token), 400),
        ("socket_id=1234.1234&channel_name=public", Some(&alice.token), 400),
        ("socket_id=1234.1234&channel_name=private-conversation-nope", Some(&alice.token), 400),
        ("socket_id=1234.1234&channel_name=private-conversation-01ARZ3NDEKTSV4RRFFQ69G5FAV", Some(&alice.token), 404),
    ];
    for (body, token, status) in cases {
        let r = api.send_raw("POST", "/pusher/auth", token, Some(body.to_string())).await;
        assert_eq!(r.status, status, "{body}: {r:?}");
        assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}: {r:?}");
    }
    let r = api.send_raw("POST", "/pusher/user-auth", Some(&alice.token), Some("socket_id=1234.1234".into())).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["user_data"], json!(json!({"id": alice.id}).to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_refusals_close_with_pusher_codes() {
    let _one = serial().await;
    let api = Api::new(&fixture().server);
    let mut ws = raw(&api, "/app/wrong-key?protocol=7", "wrong key").await;
    assert!(matches!(ws.next_frame(FRAME_TIMEOUT).await, Some(Frame::Close(4001, _))));
    let mut ws = raw(&api, &format!("/app/{VECTOR_KEY}?protocol=6"), "old protocol").await;
    assert!(matches!(ws.next_frame(FRAME_TIMEOUT).await, Some(Frame::Close(4007, _))));
    let r = api.send_raw("GET", &format!("/app/{VECTOR_KEY}?protocol=7"), None, None).await;
    assert_eq!(r.status, 426, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_frames_answer_errors_and_leave_channels_working() {
    let _one = serial().await;
    let api = Api::new(&fixture().server);
    let alice = api.dev_token("frames-alice").await;
    let (mut a, a_id) = connected(&api, "a").await;
    let (mut b, b_id) = connected(&api, "b").await;
    // the runtime's auto-response answers pusher-js's exact ping
    a.send_text(r#"{"event":"pusher:ping","data":{}}"#).await;
    assert_eq!(next(&mut a).await.0["event"], "pusher:pong");
    let bad: [(&str, &str); 5] = [
        ("not json", "pusher:error"),
        (r#"{"event":"pusher:nonsense","data":{}}"#, "pusher:error"),
        (r#"{"data":{}}"#, "pusher:error"),
        (r#"{"event":"pusher:subscribe","data":{"channel":"bad name!"}}"#, "pusher:subscription_error"),
        (r#"{"event":"pusher:subscribe","data":{"channel":"private-x","auth":"k:00"}}"#, "pusher:subscription_error"),
    ];
    for (frame, answer) in bad {
        a.send_text(frame).await;
        let (f, data) = next(&mut a).await;
        assert_eq!(f["event"], answer, "{frame}: {f}");
        assert!(data.to_string().len() > 10, "{frame}: {f}");
        if frame.contains("k:00") {
            assert_eq!((data["type"].as_str(), data["status"].as_u64()), (Some("AuthError"), Some(403)), "{f}");
        }
    }
    let long = format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{}"}}}}"#, "c".repeat(165));
    a.send_text(&long).await;
    assert_eq!(next(&mut a).await.0["event"], "pusher:subscription_error");
    // the same sockets still subscribe and exchange client events (never echoed)
    let name = format!("private-frames-{}", switchboard_e2e::uid("c"));
    for (ws, id) in [(&mut a, &a_id), (&mut b, &b_id)] {
        let auth = channel_auth(&api, &alice.token, id, &name).await;
        ws.send_json(&json!({"event": "pusher:subscribe", "data": {"channel": name, "auth": auth["auth"]}})).await;
        let (f, _) = next(ws).await;
        assert_eq!(f["event"], "pusher_internal:subscription_succeeded", "{f}");
    }
    a.send_json(&json!({"event": "client-x", "channel": name, "data": {"v": 1}})).await;
    let (f, data) = next(&mut b).await;
    assert_eq!((f["event"].as_str(), f["channel"].as_str()), (Some("client-x"), Some(name.as_str())), "{f}");
    assert_eq!(data, json!({"v": 1}));
    a.send_text(r#"{"event":"pusher:ping","data":{}}"#).await;
    assert_eq!(next(&mut a).await.0["event"], "pusher:pong", "no echo of the client event came first");
    // a client event on a channel the socket is not in is refused; a binary frame closes with 1003
    a.send_json(&json!({"event": "client-x", "channel": "private-elsewhere", "data": {}})).await;
    assert_eq!(next(&mut a).await.0["event"], "pusher:error");
    a.send_binary(vec![1, 2, 3]).await;
    assert!(matches!(a.next_frame(FRAME_TIMEOUT).await, Some(Frame::Close(1003, _))));
    b.send_text(r#"{"event":"pusher:ping","data":{}}"#).await;
    assert!(matches!(b.next_frame(Duration::from_secs(5)).await, Some(Frame::Text(t)) if t.contains("pusher:pong")));
}

/// A Pusher HTTP API body over 256 KiB is refused (413) while it is still streaming, before any
/// signature is checked: the body never ends here (chunked, no `content-length`), so an answer
/// proves the server stopped reading at the cap instead of buffering all of it.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_body_over_the_cap_is_refused_while_streaming() {
    let _one = serial().await;
    let api = Api::new(&fixture().server);
    let path = format!("/apps/{APP_ID}/events?auth_key={VECTOR_KEY}&auth_timestamp=1&auth_version=1.0");
    let mut req = StreamingRequest::start(&api, "POST", &path, None, "application/json").await;
    req.send(br#"{"name":"e","channel":"c","data":""#).await;
    let chunk = vec![b'a'; 16 * 1024];
    for _ in 0..17 {
        // 17 × 16 KiB = 272 KiB > 256 KiB; the server may stop reading once past the cap.
        if !req.try_send(&chunk).await {
            break;
        }
    }
    let r = req.response().await;
    assert_eq!(r.status, 413, "{r:?}");
}
