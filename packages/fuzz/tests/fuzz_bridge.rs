//! Fuzzing the bridges' decoders (`switchboard-bridge`): graphql-transport-ws server frames (through the client
//! state machine, in every phase), Kick's Pusher events (the mapper and the whole reader), Kick's chat answers,
//! Kosmi's `newMessage` results, login answers and room ids (and the whole relay), and the link request body.

use proptest::prelude::*;
use serde_json::{json, Value};
use switchboard_bridge::event::BridgeEvent;
use switchboard_bridge::graphql_ws::{Effect, GraphqlWs, Input, Operation};
use switchboard_bridge::kick_client::KickReader;
use switchboard_bridge::kick_send::KickSender;
use switchboard_bridge::kosmi::{self, KosmiConfig, KosmiRelay, RoomId};
use switchboard_bridge::link::Link;
use switchboard_bridge::nick::NickFormat;
use switchboard_bridge::source::BridgedMessage;
use switchboard_core::backoff::BackoffPolicy;
use switchboard_core::limits::MAX_TEXT_CHARS;
use switchboard_fuzz::*;

/// Kick's recorded events (packages/bridge/tests/fixtures/kick): the frames as Kick sends them.
fn kick_fixtures() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../bridge/tests/fixtures/kick");
    let mut out: Vec<Value> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect();
    out.sort_by_key(Value::to_string);
    assert!(out.len() >= 5, "kick fixtures not found in {dir}");
    out
}

/// The fixtures' `data` decoded (Kick double-encodes it), to edit inside.
fn kick_data_seeds() -> Vec<(String, Value)> {
    kick_fixtures()
        .into_iter()
        .filter_map(|f| {
            let event = f["event"].as_str()?.to_string();
            let data = serde_json::from_str(f["data"].as_str()?).ok()?;
            Some((event, data))
        })
        .collect()
}

fn check_bridged(m: &BridgedMessage) -> Result<(), TestCaseError> {
    let n = m.text.chars().count();
    prop_assert!((1..=MAX_TEXT_CHARS).contains(&n), "text of {n} chars");
    prop_assert_eq!(m.text.trim(), m.text.as_str());
    // The content we commit is a valid message.
    let content = serde_json::to_value(m.content()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(switchboard_core::content::parse(&content).is_ok(), "{}", content);
    prop_assert!(!m.idempotency_key.is_empty());
    Ok(())
}

fn check_event(e: &BridgeEvent) -> Result<(), TestCaseError> {
    match e {
        BridgeEvent::Message(m) => check_bridged(m)?,
        BridgeEvent::Notice(n) => {
            let _ = (n.event_type(), n.payload());
        }
        _ => {}
    }
    Ok(())
}

fn gql_seeds() -> Vec<Value> {
    vec![
        json!({"type": "connection_ack", "payload": {}}),
        json!({"type": "ping"}),
        json!({"type": "pong"}),
        json!({"id": "1", "type": "next", "payload": {"data": {"newMessage": {"id": "m1", "body": "hi", "time": 1,
               "user": {"id": "u1", "username": "ann", "displayName": "Ann"}}}}}),
        json!({"id": "2", "type": "next", "payload": {"data": {"joinRoom": {"ok": true}}}}),
        json!({"id": "1", "type": "error", "payload": [{"message": "no"}]}),
        json!({"id": "1", "type": "complete"}),
    ]
}

fn drain(c: &mut GraphqlWs) -> Vec<Effect> {
    std::iter::from_fn(|| c.poll()).take(10_000).collect()
}

fn kosmi_room() -> RoomId {
    RoomId::parse("@hyperspaceout").expect("room")
}

proptest! {
    #![proptest_config(config("regressions/fuzz_bridge.txt"))]

    #[test]
    fn fuzz_graphql_ws_frames(frames in prop::collection::vec(frame_text(gql_seeds()), 1..5), ack_first in any::<bool>()) {
        let op = Operation { query: "subscription S { s }".into(), operation_name: Some("S".into()), variables: json!({"r": 1}) };
        let mut c = GraphqlWs::new(BackoffPolicy::BRIDGE, json!({"token": "t"}));
        c.start(0);
        c.handle(0, 0, Input::Opened { conn: 1 });
        if ack_first {
            c.handle(0, 0, Input::Text { conn: 1, text: r#"{"type":"connection_ack"}"# });
            prop_assert!(c.subscribe(&op).is_ok());
        }
        drain(&mut c);
        let mut now = 0;
        for f in &frames {
            now += 100;
            c.handle(now, 5, Input::Text { conn: 1, text: f });
            for e in drain(&mut c) {
                // We only ever send well-formed protocol messages.
                if let Effect::Send { text, .. } = e {
                    let v: Value = serde_json::from_str(&text).map_err(|x| TestCaseError::fail(x.to_string()))?;
                    prop_assert!(v["type"].is_string(), "{}", text);
                }
            }
        }
        c.handle(now + 1, 5, Input::Timeout);
        c.handle(now + 2, 5, Input::Closed { conn: 1, code: 4400, reason: "x" });
        drain(&mut c);
    }

    #[test]
    fn fuzz_kick_events(
        (event, data) in prop::sample::select(kick_data_seeds()).prop_flat_map(|(ev, d)| {
            (prop_oneof![4 => Just(ev), 1 => any::<String>()], prop_oneof![4 => near_valid(vec![d]), 1 => any::<String>()])
        }),
        room in prop_oneof![Just("2507974".to_string()), any::<String>()],
    ) {
        match switchboard_bridge::kick::parse(&room, &event, &data) {
            Ok(e) => check_event(&e)?,
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn fuzz_kick_reader(frames in prop::collection::vec(frame_text(kick_fixtures()), 1..4)) {
        let mut r = KickReader::new("2507974").map_err(|_| TestCaseError::fail("chatroom"))?;
        let generation = r.start(0).iter().find_map(|e| match e {
            switchboard_bridge::kick_client::KickReaderEffect::Connect { generation } => Some(*generation),
            _ => None,
        }).unwrap_or(1);
        let established = r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":30}"}"#;
        r.handle_text(generation, established, 1);
        let sub = r#"{"event":"pusher_internal:subscription_succeeded","channel":"chatrooms.2507974.v2","data":"{}"}"#;
        r.handle_text(generation, sub, 2);
        for (i, f) in frames.iter().enumerate() {
            for e in r.handle_text(generation, f, 10 + i as u64) {
                if let switchboard_bridge::kick_client::KickReaderEffect::Event(ev) = e {
                    check_event(&ev)?;
                }
            }
        }
        r.handle_timeout(1_000_000, 3);
    }

    #[test]
    fn fuzz_kick_send_answers(status in prop_oneof![Just(200u16), Just(401), Just(429), Just(500), 100u16..600],
        body in frame_text(vec![json!({"data": {"is_sent": true, "message_id": "m"}, "message": "ok"})]),
        retry in proptest::option::of(any::<u64>())) {
        let mut s = KickSender::new();
        let _ = s.on_answer(0, 1, status, &body, retry);
        let _ = s.check(1);
        let _ = s.on_answer(u64::MAX / 2, u64::MAX, status, &body, retry);
    }

    #[test]
    fn fuzz_kosmi_messages(text in frame_text(vec![gql_seeds()[3]["payload"].clone(),
        json!({"errors": [{"message": "nope"}], "data": null})])) {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if let Ok(m) = kosmi::map_new_message(&kosmi_room(), &v) { check_bridged(&m)?; }
        match kosmi::parse_login(&text) {
            Ok(token) => prop_assert!(!token.is_empty() && !token.contains(' ')),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn fuzz_kosmi_rooms_and_links(s in prop_oneof![any::<String>(), "(https://app\\.kosmi\\.io/room/)?@?[A-Za-z0-9_.-]{0,70}[/?#]?"],
        body in near_valid(vec![json!({"platform": "kosmi", "room": "@x", "relayOutbound": true, "nickFormat": "<{name}> {text}"}),
                                json!({"platform": "kick", "chatroomId": "2507974", "relayOutbound": false})])) {
        if let Ok(r) = RoomId::parse(&s) {
            prop_assert_eq!(RoomId::parse(r.as_str()).ok(), Some(r));
        }
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        match Link::parse(&v) {
            Ok(l) => prop_assert!(l.platform == "kick" || l.platform == "kosmi"),
            Err(e) => prop_assert!((400..500).contains(&e.status())),
        }
    }

    #[test]
    fn fuzz_kosmi_relay(frames in prop::collection::vec(frame_text(gql_seeds()), 1..5)) {
        let config = KosmiConfig { room: kosmi_room(), nick_format: NickFormat::default(), user_agent: "UA".into() };
        let mut r = KosmiRelay::new(config, Some("token".into()));
        r.start(0, 1);
        while r.poll().is_some() {}
        r.handle(0, 1, Input::Opened { conn: 1 });
        r.handle(0, 1, Input::Text { conn: 1, text: r#"{"type":"connection_ack"}"# });
        while r.poll().is_some() {}
        for (i, f) in frames.iter().enumerate() {
            r.handle(10 + i as u64, 1, Input::Text { conn: 1, text: f });
            while let Some(e) = r.poll() {
                if let kosmi::KosmiEffect::Event(ev) = e { check_event(&ev)?; }
            }
        }
    }
}
