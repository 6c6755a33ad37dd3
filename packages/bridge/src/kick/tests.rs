use super::*;
use crate::source::Emote;
use proptest::prelude::*;
use serde_json::json;

/// Reads a fixture as Kick sends it (a Pusher frame with its data double-encoded) and maps it.
fn fixture(frame: &str) -> Result<BridgeEvent, KickError> {
    let f: Value = serde_json::from_str(frame).unwrap();
    let room = chatroom_of(f["channel"].as_str().unwrap()).unwrap();
    parse(room, f["event"].as_str().unwrap(), f["data"].as_str().unwrap())
}

fn message(ev: BridgeEvent) -> BridgedMessage {
    match ev {
        BridgeEvent::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn notice(ev: BridgeEvent) -> Notice {
    match ev {
        BridgeEvent::Notice(n) => n,
        other => panic!("expected a notice, got {other:?}"),
    }
}

#[test]
fn channel_names() {
    assert_eq!(channel("2507974"), "chatrooms.2507974.v2");
    assert_eq!(chatroom_of("chatrooms.2507974.v2"), Some("2507974"));
    assert_eq!(chatroom_of("chatrooms..v2"), None);
    assert_eq!(chatroom_of("chatrooms.12a.v2"), None);
    assert_eq!(chatroom_of("channel.12"), None);
}

#[test]
fn a_chat_message_with_emotes_and_badges() {
    let m = message(fixture(include_str!("../../tests/fixtures/kick/chat_message.json")).unwrap());
    assert_eq!(m.idempotency_key, "kick:0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10");
    assert_eq!(m.sender_id, "kick:1234567");
    assert_eq!(m.text, "hello [emote:37226:KEKW] and [emote:39261:kkHuh] again [emote:37226:KEKW]");
    assert_eq!(m.reply_to_external_id, None);
    assert_eq!(
        m.source_json(),
        json!({
            "platform": "kick", "room": "2507974", "externalId": "0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10",
            "author": {"id": "1234567", "username": "Ann_Lee", "color": "#FF9D00", "badges": [
                {"type": "moderator", "text": "Moderator"},
                {"type": "subscriber", "text": "Subscriber", "count": 6}]},
            "emotes": [{"id": "37226", "name": "KEKW"}, {"id": "39261", "name": "kkHuh"}]
        })
    );
}

#[test]
fn a_reply_names_the_original_and_keeps_its_author_and_excerpt() {
    let m = message(fixture(include_str!("../../tests/fixtures/kick/reply.json")).unwrap());
    assert_eq!(m.sender_id, "kick:7654321", "a string sender id is accepted");
    assert_eq!(m.reply_to_external_id.as_deref(), Some("0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10"));
    assert_eq!(m.reply_to_key().as_deref(), Some("kick:0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10"));
    assert_eq!(
        m.source_json()["replyTo"],
        json!({"externalId": "0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10",
               "author": {"id": "1234567", "username": "Ann_Lee"},
               "excerpt": "hello [emote:37226:KEKW] there"})
    );
    assert!(m.source_json()["author"].get("badges").is_none(), "no badges, no field");
}

#[test]
fn missing_optional_fields_and_numeric_ids_are_tolerated() {
    let m = message(fixture(include_str!("../../tests/fixtures/kick/minimal_message.json")).unwrap());
    assert_eq!(m.idempotency_key, "kick:99");
    assert_eq!(m.sender_id, "kick:5");
    assert_eq!(m.text, "just text");
    assert_eq!(
        m.source_json(),
        json!({"platform": "kick", "room": "2507974", "externalId": "99",
               "author": {"id": "5", "username": "only-slug"}})
    );
}

#[test]
fn a_deletion_names_our_copy() {
    let ev = fixture(include_str!("../../tests/fixtures/kick/message_deleted.json")).unwrap();
    assert_eq!(
        ev,
        BridgeEvent::Delete {
            idempotency_key: "kick:0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10".into(),
            external_id: "0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10".into()
        }
    );
}

#[test]
fn moderation_events_become_notices() {
    let n = notice(fixture(include_str!("../../tests/fixtures/kick/user_banned.json")).unwrap());
    assert_eq!(n.event_type(), "bridge.user_banned");
    assert_eq!(
        n.payload(),
        json!({"platform": "kick", "room": "2507974", "user": {"id": "666", "username": "troll"},
               "senderId": "kick:666", "bannedBy": {"id": "1234567", "username": "Ann_Lee"},
               "permanent": false, "durationMinutes": 10, "expiresAt": "2026-04-19T12:10:00+00:00"})
    );
    let n = notice(fixture(include_str!("../../tests/fixtures/kick/user_unbanned.json")).unwrap());
    assert_eq!(n.event_type(), "bridge.user_unbanned");
    assert_eq!(
        n.payload(),
        json!({"platform": "kick", "room": "2507974", "user": {"id": "666", "username": "troll"},
               "senderId": "kick:666", "unbannedBy": {"id": "1234567", "username": "Ann_Lee"}})
    );
    let n = notice(fixture(include_str!("../../tests/fixtures/kick/chatroom_clear.json")).unwrap());
    assert_eq!((n.event_type(), n.payload()), ("bridge.chat_cleared", json!({"platform": "kick", "room": "2507974"})));
    let n = notice(fixture(include_str!("../../tests/fixtures/kick/pinned_message.json")).unwrap());
    assert_eq!(n.event_type(), "bridge.message_pinned");
    assert_eq!(
        n.payload(),
        json!({"platform": "kick", "room": "2507974", "externalId": "0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10",
               "messageKey": "kick:0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10",
               "author": {"id": "1234567", "username": "Ann_Lee"}, "excerpt": "read the rules",
               "durationSeconds": 1200, "pinnedBy": {"id": "1", "username": "owner"}})
    );
}

#[test]
fn a_ban_without_duration_or_flag_is_permanent() {
    let n = notice(parse("7", "App\\Events\\UserBannedEvent", r#"{"user":{"id":3}}"#).unwrap());
    assert_eq!(n.payload()["permanent"], true);
    assert_eq!(n.payload()["user"], json!({"id": "3", "username": "3"}));
}

#[test]
fn unknown_events_are_unknown_even_with_junk_data() {
    let ev = fixture(include_str!("../../tests/fixtures/kick/subscription.json")).unwrap();
    assert_eq!(ev, BridgeEvent::Unknown { platform: Platform::Kick, event: "App\\Events\\SubscriptionEvent".into() });
    let ev = parse("7", "App\\Events\\PollUpdateEvent", "not json").unwrap();
    assert!(matches!(ev, BridgeEvent::Unknown { .. }));
}

#[test]
fn junk_is_a_typed_error() {
    let chat = "App\\Events\\ChatMessageEvent";
    assert!(matches!(parse("7", chat, "{"), Err(KickError::Json(_))));
    assert_eq!(parse("7", chat, "[1]"), Err(KickError::NotAnObject));
    assert_eq!(parse("7", chat, r#""\"x\"""#), Err(KickError::NotAnObject));
    assert_eq!(parse("7", chat, r#"{"content":"a","sender":{"id":1}}"#), Err(KickError::Missing("id")));
    assert_eq!(parse("7", chat, r#"{"id":1,"sender":{"id":1}}"#), Err(KickError::Missing("content")));
    assert_eq!(parse("7", chat, r#"{"id":1,"content":"  ","sender":{"id":1}}"#), Err(KickError::Missing("content")));
    assert_eq!(parse("7", chat, r#"{"id":1,"content":"a"}"#), Err(KickError::Missing("sender")));
    assert_eq!(parse("7", chat, r#"{"id":1,"content":"a","sender":{"id":1.5}}"#), Err(KickError::Missing("sender.id")));
    assert_eq!(parse("7", chat, r#"{"id":true,"content":"a","sender":{"id":1}}"#), Err(KickError::Missing("id")));
    let del = "App\\Events\\MessageDeletedEvent";
    assert_eq!(parse("7", del, r#"{"id":"x"}"#), Err(KickError::Missing("message.id")));
    let big = format!(r#"{{"id":1,"content":"{}","sender":{{"id":1}}}}"#, "a".repeat(MAX_EVENT_BYTES));
    assert_eq!(parse("7", chat, &big), Err(KickError::TooLarge { bytes: big.len() }));
}

#[test]
fn double_encoded_data_is_accepted_once_more() {
    let inner = r#"{"id":1,"content":"hi","sender":{"id":2,"username":"u"}}"#;
    let twice = serde_json::to_string(inner).unwrap();
    let m = message(parse("7", "ChatMessageEvent", &twice).unwrap());
    assert_eq!((m.idempotency_key.as_str(), m.text.as_str()), ("kick:1", "hi"));
}

#[test]
fn an_over_long_id_is_refused_so_keys_stay_valid_client_ids() {
    let long = "x".repeat(MAX_EXTERNAL_ID_CHARS + 1);
    let data = json!({"id": long, "content": "a", "sender": {"id": 1}}).to_string();
    assert_eq!(parse("7", "ChatMessageEvent", &data), Err(KickError::Missing("id")));
    let fits = "x".repeat(MAX_EXTERNAL_ID_CHARS);
    let data = json!({"id": fits, "content": "a", "sender": {"id": "y".repeat(MAX_EXTERNAL_USER_ID_CHARS)}});
    let m = message(parse("7", "ChatMessageEvent", &data.to_string()).unwrap());
    assert!(switchboard_core::validate::client_id(&m.idempotency_key).is_ok());
    assert!(switchboard_core::validate::user_id(&m.sender_id).is_ok());
}

#[test]
fn long_text_is_cut_to_a_valid_block_and_badges_are_bounded() {
    let badges: Vec<Value> = (0..20).map(|i| json!({"type": format!("b{i}")})).collect();
    let data = json!({"id": 1, "content": "é".repeat(MAX_TEXT_CHARS + 5),
                      "sender": {"id": 1, "identity": {"color": "x".repeat(MAX_COLOR_CHARS + 1), "badges": badges}}});
    let m = message(parse("7", "ChatMessageEvent", &data.to_string()).unwrap());
    assert_eq!(m.text.chars().count(), MAX_TEXT_CHARS);
    assert!(m.text.ends_with('…'));
    assert!(switchboard_core::content::parse(&serde_json::to_value(m.content()).unwrap()).is_ok());
    assert_eq!(m.source.author.badges.len(), MAX_BADGES);
    assert_eq!(m.source.author.badges[0], Badge { kind: "b0".into(), text: "b0".into(), count: None });
    assert_eq!(m.source.author.color, None, "an over-long colour is dropped, not cut");
}

#[test]
fn emote_scanning() {
    let e = |id: &str, name: &str| Emote { id: id.into(), name: name.into() };
    assert_eq!(emotes("[emote:1:a][emote:2:b] [emote:1:a]"), vec![e("1", "a"), e("2", "b")]);
    assert_eq!(emotes("[emote:x:a] [emote:1:] [emote:1:a b] [emote:3:ok"), vec![]);
    assert_eq!(emotes("[emote:[emote:4:four]"), vec![e("4", "four")]);
    let many: String = (0..40).map(|i| format!("[emote:{i}:e{i}]")).collect();
    let found = emotes(&many);
    assert_eq!(found.len(), MAX_EMOTES);
    assert_eq!(found[MAX_EMOTES - 1], e("15", "e15"));
}

proptest! {
    #[test]
    fn any_input_maps_or_errors_without_panicking(event in "(App\\\\Events\\\\)?[A-Za-z]{0,30}", data in "\\PC{0,200}") {
        let _ = parse("7", &event, &data);
        let _ = parse("7", "ChatMessageEvent", &data);
    }

    #[test]
    fn any_chat_message_maps_to_a_valid_message(
        id in "[a-z0-9-]{1,40}", user in 0u64..u64::MAX, content in "\\PC{1,300}", name in "\\PC{0,80}"
    ) {
        let data = json!({"id": id, "content": content, "sender": {"id": user, "username": name}}).to_string();
        match parse("7", "ChatMessageEvent", &data) {
            Ok(BridgeEvent::Message(m)) => {
                prop_assert_eq!(&m.idempotency_key, &format!("kick:{id}"));
                prop_assert!(switchboard_core::content::parse(&serde_json::to_value(m.content()).unwrap()).is_ok());
                prop_assert!(m.source.author.username.chars().count() <= MAX_USERNAME_CHARS);
                prop_assert!(m.source.emotes.len() <= MAX_EMOTES);
            }
            Err(KickError::Missing("content")) => prop_assert!(content.chars().all(|c| c.is_whitespace() || c.is_control())),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
