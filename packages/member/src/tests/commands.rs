//! `Command::decode` reads back exactly what serde's encoding writes, for every command.

use crate::commands::ListRepair;
use crate::limits::Limited;
use crate::Command;
use serde_json::json;
use switchboard_core::hub::Delivery;

/// One sample per command; the `match` has no wildcard, so a new command does not compile until it
/// has a sample here.
fn samples() -> Vec<Command> {
    let all = vec![
        Command::Upsert {
            conversation_id: "c".into(),
            sandbox_id: "s".into(),
            title: Some("t".into()),
            joined_at: 1,
            last_activity_at: Some(2),
            added_by: Some("a".into()),
        },
        Command::Upsert {
            conversation_id: "c".into(),
            sandbox_id: "s".into(),
            title: None,
            joined_at: -1,
            last_activity_at: None,
            added_by: None,
        },
        Command::Remove { conversation_id: "c".into(), removed_by: Some("o".into()) },
        Command::Remove { conversation_id: "c".into(), removed_by: None },
        Command::Touch {
            conversation_id: "c".into(),
            title: Some("t".into()),
            last_activity_at: Some(3),
            repair: None,
        },
        Command::Touch {
            conversation_id: "c".into(),
            title: None,
            last_activity_at: None,
            repair: Some(ListRepair { sandbox_id: "s".into(), joined_at: 4 }),
        },
        Command::List { sandbox_id: Some("s".into()), limit: 20, cursor: Some("x".into()) },
        Command::List { sandbox_id: None, limit: 1, cursor: None },
        Command::MarkRead { conversation_id: "c".into(), member_id: "m".into(), last_read_at: 9 },
        Command::Deliver {
            context: "/c/x".into(),
            event: "message.created".into(),
            payload: json!({"a": [1]}),
            ephemeral: true,
        },
        Command::Deliver { context: "/c/x".into(), event: "typing".into(), payload: json!(null), ephemeral: false },
        Command::DeliverAll {
            events: vec![
                Delivery { context: "/c/x".into(), event: "a".into(), payload: json!([1]), ephemeral: false },
                Delivery { context: "/c/x".into(), event: "typing".into(), payload: json!({}), ephemeral: true },
            ],
        },
        Command::DeliverAll { events: vec![] },
        Command::SetBotStatus { online: true, at: 5 },
        Command::GetBotStatus,
        Command::SetSandboxUsers { users: vec!["u1".into(), "u2".into()] },
        Command::SetSandboxUsers { users: vec![] },
        Command::SandboxAccess { sandbox_id: "s".into(), user: "u".into(), open_unlisted: true },
        Command::RedeemTicket { nonce: "n".into(), expires_at_ms: 10 },
        Command::Allow { what: Limited::CreateConversation },
        Command::Allow { what: Limited::ConnectTicket },
    ];
    let mut seen = [false; 13];
    for c in &all {
        let i = match c {
            Command::Upsert { .. } => 0,
            Command::Remove { .. } => 1,
            Command::Touch { .. } => 2,
            Command::List { .. } => 3,
            Command::MarkRead { .. } => 4,
            Command::Deliver { .. } => 5,
            Command::SetBotStatus { .. } => 6,
            Command::GetBotStatus => 7,
            Command::SetSandboxUsers { .. } => 8,
            Command::SandboxAccess { .. } => 9,
            Command::RedeemTicket { .. } => 10,
            Command::Allow { .. } => 11,
            Command::DeliverAll { .. } => 12,
        };
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s), "a command without a sample: {seen:?}");
    all
}

#[test]
fn every_command_decodes_to_what_was_encoded() {
    switchboard_core::fields::assert_round_trips(&samples(), Command::decode);
}

#[test]
fn bad_commands_are_errors() {
    for text in [
        "",
        "null",
        r#"{}"#,
        r#"{"op":"nope"}"#,
        r#"{"op":"allow","what":"everything"}"#,
        r#"{"op":"list","limit":-2}"#,
        r#"{"op":"deliver","context":"c","event":"e","payload":{}}"#,
        r#"{"op":"set_sandbox_users","users":[1]}"#,
        r#"{"op":"redeem_ticket","nonce":"n","expires_at_ms":"1"}"#,
    ] {
        assert!(Command::decode(text).is_err(), "{text}");
    }
    // A missing `#[serde(default)]` option is `None`, as with the derive.
    let c = Command::decode(r#"{"op":"remove","conversation_id":"c"}"#).unwrap();
    assert!(matches!(c, Command::Remove { removed_by: None, .. }));
}
