use super::*;
use crate::event::BridgeEvent;
use crate::graphql_ws::close;
use crate::graphql_ws::{ConnId, Input, Operation, Phase};
use crate::limits::*;
use crate::nick::NickFormat;
use crate::source::Outbound;
use proptest::prelude::*;
use serde_json::{json, Value};

const UA: &str = "Mozilla/5.0";

fn room() -> RoomId {
    RoomId::parse("@hyperspaceout").unwrap()
}

fn relay(token: Option<&str>) -> KosmiRelay {
    let config = KosmiConfig { room: room(), nick_format: NickFormat::default(), user_agent: UA.into() };
    KosmiRelay::new(config, token.map(str::to_string))
}

fn out<'a>(
    local_id: &'a str,
    sender_id: &'a str,
    source: Option<&'a Value>,
    sender_name: &'a str,
    text: &'a str,
) -> Outbound<'a> {
    Outbound { local_id, sender_id, source, sender_name, text }
}

fn drain(r: &mut KosmiRelay) -> Vec<KosmiEffect> {
    std::iter::from_fn(|| r.poll()).collect()
}

fn sent_texts(effects: &[KosmiEffect]) -> Vec<Value> {
    effects
        .iter()
        .filter_map(|e| match e {
            KosmiEffect::Send { text, .. } => serde_json::from_str(text).ok(),
            _ => None,
        })
        .collect()
}

fn text(r: &mut KosmiRelay, now: u64, conn: ConnId, v: Value) {
    r.handle(now, 0, Input::Text { conn, text: &v.to_string() });
}

fn new_message(id: &str, user: &str, body: &str) -> Value {
    json!({"data": {"newMessage": {"id": id, "body": body, "time": 1713528000,
           "user": {"id": user, "username": format!("{user}_name"), "displayName": format!("{user} D")}}}})
}

/// A relay connected as `conn`, subscribed (operation 1 of the connection's ops) and joined.
fn joined(r: &mut KosmiRelay, now: u64, conn: ConnId) -> (String, Vec<KosmiEffect>) {
    r.handle(now, 0, Input::Opened { conn });
    text(r, now, conn, json!({"type": "connection_ack"}));
    let effects = drain(r);
    let sent = sent_texts(&effects);
    let sub = sent[1]["id"].as_str().unwrap().to_string();
    let join = sent[2]["id"].as_str().unwrap().to_string();
    text(r, now, conn, json!({"id": join, "type": "next", "payload": {"data": {"joinRoom": {"ok": true}}}}));
    (sub, drain(r))
}

#[test]
fn room_ids_are_normalized() {
    for input in [
        "https://app.kosmi.io/room/@hyperspaceout",
        "https://app.kosmi.io/room/@hyperspaceout/",
        "http://app.kosmi.io/room/@hyperspaceout?x=1#y",
        "app.kosmi.io/room/hyperspaceout",
        "@hyperspaceout",
        "  hyperspaceout ",
    ] {
        assert_eq!(RoomId::parse(input).map(|r| r.0), Ok("@hyperspaceout".to_string()), "{input}");
    }
    assert_eq!(RoomId::parse("a.b-c_9").unwrap().as_str(), "@a.b-c_9");
    assert_eq!(RoomId::parse("https://evil.example/room/@x"), Err(RoomError::NotAKosmiRoomUrl));
    assert_eq!(RoomId::parse("a/b"), Err(RoomError::NotAKosmiRoomUrl));
    assert_eq!(RoomId::parse("@"), Err(RoomError::Length { max: MAX_KOSMI_ROOM_NAME_CHARS }));
    assert_eq!(RoomId::parse("https://app.kosmi.io/room/"), Err(RoomError::Length { max: MAX_KOSMI_ROOM_NAME_CHARS }));
    assert_eq!(RoomId::parse("@@x"), Err(RoomError::BadCharacter('@')));
    assert_eq!(RoomId::parse("a b"), Err(RoomError::BadCharacter(' ')));
    assert_eq!(RoomId::parse("café"), Err(RoomError::BadCharacter('é')));
    assert!(RoomId::parse(&"a".repeat(MAX_KOSMI_ROOM_NAME_CHARS)).is_ok());
    assert!(RoomId::parse(&"a".repeat(MAX_KOSMI_ROOM_NAME_CHARS + 1)).is_err());
}

#[test]
fn login() {
    let body: Value = serde_json::from_str(LOGIN_BODY).unwrap();
    assert_eq!(body, json!({"query": "mutation { anonLogin { token } }"}));
    assert_eq!(parse_login(r#"{"data":{"anonLogin":{"token":"eyJ.a.b"}}}"#), Ok("eyJ.a.b".into()));
    assert_eq!(
        parse_login(r#"{"data":null,"errors":[{"message":"rate limited"}]}"#),
        Err(LoginError::Graphql("rate limited".into()))
    );
    assert_eq!(parse_login(r#"{"data":{"anonLogin":null}}"#), Err(LoginError::NoToken));
    assert_eq!(parse_login(r#"{"data":{"anonLogin":{"token":""}}}"#), Err(LoginError::NoToken));
    assert_eq!(parse_login(r#"{"data":{"anonLogin":{"token":"a b"}}}"#), Err(LoginError::NoToken));
    let long = json!({"data": {"anonLogin": {"token": "a".repeat(MAX_KOSMI_TOKEN_CHARS + 1)}}}).to_string();
    assert_eq!(parse_login(&long), Err(LoginError::NoToken));
    assert!(matches!(parse_login("<html>"), Err(LoginError::Json(_))));
}

#[test]
fn init_payload_and_operations() {
    assert_eq!(init_payload("T", UA), json!({"token": "T", "ua": "TW96aWxsYS81LjA=", "v": "4364", "r": ""}));
    let r = room();
    assert_eq!(
        on_new_message(&r),
        Operation {
            query: "subscription OnNewMessage($roomId: String!) { newMessage(roomId: $roomId) { id body time user { id username displayName } } }".into(),
            operation_name: Some("OnNewMessage".into()),
            variables: json!({"roomId": "@hyperspaceout"}),
        }
    );
    assert_eq!(join_room(&r).query, "mutation JoinRoom($id: String!) { joinRoom(id: $id) { ok } }");
    assert_eq!(join_room(&r).variables, json!({"id": "@hyperspaceout"}));
    let s = send_message(&r, "<a> hi");
    assert_eq!(
        s.query,
        "mutation SendMessage($body: String!, $roomId: String!) { sendMessage(body: $body, roomId: $roomId) { ok } }"
    );
    assert_eq!(s.variables, json!({"body": "<a> hi", "roomId": "@hyperspaceout"}));
}

#[test]
fn messages_map_with_their_source() {
    let m = map_new_message(&room(), &new_message("k1", "u1", "  hello  ")).unwrap();
    assert_eq!(m.idempotency_key, "kosmi:k1");
    assert_eq!(m.sender_id, "kosmi:u1");
    assert_eq!(m.text, "hello");
    assert_eq!(
        m.source_json(),
        json!({"platform": "kosmi", "room": "@hyperspaceout", "externalId": "k1",
               "author": {"id": "u1", "username": "u1_name", "displayName": "u1 D"}})
    );
    let bare = json!({"data": {"newMessage": {"id": 5, "body": "x", "user": {"id": 6}}}});
    let m = map_new_message(&room(), &bare).unwrap();
    assert_eq!((m.idempotency_key.as_str(), m.source.author.username.as_str()), ("kosmi:5", "6"));
    assert_eq!(map_new_message(&room(), &json!({"data": {}})), Err(KosmiError::Missing("newMessage")));
    assert_eq!(
        map_new_message(&room(), &json!({"errors": [{"message": "nope"}]})),
        Err(KosmiError::Graphql("nope".into()))
    );
    let no_user = json!({"data": {"newMessage": {"id": 5, "body": "x"}}});
    assert_eq!(map_new_message(&room(), &no_user), Err(KosmiError::Missing("newMessage.user")));
    assert_eq!(map_new_message(&room(), &new_message("k", "u", " \n ")), Err(KosmiError::Missing("newMessage.body")));
}

#[test]
fn without_a_token_it_logs_in_first_then_connects_subscribes_and_joins() {
    let mut r = relay(None);
    r.start(0, 0);
    assert_eq!(drain(&mut r), vec![KosmiEffect::StateChanged(Phase::Connecting), KosmiEffect::NeedLogin]);
    r.logged_in(100, 0, "T1".into());
    assert_eq!(drain(&mut r), vec![KosmiEffect::Connect { conn: 1 }]);
    r.handle(200, 0, Input::Opened { conn: 1 });
    assert_eq!(sent_texts(&drain(&mut r)), vec![json!({"type": "connection_init", "payload": init_payload("T1", UA)})]);
    text(&mut r, 300, 1, json!({"type": "connection_ack"}));
    let effects = drain(&mut r);
    assert_eq!(effects[0], KosmiEffect::StateChanged(Phase::Ready));
    assert_eq!(
        sent_texts(&effects),
        vec![
            json!({"id": "1", "type": "subscribe", "payload": {"query": ON_NEW_MESSAGE, "operationName": "OnNewMessage",
                   "variables": {"roomId": "@hyperspaceout"}}}),
            json!({"id": "2", "type": "subscribe", "payload": {"query": JOIN_ROOM, "operationName": "JoinRoom",
                   "variables": {"id": "@hyperspaceout"}}}),
        ]
    );
    assert!(!r.is_joined());
    text(&mut r, 400, 1, json!({"id": "2", "type": "next", "payload": {"data": {"joinRoom": {"ok": true}}}}));
    assert_eq!(drain(&mut r), vec![KosmiEffect::Joined]);
    assert!(r.is_joined());
    text(&mut r, 500, 1, json!({"id": "1", "type": "next", "payload": new_message("k1", "u1", "hi")}));
    let effects = drain(&mut r);
    let [KosmiEffect::Event(e)] = effects.as_slice() else { panic!("{effects:?}") };
    let BridgeEvent::Message(m) = &**e else { panic!("{e:?}") };
    assert_eq!((m.idempotency_key.as_str(), m.sender_id.as_str(), m.text.as_str()), ("kosmi:k1", "kosmi:u1", "hi"));
}

#[test]
fn a_failed_login_backs_off_and_asks_again() {
    let mut r = relay(None);
    r.start(0, 0);
    drain(&mut r);
    r.login_failed(50, 0);
    assert_eq!(drain(&mut r), vec![KosmiEffect::StateChanged(Phase::Waiting { retry_at_ms: 550 })]);
    r.handle(550, 0, Input::Timeout);
    assert_eq!(drain(&mut r), vec![KosmiEffect::StateChanged(Phase::Connecting), KosmiEffect::NeedLogin]);
    // A login that comes back after the attempt timed out is kept for the next attempt.
    r.handle(550 + GQL_CONNECT_TIMEOUT_MS, 0, Input::Timeout);
    drain(&mut r);
    r.logged_in(550 + GQL_CONNECT_TIMEOUT_MS + 1, 0, "late".into());
    assert_eq!(drain(&mut r), vec![]);
    assert_eq!(r.token(), Some("late"));
}

#[test]
fn a_refused_token_is_forgotten_and_a_new_login_asked_for() {
    let mut r = relay(Some("old"));
    r.start(0, 0);
    assert_eq!(drain(&mut r), vec![KosmiEffect::StateChanged(Phase::Connecting), KosmiEffect::Connect { conn: 1 }]);
    r.handle(10, 0, Input::Opened { conn: 1 });
    drain(&mut r);
    r.handle(20, 0, Input::Closed { conn: 1, code: close::FORBIDDEN, reason: "" });
    assert_eq!(
        drain(&mut r),
        vec![KosmiEffect::TokenRefused, KosmiEffect::StateChanged(Phase::Connecting), KosmiEffect::NeedLogin]
    );
    assert_eq!(r.token(), None);
    r.logged_in(30, 0, "new".into());
    assert_eq!(drain(&mut r), vec![KosmiEffect::Connect { conn: 2 }]);
    r.handle(40, 0, Input::Opened { conn: 2 });
    assert_eq!(sent_texts(&drain(&mut r))[0]["payload"]["token"], "new");
    // Refused again: forgotten again, but now the relay waits before asking for the next login.
    r.handle(50, 0, Input::Closed { conn: 2, code: close::UNAUTHORIZED, reason: "" });
    assert_eq!(
        drain(&mut r),
        vec![KosmiEffect::TokenRefused, KosmiEffect::StateChanged(Phase::Waiting { retry_at_ms: 1_050 })]
    );
    r.handle(1_050, 0, Input::Timeout);
    assert_eq!(drain(&mut r), vec![KosmiEffect::StateChanged(Phase::Connecting), KosmiEffect::NeedLogin]);
}

#[test]
fn sends_wait_for_the_join_go_in_order_and_are_formatted() {
    let mut r = relay(Some("T"));
    r.start(0, 0);
    assert_eq!(r.send(0, 0, &out("m1", "alice", None, "Alice", "first")), Ok(()));
    assert_eq!(r.send(0, 0, &out("m2", "bob", None, "Bob", "second")), Ok(()));
    assert_eq!(r.pending_sends(), 2);
    let (_, effects) = joined(&mut r, 10, 1);
    assert_eq!(effects[0], KosmiEffect::Joined);
    let sent = sent_texts(&effects);
    assert_eq!(sent.len(), 1, "one at a time");
    assert_eq!(sent[0]["payload"]["variables"], json!({"body": "<Alice> first", "roomId": "@hyperspaceout"}));
    let id = sent[0]["id"].as_str().unwrap().to_string();
    text(&mut r, 20, 1, json!({"id": id, "type": "next", "payload": {"data": {"sendMessage": {"ok": true}}}}));
    let effects = drain(&mut r);
    assert_eq!(effects[0], KosmiEffect::Delivered { local_id: "m1".into() });
    assert_eq!(sent_texts(&effects)[0]["payload"]["variables"]["body"], "<Bob> second");
    assert_eq!(r.pending_sends(), 1);
}

#[test]
fn bridged_empty_and_overflowing_sends_are_refused() {
    let mut r = relay(Some("T"));
    assert_eq!(r.send(0, 0, &out("x", "kick:1", None, "k", "hi")), Err(SendRefused::Bridged));
    assert_eq!(r.send(0, 0, &out("x", "a", Some(&json!({"platform": "kick"})), "k", "hi")), Err(SendRefused::Bridged));
    assert_eq!(r.send(0, 0, &out("x", "a", None, "a", "   ")), Err(SendRefused::Empty));
    for i in 0..KOSMI_OUTBOX_MAX {
        assert_eq!(r.send(0, 0, &out(&i.to_string(), "a", None, "a", "hi")), Ok(()));
    }
    assert_eq!(r.send(0, 0, &out("over", "a", None, "a", "hi")), Err(SendRefused::QueueFull));
}

#[test]
fn a_failed_send_is_retried_after_reconnect_and_dropped_after_three_attempts() {
    let mut r = relay(Some("T"));
    r.start(0, 0);
    r.send(0, 0, &out("m1", "alice", None, "Alice", "one")).unwrap();
    r.send(0, 0, &out("m2", "alice", None, "Alice", "two")).unwrap();
    let (_, effects) = joined(&mut r, 0, 1);
    let first = sent_texts(&effects)[0]["id"].as_str().unwrap().to_string();
    // Attempt 1: the connection drops before the result.
    r.handle(10, 0, Input::Closed { conn: 1, code: close::ABNORMAL, reason: "" });
    let effects = drain(&mut r);
    assert!(!effects.iter().any(|e| matches!(e, KosmiEffect::Dropped { .. } | KosmiEffect::Delivered { .. })));
    assert_eq!(r.pending_sends(), 2);
    // Reconnect: m1 goes first again. Attempt 2: a GraphQL error; attempt 3 follows at once.
    r.handle(510, 0, Input::Timeout);
    drain(&mut r);
    let (_, effects) = joined(&mut r, 510, 2);
    let retry = sent_texts(&effects);
    assert_eq!(retry[0]["payload"]["variables"]["body"], "<Alice> one");
    let second = retry[0]["id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    text(&mut r, 520, 2, json!({"id": second, "type": "error", "payload": [{"message": "slow down"}]}));
    let effects = drain(&mut r);
    let retry = sent_texts(&effects);
    assert_eq!(retry[0]["payload"]["variables"]["body"], "<Alice> one");
    let third = retry[0]["id"].as_str().unwrap().to_string();
    text(&mut r, 530, 2, json!({"id": third, "type": "next", "payload": {"errors": [{"message": "still no"}]}}));
    let effects = drain(&mut r);
    assert_eq!(
        effects[0],
        KosmiEffect::Dropped {
            local_id: "m1".into(),
            reason: DropReason { attempts: KOSMI_MAX_SEND_ATTEMPTS, last_error: "still no".into() }
        }
    );
    // And the next message goes.
    assert_eq!(sent_texts(&effects)[0]["payload"]["variables"]["body"], "<Alice> two");
    assert_eq!(r.pending_sends(), 1);
}

#[test]
fn our_echo_is_dropped_and_teaches_our_user_id() {
    let mut r = relay(Some("T"));
    r.start(0, 0);
    let (sub, _) = joined(&mut r, 0, 1);
    r.send(100, 0, &out("m1", "alice", None, "Alice", "hello")).unwrap();
    drain(&mut r);
    // A stranger's message passes; our echo (same body, from our anonymous user) does not.
    text(&mut r, 110, 1, json!({"id": sub, "type": "next", "payload": new_message("k1", "stranger", "hi")}));
    text(&mut r, 120, 1, json!({"id": sub, "type": "next", "payload": new_message("k2", "me", "<Alice> hello")}));
    let effects = drain(&mut r);
    assert_eq!(effects.len(), 1);
    assert!(
        matches!(&effects[0], KosmiEffect::Event(e) if matches!(&**e, BridgeEvent::Message(m) if m.idempotency_key == "kosmi:k1"))
    );
    assert_eq!(r.echo_filter().own_user_id(), Some("me"));
    // From now on: anything from our user is ours, and a stranger typing a body we sent is relayed.
    r.send(130, 0, &out("m2", "alice", None, "Alice", "again")).unwrap();
    text(&mut r, 140, 1, json!({"id": sub, "type": "next", "payload": new_message("k3", "stranger", "<Alice> again")}));
    text(&mut r, 150, 1, json!({"id": sub, "type": "next", "payload": new_message("k4", "me", "<Alice> again")}));
    let messages: Vec<String> = drain(&mut r)
        .into_iter()
        .filter_map(|e| match e {
            KosmiEffect::Event(e) => match *e {
                BridgeEvent::Message(m) => Some(m.idempotency_key),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(messages, vec!["kosmi:k3".to_string()]);
}

#[test]
fn echo_memory_is_bounded_in_size_and_time() {
    let mut f = EchoFilter::default();
    f.sent(0, "old");
    assert!(!f.is_echo(ECHO_WINDOW_MS, "me", "old"), "past the window it is forgotten");
    assert_eq!(f.own_user_id(), None);
    for i in 0..=ECHO_MEMORY {
        f.sent(1, &format!("b{i}"));
    }
    assert_eq!(f.sent.len(), ECHO_MEMORY);
    assert!(!f.is_echo(2, "me", "b0"), "the oldest was pushed out");
    assert!(f.is_echo(2, "me", " b1 "));
    f.forget_user();
    assert!(!f.is_echo(2, "someone", "b9999"), "a new user must be learned again");
    assert!(f.is_echo(2, "me", "b9999"), "what the earlier login said stays ours");
    assert!(f.is_echo(2, "me2", "b2"));
    assert_eq!(f.own_user_id(), Some("me2"));
}

#[test]
fn a_failed_join_or_an_ended_subscription_reconnects() {
    let mut r = relay(Some("T"));
    r.start(0, 0);
    r.handle(0, 0, Input::Opened { conn: 1 });
    text(&mut r, 0, 1, json!({"type": "connection_ack"}));
    drain(&mut r);
    text(&mut r, 10, 1, json!({"id": "2", "type": "next", "payload": {"errors": [{"message": "no room"}]}}));
    let effects = drain(&mut r);
    assert_eq!(effects[0], KosmiEffect::Close { conn: 1, code: CLOSE_ROOM_LOST, reason: "joinRoom failed".into() });
    assert_eq!(effects.last(), Some(&KosmiEffect::StateChanged(Phase::Waiting { retry_at_ms: 510 })));
    assert!(!r.is_joined());

    let mut r = relay(Some("T"));
    r.start(0, 0);
    let (sub, _) = joined(&mut r, 0, 1);
    text(&mut r, 10, 1, json!({"id": sub, "type": "complete"}));
    let effects = drain(&mut r);
    assert_eq!(
        effects[0],
        KosmiEffect::Close { conn: 1, code: CLOSE_ROOM_LOST, reason: "room subscription ended".into() }
    );
}

#[test]
fn a_malformed_message_is_skipped_not_fatal() {
    let mut r = relay(Some("T"));
    r.start(0, 0);
    let (sub, _) = joined(&mut r, 0, 1);
    text(&mut r, 10, 1, json!({"id": sub, "type": "next", "payload": {"data": {"newMessage": {"id": "k"}}}}));
    assert_eq!(drain(&mut r), vec![KosmiEffect::Skipped(KosmiError::Missing("newMessage.body"))]);
    assert!(r.is_joined());
}

proptest! {
    /// Whatever the sequence of sends and failures, every message ends exactly once (delivered or dropped) or is
    /// still pending, in order, and none is attempted more than the limit.
    #[test]
    fn every_send_ends_once(outcomes in proptest::collection::vec(0u8..3, 1..40), n in 1usize..6) {
        let mut r = relay(Some("T"));
        r.start(0, 0);
        for i in 0..n {
            r.send(0, 0, &out(&format!("m{i}"), "a", None, "a", &format!("t{i}"))).unwrap();
        }
        let mut now = 0u64;
        let mut conn = 1;
        let mut effects = joined(&mut r, now, conn).1;
        let mut ended: Vec<String> = vec![];
        let mut attempts: std::collections::HashMap<String, u32> = Default::default();
        for o in outcomes {
            now += 1;
            let seen = std::mem::take(&mut effects);
            for e in &seen {
                match e {
                    KosmiEffect::Delivered { local_id } => ended.push(local_id.clone()),
                    KosmiEffect::Dropped { local_id, reason } => {
                        prop_assert_eq!(reason.attempts, KOSMI_MAX_SEND_ATTEMPTS);
                        ended.push(local_id.clone())
                    }
                    _ => {}
                }
            }
            let sends: Vec<Value> = sent_texts(&seen).into_iter()
                .filter(|v| v["payload"]["operationName"] == "SendMessage").collect();
            for s in &sends {
                let body = s["payload"]["variables"]["body"].as_str().unwrap().to_string();
                let a = attempts.entry(body).or_default();
                *a += 1;
                prop_assert!(*a <= KOSMI_MAX_SEND_ATTEMPTS);
            }
            let Some(last) = sends.last() else { break };
            let id = last["id"].as_str().unwrap().to_string();
            match o {
                0 => text(&mut r, now, conn, json!({"id": id, "type": "next", "payload": {"data": {"sendMessage": {"ok": true}}}})),
                1 => text(&mut r, now, conn, json!({"id": id, "type": "error", "payload": [{"message": "x"}]})),
                _ => {
                    r.handle(now, 0, Input::Closed { conn, code: close::ABNORMAL, reason: "" });
                    let Phase::Waiting { retry_at_ms } = r.phase() else { panic!() };
                    now = retry_at_ms;
                    r.handle(now, 0, Input::Timeout);
                    conn += 1;
                    let mut before = drain(&mut r);
                    let (_, after) = joined(&mut r, now, conn);
                    before.extend(after);
                    effects = before;
                    continue;
                }
            }
            effects = drain(&mut r);
        }
        for e in &effects {
            if let KosmiEffect::Delivered { local_id } | KosmiEffect::Dropped { local_id, .. } = e {
                ended.push(local_id.clone());
            }
        }
        let expected: Vec<String> = (0..ended.len()).map(|i| format!("m{i}")).collect();
        prop_assert_eq!(&ended, &expected, "ended in order, each once");
        prop_assert_eq!(ended.len() + r.pending_sends(), n);
    }
}
