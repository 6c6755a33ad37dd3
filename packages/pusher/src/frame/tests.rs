use super::*;
use crate::limits::MAX_CLIENT_FRAME_BYTES;
use proptest::prelude::*;
use serde_json::Value;

#[test]
fn connection_established_is_double_encoded() {
    let f = ServerFrame::ConnectionEstablished { socket_id: "123.456", activity_timeout_secs: 30 }.encode();
    assert_eq!(
        f,
        r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":30}"}"#
    );
    // what pusher-js does with it: JSON.parse the frame, then JSON.parse the string data
    let outer: Value = serde_json::from_str(&f).unwrap();
    let inner: Value = serde_json::from_str(outer["data"].as_str().unwrap()).unwrap();
    assert_eq!(inner["activity_timeout"], 30);
    assert_eq!(inner["socket_id"], "123.456");
}

#[test]
fn server_frames_exact_text() {
    assert_eq!(ServerFrame::Pong.encode(), r#"{"event":"pusher:pong","data":"{}"}"#);
    assert_eq!(ServerFrame::Ping.encode(), r#"{"event":"pusher:ping","data":"{}"}"#);
    assert_eq!(
        ServerFrame::Error { code: Some(4301), message: "slow down" }.encode(),
        r#"{"event":"pusher:error","data":"{\"code\":4301,\"message\":\"slow down\"}"}"#
    );
    assert_eq!(
        ServerFrame::Error { code: None, message: "x" }.encode(),
        r#"{"event":"pusher:error","data":"{\"code\":null,\"message\":\"x\"}"}"#
    );
    assert_eq!(
        ServerFrame::SubscriptionSucceeded { channel: "private-a", data_json: "{}" }.encode(),
        r#"{"event":"pusher_internal:subscription_succeeded","channel":"private-a","data":"{}"}"#
    );
    assert_eq!(
        ServerFrame::SubscriptionError { channel: "private-a", kind: "AuthError", error: "bad", status: 401 }.encode(),
        r#"{"event":"pusher:subscription_error","channel":"private-a","data":"{\"type\":\"AuthError\",\"error\":\"bad\",\"status\":401}"}"#
    );
    assert_eq!(
        ServerFrame::MemberAdded { channel: "presence-a", user_id: "u1", user_info: Some(r#"{"n":"A"}"#) }.encode(),
        r#"{"event":"pusher_internal:member_added","channel":"presence-a","data":"{\"user_id\":\"u1\",\"user_info\":{\"n\":\"A\"}}"}"#
    );
    assert_eq!(
        ServerFrame::MemberRemoved { channel: "presence-a", user_id: "u1" }.encode(),
        r#"{"event":"pusher_internal:member_removed","channel":"presence-a","data":"{\"user_id\":\"u1\"}"}"#
    );
    assert_eq!(
        ServerFrame::SigninSuccess { user_data: r#"{"id":"u1"}"# }.encode(),
        r#"{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"u1\\\"}\"}"}"#
    );
    assert_eq!(
        ServerFrame::Event { channel: "c", event: "e", data: r#"{"a":1}"#, user_id: Some("u") }.encode(),
        r#"{"event":"e","channel":"c","data":"{\"a\":1}","user_id":"u"}"#
    );
}

#[test]
fn presence_data_shape() {
    assert_eq!(
        presence_data([("1", Some(r#"{"name":"a"}"#)), ("2", None)]),
        r#"{"presence":{"ids":["1","2"],"hash":{"1":{"name":"a"},"2":null},"count":2}}"#
    );
    assert_eq!(presence_data([]), r#"{"presence":{"ids":[],"hash":{},"count":0}}"#);
}

#[test]
fn parses_what_pusher_js_sends() {
    assert_eq!(ClientFrame::parse(r#"{"event":"pusher:ping","data":{}}"#), Ok(ClientFrame::Ping));
    assert_eq!(
        ClientFrame::parse(
            r#"{"event":"pusher:subscribe","data":{"auth":"k:abc","channel_data":"{\"user_id\":\"1\"}","channel":"presence-x"}}"#
        ),
        Ok(ClientFrame::Subscribe {
            channel: "presence-x".into(),
            auth: Some("k:abc".into()),
            channel_data: Some(r#"{"user_id":"1"}"#.into())
        })
    );
    assert_eq!(
        ClientFrame::parse(r#"{"event":"pusher:unsubscribe","data":{"channel":"a"}}"#),
        Ok(ClientFrame::Unsubscribe { channel: "a".into() })
    );
    assert_eq!(
        ClientFrame::parse(r#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}"#),
        Ok(ClientFrame::Signin { auth: "k:s".into(), user_data: r#"{"id":"1"}"#.into() })
    );
    // client events: an object is kept as its exact text, a string as its contents
    assert_eq!(
        ClientFrame::parse(r#"{"event":"client-typing","channel":"private-a","data":{"b":1, "a":2}}"#),
        Ok(ClientFrame::ClientEvent {
            event: "client-typing".into(),
            channel: "private-a".into(),
            data: r#"{"b":1, "a":2}"#.into()
        })
    );
    assert_eq!(
        ClientFrame::parse(r#"{"event":"client-x","channel":"private-a","data":"hi \"there\""}"#),
        Ok(ClientFrame::ClientEvent {
            event: "client-x".into(),
            channel: "private-a".into(),
            data: r#"hi "there""#.into()
        })
    );
}

#[test]
fn lenient_subscribe_with_string_data() {
    assert_eq!(
        ClientFrame::parse(r#"{"event":"pusher:subscribe","data":"{\"channel\":\"a\",\"x\":1}","zz":true}"#),
        Ok(ClientFrame::Subscribe { channel: "a".into(), auth: None, channel_data: None })
    );
    // Kick's subscribe: empty auth
    assert_eq!(
        ClientFrame::parse(r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"chatrooms.1.v2"}}"#),
        Ok(ClientFrame::Subscribe { channel: "chatrooms.1.v2".into(), auth: Some(String::new()), channel_data: None })
    );
    // a ping without data
    assert_eq!(ClientFrame::parse(r#"{"event":"pusher:ping"}"#), Ok(ClientFrame::Ping));
}

#[test]
fn bad_client_frames_are_typed_errors() {
    assert!(matches!(ClientFrame::parse("nope"), Err(FrameError::Malformed(_))));
    assert!(matches!(ClientFrame::parse("[1]"), Err(FrameError::Malformed(_))));
    assert_eq!(ClientFrame::parse(r#"{"data":{}}"#), Err(FrameError::MissingEvent));
    assert_eq!(ClientFrame::parse(r#"{"event":3}"#), Err(FrameError::MissingEvent));
    assert_eq!(
        ClientFrame::parse(r#"{"event":"pusher:subscribe","data":{}}"#),
        Err(FrameError::MissingField { event: "pusher:subscribe".into(), field: "channel" })
    );
    assert_eq!(
        ClientFrame::parse(r#"{"event":"client-x","data":{}}"#),
        Err(FrameError::MissingField { event: "client-x".into(), field: "channel" })
    );
    assert_eq!(ClientFrame::parse(r#"{"event":"hello"}"#), Err(FrameError::UnknownEvent("hello".into())));
    assert!(matches!(ClientFrame::parse(r#"{"event":"pusher:subscribe","data":[1]}"#), Err(FrameError::Malformed(_))));
    let big = format!(r#"{{"event":"client-x","channel":"c","data":"{}"}}"#, "a".repeat(MAX_CLIENT_FRAME_BYTES));
    let err = ClientFrame::parse(&big).unwrap_err();
    assert_eq!(err.close_code(), Some(1009));
    assert_eq!(
        FrameError::MissingEvent.to_error_frame(),
        r#"{"event":"pusher:error","data":"{\"code\":null,\"message\":\"malformed frame: `event` must be a string\"}"}"#
    );
}

#[test]
fn client_frames_exact_text() {
    assert_eq!(ClientFrame::Ping.encode(), r#"{"event":"pusher:ping","data":{}}"#);
    assert_eq!(ClientFrame::Pong.encode(), r#"{"event":"pusher:pong","data":{}}"#);
    assert_eq!(
        ClientFrame::Subscribe { channel: "chatrooms.1.v2".into(), auth: Some(String::new()), channel_data: None }
            .encode(),
        r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"chatrooms.1.v2"}}"#
    );
    assert_eq!(
        ClientFrame::Subscribe { channel: "a".into(), auth: None, channel_data: None }.encode(),
        r#"{"event":"pusher:subscribe","data":{"channel":"a"}}"#
    );
    assert_eq!(
        ClientFrame::Unsubscribe { channel: "a".into() }.encode(),
        r#"{"event":"pusher:unsubscribe","data":{"channel":"a"}}"#
    );
}

#[test]
fn parses_server_messages() {
    assert_eq!(
        ServerMessage::parse(
            r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}"#
        ),
        Ok(ServerMessage::ConnectionEstablished { socket_id: "1.2".into(), activity_timeout_secs: Some(120) })
    );
    assert_eq!(
        ServerMessage::parse(r#"{"event":"pusher:connection_established","data":{"socket_id":"1.2"}}"#),
        Ok(ServerMessage::ConnectionEstablished { socket_id: "1.2".into(), activity_timeout_secs: None })
    );
    assert_eq!(ServerMessage::parse(r#"{"event":"pusher:ping","data":{}}"#), Ok(ServerMessage::Ping));
    assert_eq!(
        ServerMessage::parse(
            r#"{"event":"pusher:error","data":{"code":4001,"message":"App key x not in this cluster"}}"#
        ),
        Ok(ServerMessage::Error { code: Some(4001), message: "App key x not in this cluster".into() })
    );
    assert_eq!(
        ServerMessage::parse(r#"{"event":"pusher:error","data":"{\"code\":null,\"message\":\"m\"}"}"#),
        Ok(ServerMessage::Error { code: None, message: "m".into() })
    );
    assert_eq!(
        ServerMessage::parse(
            r#"{"event":"pusher_internal:subscription_succeeded","channel":"chatrooms.1.v2","data":"{}"}"#
        ),
        Ok(ServerMessage::SubscriptionSucceeded { channel: "chatrooms.1.v2".into(), data: "{}".into() })
    );
    assert_eq!(
        ServerMessage::parse(
            r#"{"event":"App\\Events\\ChatMessageEvent","data":"{\"id\":\"x\",\"content\":\"hi\"}","channel":"chatrooms.1.v2"}"#
        ),
        Ok(ServerMessage::Event {
            channel: Some("chatrooms.1.v2".into()),
            event: r"App\Events\ChatMessageEvent".into(),
            data: r#"{"id":"x","content":"hi"}"#.into(),
            user_id: None
        })
    );
    // object data (some servers): kept as its text
    assert_eq!(
        ServerMessage::parse(r#"{"event":"e","channel":"c","data":{"a":[1,2]},"user_id":7}"#),
        Ok(ServerMessage::Event {
            channel: Some("c".into()),
            event: "e".into(),
            data: r#"{"a":[1,2]}"#.into(),
            user_id: Some("7".into())
        })
    );
    assert_eq!(
        ServerMessage::parse(
            r#"{"event":"pusher_internal:member_added","channel":"presence-a","data":"{\"user_id\":5,\"user_info\":{\"n\":1}}"}"#
        ),
        Ok(ServerMessage::MemberAdded {
            channel: "presence-a".into(),
            user_id: "5".into(),
            user_info: Some(r#"{"n":1}"#.into())
        })
    );
    assert_eq!(
        ServerMessage::parse(r#"{"event":"pusher_internal:member_removed","data":"{}"}"#).unwrap_err(),
        FrameError::MissingField { event: "pusher_internal:member_removed".into(), field: "channel" }
    );
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z\\-\"\\\\{}:,]{0,20}"]
}

fn arb_client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        Just(ClientFrame::Ping),
        Just(ClientFrame::Pong),
        (arb_text(), proptest::option::of(arb_text()), proptest::option::of(arb_text()))
            .prop_map(|(channel, auth, channel_data)| ClientFrame::Subscribe { channel, auth, channel_data }),
        arb_text().prop_map(|channel| ClientFrame::Unsubscribe { channel }),
        (arb_text(), arb_text()).prop_map(|(auth, user_data)| ClientFrame::Signin { auth, user_data }),
        (arb_text(), arb_text(), arb_text()).prop_map(|(e, channel, data)| ClientFrame::ClientEvent {
            event: format!("client-{e}"),
            channel,
            data
        }),
    ]
}

proptest! {
    #[test]
    fn escaping_matches_serde_json(s in any::<String>()) {
        prop_assert_eq!(json_string(&s), serde_json::to_string(&s).unwrap());
    }

    #[test]
    fn client_frames_round_trip(f in arb_client_frame()) {
        // the subscribe/unsubscribe/signin `data` empty-string special case: an empty channel
        // string is still a channel
        let text = f.encode();
        prop_assert_eq!(ClientFrame::parse(&text), Ok(f));
    }

    #[test]
    fn server_events_round_trip(channel in arb_text(), event in "[a-z\\\\:]{1,20}", data in arb_text(), user in proptest::option::of(arb_text())) {
        prop_assume!(!event.starts_with("pusher"));
        let text = ServerFrame::Event { channel: &channel, event: &event, data: &data, user_id: user.as_deref() }.encode();
        prop_assert_eq!(
            ServerMessage::parse(&text),
            Ok(ServerMessage::Event { channel: Some(channel.clone()), event: event.clone(), data: data.clone(), user_id: user.clone() })
        );
    }

    #[test]
    fn parsing_never_panics(s in any::<String>()) {
        let _ = ClientFrame::parse(&s);
        let _ = ServerMessage::parse(&s);
    }

    #[test]
    fn parsing_near_valid_frames_never_panics(event in "(pusher:[a-z_]{0,12}|client-[a-z]{0,3}|pusher_internal:[a-z_]{0,20})", data in prop_oneof![Just("{}".to_string()), Just("\"\"".to_string()), Just("null".to_string()), Just("[]".to_string()), Just("\"{\\\"channel\\\":1}\"".to_string()), Just("{\"user_id\":[]}".to_string())]) {
        let text = format!(r#"{{"event":"{event}","channel":"c","data":{data}}}"#);
        let _ = ClientFrame::parse(&text);
        let _ = ServerMessage::parse(&text);
    }
}
