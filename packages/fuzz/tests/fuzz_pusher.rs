//! Fuzzing the Pusher protocol-7 decoders of `switchboard-pusher`: client frames (the server's codec and the
//! registry that handles them), server frames (our client's codec and state machine), the HTTP API (routes,
//! query strings, signatures, trigger and batch bodies), socket ids, presence `channel_data`, `user_data`,
//! channel names and stored socket records.

use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_fuzz::*;
use switchboard_pusher::http_api::{self, ChannelsQuery, HttpError, Query};
use switchboard_pusher::limits::MAX_CLIENT_FRAME_BYTES;
use switchboard_pusher::{
    auth, channel, App, Client, ClientFrame, FrameError, Registry, ServerMessage, SocketId, SocketRecord,
};

fn app() -> App {
    App::new("3", "key", "secret-secret-secret")
}

fn client_seeds() -> Vec<Value> {
    vec![
        json!({"event": "pusher:ping", "data": {}}),
        json!({"event": "pusher:subscribe", "data": {"channel": "public-x"}}),
        json!({"event": "pusher:subscribe", "data": {"channel": "private-x", "auth": "key:abc"}}),
        json!({"event": "pusher:subscribe", "data": {"channel": "presence-x", "auth": "key:abc",
               "channel_data": "{\"user_id\":\"u1\",\"user_info\":{\"name\":\"A\"}}"}}),
        json!({"event": "pusher:subscribe", "data": "{\"channel\":\"x\"}"}),
        json!({"event": "pusher:unsubscribe", "data": {"channel": "x"}}),
        json!({"event": "pusher:signin", "data": {"auth": "key:abc", "user_data": "{\"id\":\"u1\"}"}}),
        json!({"event": "client-typing", "channel": "private-x", "data": {"a": 1}}),
        json!({"event": "client-typing", "channel": "presence-x", "data": "text"}),
    ]
}

fn server_seeds() -> Vec<Value> {
    vec![
        json!({"event": "pusher:connection_established", "data": "{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}),
        json!({"event": "pusher:ping", "data": {}}),
        json!({"event": "pusher:error", "data": {"code": 4201, "message": "pong"}}),
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "chatrooms.1.v2", "data": "{}"}),
        json!({"event": "pusher:subscription_error", "channel": "private-x", "data": {"type": "AuthError", "status": 401}}),
        json!({"event": "pusher_internal:member_added", "channel": "presence-x", "data": "{\"user_id\":\"u\",\"user_info\":{}}"}),
        json!({"event": "pusher_internal:member_removed", "channel": "presence-x", "data": "{\"user_id\":7}"}),
        json!({"event": "pusher:signin_success", "data": {"user_data": "{\"id\":\"u\"}"}}),
        json!({"event": "App\\Events\\ChatMessageEvent", "channel": "chatrooms.1.v2", "data": "{\"id\":\"m\"}", "user_id": "u"}),
    ]
}

fn trigger_seeds() -> Vec<Value> {
    vec![
        json!({"name": "ev", "data": "{\"a\":1}", "channels": ["a", "private-b"], "socket_id": "1.2", "info": "user_count"}),
        json!({"name": "ev", "data": {"a": 1}, "channel": "a"}),
        json!({"batch": [{"name": "ev", "data": "x", "channel": "a", "info": "subscription_count"}, {"name": "e2", "data": "y", "channel": "presence-p"}]}),
    ]
}

fn frame_error_is_answer(e: &switchboard_pusher::FrameError) -> Result<(), TestCaseError> {
    let f: Value = serde_json::from_str(&e.to_error_frame()).map_err(|x| TestCaseError::fail(x.to_string()))?;
    prop_assert_eq!(&f["event"], &json!("pusher:error"));
    Ok(())
}

fn http_error_is_answer(e: &HttpError) -> Result<(), TestCaseError> {
    prop_assert!((400..500).contains(&e.status()), "{e:?}");
    serde_json::from_str::<Value>(&e.to_body()).map_err(|x| TestCaseError::fail(x.to_string()))?;
    Ok(())
}

fn socket(a: u64, b: u64) -> SocketId {
    SocketId::from_random(a, b)
}

proptest! {
    #![proptest_config(config("regressions/fuzz_pusher.txt"))]

    #[test]
    fn fuzz_pusher_client_frames(text in frame_text(client_seeds())) {
        match ClientFrame::parse(&text) {
            // What we accept, we write back the way pusher-js does, and read the same again — unless writing it
            // grew it past the limit (raw JSON `data` is written back as a string, with its quotes escaped).
            Ok(f) => {
                let text = f.encode();
                if text.len() <= MAX_CLIENT_FRAME_BYTES {
                    prop_assert_eq!(ClientFrame::parse(&text), Ok(f));
                } else {
                    let too_large = matches!(ClientFrame::parse(&text), Err(FrameError::TooLarge { .. }));
                    prop_assert!(too_large, "{} bytes", text.len());
                }
            }
            Err(e) => frame_error_is_answer(&e)?,
        }
    }

    #[test]
    fn fuzz_pusher_registry_frames(frames in prop::collection::vec(frame_text(client_seeds()), 1..6), a in any::<u64>()) {
        let mut r = Registry::new(app());
        let s = socket(a, 1);
        r.connect(s.clone());
        let mut now = 0;
        for f in &frames {
            now += 1_000;
            let _ = r.handle_frame(&s, f, now);
            // Whatever happened, the record we would store for the socket reads back.
            if let Some(rec) = r.record(&s) {
                let text = rec.to_json();
                prop_assert!(SocketRecord::from_json(&text).is_some(), "{}", text);
            }
        }
        let _ = r.disconnect(&s);
        prop_assert!(!r.contains(&s));
    }

    #[test]
    fn fuzz_pusher_server_frames(text in frame_text(server_seeds())) {
        if let Err(e) = ServerMessage::parse(&text) {
            frame_error_is_answer(&e)?;
        }
        // Our client reads any frame in any state without panicking and keeps a bounded state.
        let mut c = Client::new(["chatrooms.1.v2".to_string(), "private-x".to_string()]);
        let _ = c.start(0);
        let g = c.generation();
        let _ = c.handle_text(g, &text, 10);
        let _ = c.handle_text(g, r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":30}"}"#, 20);
        let _ = c.handle_text(g, &text, 30);
        let _ = c.handle_timeout(1_000_000, 7);
        prop_assert!(c.channels().len() <= 2);
    }

    #[test]
    fn fuzz_pusher_http_bodies(body in body_bytes(trigger_seeds())) {
        match http_api::parse_trigger(&body) {
            Ok(t) => prop_assert!(!t.channels.is_empty()),
            Err(e) => http_error_is_answer(&e)?,
        }
        match http_api::parse_batch(&body) {
            Ok(ts) => for t in ts { prop_assert!(!t.channels.is_empty()) },
            Err(e) => http_error_is_answer(&e)?,
        }
    }

    #[test]
    fn fuzz_pusher_http_requests(
        method in prop::sample::select(&["GET", "POST", "PUT", "get", ""][..]),
        path in prop_oneof![any::<String>(), "/apps/3/(events|batch_events|channels|channels/[a-z%@;.=-]{0,12}(/users)?)",
                            "/apps/[0-9]{1,3}/[a-z/]{0,20}"],
        query in prop_oneof![any::<String>(), "([a-z_]{1,14}=[a-zA-Z0-9%+.]{0,20}&?){0,6}",
                             "auth_key=key&auth_timestamp=[0-9]{1,12}&auth_version=1\\.0&auth_signature=[0-9a-f]{0,64}(&body_md5=[0-9a-f]{32})?"],
        body in prop::collection::vec(any::<u8>(), 0..64),
        now in any::<u64>(),
    ) {
        if let Err(e) = http_api::route(&app(), method, &path) { http_error_is_answer(&e)?; }
        for plus in [false, true] {
            if let Ok(q) = Query::parse(&query, plus) {
                if let Err(e) = ChannelsQuery::from_query(&q) { http_error_is_answer(&e)?; }
                if let Err(e) = http_api::channel_info_fields("presence-x", &q) { http_error_is_answer(&e)?; }
            }
        }
        match http_api::verify(&app(), method, &path, &query, &body, now) {
            Ok(_) => prop_assert!(false, "an unsigned request verified"),
            Err(e) => http_error_is_answer(&e)?,
        }
    }

    #[test]
    fn fuzz_pusher_auth_fields(s in prop_oneof![any::<String>(), "[0-9]{1,20}\\.[0-9]{1,20}",
            near_valid(vec![json!({"user_id": "u1", "user_info": {"name": "A"}}), json!({"id": "u1", "user_info": {}, "watchlist": ["a"]})])],
        sig in prop_oneof![any::<String>(), "key:[0-9a-f]{64}"]) {
        if let Ok(id) = SocketId::parse(&s) {
            prop_assert!(auth::valid_socket_id(id.as_str()));
            prop_assert_eq!(SocketId::parse(id.as_str()).ok(), Some(id));
        }
        let _ = auth::parse_channel_data(&s);
        let _ = auth::parse_user_data(&s);
        let _ = auth::verify_user(&app(), &sig, "1.2", &s);
        let _ = auth::verify_channel(&app(), Some(&sig), "1.2", "presence-x", Some(&s));
        let _ = channel::validate(&s);
        let _ = channel::validate_event_name(&s);
        let _ = channel::validate_client_event_name(&s);
        let _ = channel::conversation(&s);
        let _ = SocketRecord::from_json(&s);
    }

    #[test]
    fn fuzz_pusher_signed_channels_round_trip(
        a in any::<u64>(),
        ch in "(private|presence)-[A-Za-z0-9_=@,.;-]{1,40}",
        data in near_valid(vec![json!({"user_id": "u1", "user_info": {"name": "A"}})]),
    ) {
        let app = app();
        let s = socket(a, 2);
        let cd = ch.starts_with("presence-").then_some(data.as_str());
        let signed = auth::sign_channel(&app, s.as_str(), &ch, cd);
        let ok = auth::verify_channel(&app, Some(&signed), s.as_str(), &ch, cd);
        if cd.is_none() || auth::parse_channel_data(&data).is_ok() {
            prop_assert!(ok.is_ok(), "{:?}", ok);
        }
        let other = socket(a, 3);
        prop_assert!(auth::verify_channel(&app, Some(&signed), other.as_str(), &ch, cd).is_err());
    }
}
