//! `Call::decode` reads back exactly what the worker's serde encoding writes, for every command.

use crate::commands::{BridgeStatus, Call, Command, Ingest};
use serde_json::json;
use switchboard_bridge::link::Link;

/// One sample per command; the `match` has no wildcard, so a new command does not compile until it
/// has a sample here.
fn samples() -> Vec<Command> {
    let all = vec![
        Command::Create {
            conversation_id: "c1".into(),
            sandbox_id: "s1".into(),
            title: Some("t".into()),
            members: vec!["a".into(), "b".into()],
        },
        Command::Create { conversation_id: "c1".into(), sandbox_id: "s1".into(), title: None, members: vec![] },
        Command::Get,
        Command::Rename { title: "new".into() },
        Command::AddMember { member: "m".into() },
        Command::Leave,
        Command::RemoveMember { member: "m".into() },
        Command::ListMessages { before: Some("01J".into()), limit: 50 },
        Command::ListMessages { before: None, limit: 1 },
        Command::SendMessage {
            content: json!([{"type": "text", "text": "hi"}]),
            in_reply_to_message_id: Some("01K".into()),
            client_id: Some("k1".into()),
        },
        Command::SendMessage { content: json!(null), in_reply_to_message_id: None, client_id: None },
        Command::EditMessage { message_id: "m1".into(), content: json!([]), timestamp: -3 },
        Command::DeleteMessage { message_id: "m1".into() },
        Command::AddReaction { message_id: "m1".into(), emoji: "👍".into() },
        Command::RemoveReaction { message_id: "m1".into(), emoji: "👍".into() },
        Command::MarkRead { message_id: "m1".into() },
        Command::Watch { watching: true, present: false },
        Command::Presence,
        Command::Typing { stop: true },
        Command::LinkBridge {
            link: Link { platform: "kick".into(), room: "42".into(), relay_outbound: false, nick_format: None },
        },
        Command::LinkBridge {
            link: Link {
                platform: "kosmi".into(),
                room: "@r".into(),
                relay_outbound: true,
                nick_format: Some("[{name}] {text}".into()),
            },
        },
        Command::ListBridges,
        Command::UnlinkBridge { bridge_id: "b1".into() },
        Command::BridgeIngest {
            bridge_id: "b1".into(),
            item: Ingest::Message {
                idempotency_key: "kick:1".into(),
                sender_id: "u".into(),
                text: "x".into(),
                source: json!({"a": 1}),
                reply_to_key: Some("kick:0".into()),
            },
        },
        Command::BridgeIngest { bridge_id: "b1".into(), item: Ingest::Delete { idempotency_key: "kick:1".into() } },
        Command::BridgeIngest {
            bridge_id: "b1".into(),
            item: Ingest::Notice { name: "bridge.user_banned".into(), payload: json!({}) },
        },
        Command::BridgeStatus {
            bridge_id: "b1".into(),
            status: BridgeStatus {
                state: "live".into(),
                reason: Some("r".into()),
                last_event_at: Some(5),
                received: 2,
                relayed: 1,
            },
        },
        Command::BridgeStatus {
            bridge_id: "b1".into(),
            status: BridgeStatus { state: "failed".into(), reason: None, last_event_at: None, received: 0, relayed: 0 },
        },
    ];
    let mut seen = [false; 21];
    for c in &all {
        let i = match c {
            Command::Create { .. } => 0,
            Command::Get => 1,
            Command::Rename { .. } => 2,
            Command::AddMember { .. } => 3,
            Command::Leave => 4,
            Command::RemoveMember { .. } => 5,
            Command::ListMessages { .. } => 6,
            Command::SendMessage { .. } => 7,
            Command::EditMessage { .. } => 8,
            Command::DeleteMessage { .. } => 9,
            Command::AddReaction { .. } => 10,
            Command::RemoveReaction { .. } => 11,
            Command::MarkRead { .. } => 12,
            Command::Watch { .. } => 13,
            Command::Presence => 14,
            Command::Typing { .. } => 15,
            Command::LinkBridge { .. } => 16,
            Command::ListBridges => 17,
            Command::UnlinkBridge { .. } => 18,
            Command::BridgeIngest { .. } => 19,
            Command::BridgeStatus { .. } => 20,
        };
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s), "a command without a sample: {seen:?}");
    all
}

#[test]
fn every_command_decodes_to_what_was_encoded() {
    let calls: Vec<Call> = samples().into_iter().map(|command| Call { caller: "user:1".into(), command }).collect();
    switchboard_core::fields::assert_round_trips(&calls, Call::decode);
}

#[test]
fn bad_commands_are_errors() {
    for text in [
        "",
        "[]",
        r#"{"op":"get"}"#,
        r#"{"caller":"u"}"#,
        r#"{"caller":"u","op":"nope"}"#,
        r#"{"caller":"u","op":"rename"}"#,
        r#"{"caller":"u","op":"list_messages","limit":-1}"#,
        r#"{"caller":"u","op":"list_messages","limit":1.5}"#,
        r#"{"caller":"u","op":"send_message"}"#,
        r#"{"caller":"u","op":"watch","watching":true}"#,
        r#"{"caller":"u","op":"bridge_ingest","bridge_id":"b","item":{"kind":"x"}}"#,
        r#"{"caller":"u","op":"link_bridge","link":"kick"}"#,
    ] {
        assert!(Call::decode(text).is_err(), "{text}");
    }
    // Unknown fields are ignored, as serde's derive did; a missing or null option is `None`.
    let c = Call::decode(r#"{"caller":"u","op":"list_messages","limit":3,"extra":1,"before":null}"#).unwrap();
    assert!(matches!(c.command, Command::ListMessages { before: None, limit: 3 }));
}
