//! One `sendPushForConversation` call, as decisions: reading and checking the payload, who is a
//! recipient, why one gets no push, the messages for one who does, and whether they were delivered.
//! The shell reads preferences and tokens (D1), claims per recipient in the user's object, sends
//! the messages, and settles.

use crate::expo::{PushData, PushMessage, Ticket};
use crate::ledger::Suppression;
use crate::prefs::Preferences;
use crate::presence;
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use switchboard_core::limits::MAX_MEMBERS;
use switchboard_core::{ids, validate};
use switchboard_notify_contract::{
    push_title, ClearBadgeBucket, Outcome, Recipient, RecipientOutcome, SendPushForConversation, SendPushResult,
    CONTRACT_VERSION,
};

/// `skipped` reasons.
pub const SKIP_NO_SANDBOX: &str = "no_sandbox";
pub const SKIP_NO_RECIPIENTS: &str = "no_recipients";

/// An RPC failure: answered as `{"version", "error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcFailure {
    pub code: &'static str,
    pub message: String,
}

impl RpcFailure {
    pub fn invalid(message: impl Into<String>) -> Self {
        RpcFailure { code: "invalid_payload", message: message.into() }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        RpcFailure { code: "internal", message: message.into() }
    }

    pub fn to_json(&self) -> String {
        serde_json::json!({"version": CONTRACT_VERSION, "error": {"code": self.code, "message": self.message}})
            .to_string()
    }
}

fn parse_versioned<T: DeserializeOwned>(payload: &str) -> Result<T, RpcFailure> {
    let v: serde_json::Value =
        serde_json::from_str(payload).map_err(|e| RpcFailure::invalid(format!("payload is not JSON: {e}")))?;
    match v.get("version").and_then(serde_json::Value::as_u64) {
        Some(n) if n == CONTRACT_VERSION as u64 => {}
        Some(n) => {
            return Err(RpcFailure {
                code: "unsupported_version",
                message: format!("contract version {n}; this worker speaks {CONTRACT_VERSION}"),
            })
        }
        None => return Err(RpcFailure::invalid("version: required")),
    }
    serde_json::from_value(v).map_err(|e| RpcFailure::invalid(e.to_string()))
}

/// Reads and checks a `sendPushForConversation` payload.
pub fn parse_send(payload: &str) -> Result<SendPushForConversation, RpcFailure> {
    let req: SendPushForConversation = parse_versioned(payload)?;
    ids::parse("conversationId", &req.conversation_id).map_err(|e| RpcFailure::invalid(e.message))?;
    ids::parse("messageId", &req.message_id).map_err(|e| RpcFailure::invalid(e.message))?;
    if !req.sandbox_id.is_empty() {
        validate::sandbox_id(&req.sandbox_id).map_err(|e| RpcFailure::invalid(e.message))?;
    }
    if req.recipients.len() > MAX_MEMBERS {
        return Err(RpcFailure::invalid(format!("recipients: at most {MAX_MEMBERS}")));
    }
    Ok(req)
}

/// Reads and checks a `clearBadgeBucketForUser` payload.
pub fn parse_clear(payload: &str) -> Result<ClearBadgeBucket, RpcFailure> {
    let req: ClearBadgeBucket = parse_versioned(payload)?;
    validate::user_id(&req.user_id).map_err(|e| RpcFailure::invalid(e.message))?;
    crate::badges::validate_bucket(&req.badge_bucket).map_err(|e| RpcFailure::invalid(e.message))?;
    Ok(req)
}

/// Who gets a push decision: recipients with valid, distinct user ids, never the sender.
pub struct Audience {
    pub recipients: Vec<Recipient>,
    /// Recipients whose user id is malformed: answered `failed`.
    pub rejected: Vec<RecipientOutcome>,
}

/// The audience, or the answer when there is nothing to do.
pub fn audience(req: &SendPushForConversation) -> Result<Audience, SendPushResult> {
    let skip =
        |why: &str| SendPushResult { version: CONTRACT_VERSION, skipped: Some(why.to_string()), outcomes: vec![] };
    if req.sandbox_id.is_empty() {
        return Err(skip(SKIP_NO_SANDBOX));
    }
    let mut seen = HashSet::new();
    let mut recipients = Vec::new();
    let mut rejected = Vec::new();
    for r in &req.recipients {
        if Some(&r.user_id) == req.sender_user_id.as_ref() || !seen.insert(r.user_id.clone()) {
            continue;
        }
        if validate::user_id(&r.user_id).is_err() {
            rejected.push(RecipientOutcome {
                user_id: r.user_id.clone(),
                outcome: Outcome::Failed,
                badge_count: None,
                retry_at: None,
            });
            continue;
        }
        recipients.push(r.clone());
    }
    if recipients.is_empty() && rejected.is_empty() {
        return Err(skip(SKIP_NO_RECIPIENTS));
    }
    Ok(Audience { recipients, rejected })
}

/// Why a recipient gets no push, in order: presence, then preference, then no device.
pub fn suppression(
    recipient: &Recipient,
    prefs: &Preferences,
    tokens: usize,
    now_ms: i64,
    grace_ms: i64,
) -> Option<Suppression> {
    if presence::is_present(recipient, now_ms, grace_ms) {
        Some(Suppression::Presence)
    } else if !prefs.chat_messages_enabled {
        Some(Suppression::Preference)
    } else if tokens == 0 {
        Some(Suppression::NoTokens)
    } else {
        None
    }
}

/// The title for a recipient with `prefs`: the conversation's title, except that an auto-title
/// (a message's text) is never shown to someone whose previews are `generic`.
pub fn title_for(req: &SendPushForConversation, sandbox_label: &str, prefs: &Preferences) -> String {
    let hide = req.conversation_title_auto && prefs.preview == crate::prefs::Preview::Generic;
    push_title(sandbox_label, if hide { None } else { req.conversation_title.as_deref() })
}

/// One message per device of a recipient who gets a push.
pub fn messages_for(
    req: &SendPushForConversation,
    title: &str,
    prefs: &Preferences,
    tokens: &[String],
    badge: i64,
) -> Vec<PushMessage> {
    let body = prefs.body_for(&req.text);
    let data = PushData::chat_message(&req.sandbox_id, &req.conversation_id, &req.message_id);
    tokens.iter().map(|t| PushMessage::new(t, title, &body, &data, badge)).collect()
}

/// A recipient was delivered when Expo accepted at least one of their devices' messages.
pub fn delivered<'a>(tickets: impl IntoIterator<Item = &'a Ticket>) -> bool {
    tickets.into_iter().any(Ticket::is_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefs::Preview;

    const C: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    const M: &str = "01BX5ZZKBKACTAV9WEVGEMMVRZ";

    fn req(recipients: &[(&str, bool)], sender: Option<&str>) -> SendPushForConversation {
        SendPushForConversation {
            version: CONTRACT_VERSION,
            conversation_id: C.into(),
            message_id: M.into(),
            sandbox_id: "sb1".into(),
            conversation_title: Some("Plans".into()),
            conversation_title_auto: false,
            sender_user_id: sender.map(str::to_string),
            text: "hello there".into(),
            recipients: recipients
                .iter()
                .map(|(u, v)| Recipient { user_id: u.to_string(), viewing: *v, last_viewed_at: None })
                .collect(),
        }
    }

    #[test]
    fn payload_checks() {
        let good = serde_json::to_string(&req(&[("bob", false)], Some("alice"))).unwrap();
        assert!(parse_send(&good).is_ok());
        assert_eq!(parse_send("nope").unwrap_err().code, "invalid_payload");
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v["version"] = 2.into();
        assert_eq!(parse_send(&v.to_string()).unwrap_err().code, "unsupported_version");
        v["version"] = 1.into();
        v["messageId"] = "x".into();
        assert_eq!(parse_send(&v.to_string()).unwrap_err().code, "invalid_payload");
        v["messageId"] = M.into();
        v["extra"] = 1.into();
        assert_eq!(parse_send(&v.to_string()).unwrap_err().code, "invalid_payload");
        let f = RpcFailure::invalid("x").to_json();
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["error"]["code"], "invalid_payload");
        assert_eq!(v["version"], 1);

        let clear = r#"{"version":1,"userId":"bob","badgeBucket":"kiloclaw:sb1:C1"}"#;
        assert!(parse_clear(clear).is_ok());
        assert!(parse_clear(r#"{"version":1,"userId":"bob","badgeBucket":"x"}"#).is_err());
    }

    #[test]
    fn audience_rules() {
        let a = audience(&req(&[("bob", false), ("alice", false), ("bob", true), ("carol", false)], Some("alice")))
            .ok()
            .unwrap();
        let ids: Vec<_> = a.recipients.iter().map(|r| r.user_id.as_str()).collect();
        assert_eq!(ids, ["bob", "carol"]);
        assert!(a.rejected.is_empty());
        let skipped = audience(&req(&[("alice", false)], Some("alice"))).err().unwrap();
        assert_eq!(skipped.skipped.as_deref(), Some(SKIP_NO_RECIPIENTS));
        let mut r = req(&[("bob", false)], None);
        r.sandbox_id = String::new();
        assert_eq!(audience(&r).err().unwrap().skipped.as_deref(), Some(SKIP_NO_SANDBOX));
        // A bot's message (no sender) goes to every human.
        assert_eq!(audience(&req(&[("bob", false), ("alice", false)], None)).ok().unwrap().recipients.len(), 2);
        let a = audience(&req(&[("bot:kiloclaw:sb1", false)], None)).ok().unwrap();
        assert_eq!(a.rejected[0].outcome, Outcome::Failed);
    }

    #[test]
    fn suppression_order() {
        let on = Preferences::default();
        let off = Preferences { chat_messages_enabled: false, preview: Preview::Generic };
        let viewer = Recipient { user_id: "b".into(), viewing: true, last_viewed_at: None };
        let away = Recipient { user_id: "b".into(), viewing: false, last_viewed_at: Some(0) };
        assert_eq!(suppression(&viewer, &off, 0, 100_000, 10_000), Some(Suppression::Presence));
        assert_eq!(suppression(&away, &off, 1, 100_000, 10_000), Some(Suppression::Preference));
        assert_eq!(suppression(&away, &on, 0, 100_000, 10_000), Some(Suppression::NoTokens));
        assert_eq!(suppression(&away, &on, 2, 100_000, 10_000), None);
        assert_eq!(suppression(&away, &on, 2, 5_000, 10_000), Some(Suppression::Presence));
    }

    #[test]
    fn messages() {
        let r = req(&[("bob", false)], Some("alice"));
        let full = Preferences { chat_messages_enabled: true, preview: Preview::Full };
        let t = title_for(&r, "Claw", &full);
        assert_eq!(t, "Claw · Plans");
        let m = messages_for(&r, &t, &full, &["ExponentPushToken[a]".into(), "ExponentPushToken[b]".into()], 4);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].body, "hello there");
        assert_eq!(m[1].to, "ExponentPushToken[b]");
        assert_eq!(m[0].badge, 4);
        assert_eq!(m[0].data.message_id, M);
        let g = messages_for(&r, &t, &Preferences::default(), &["ExponentPushToken[a]".into()], 1);
        assert_eq!(g[0].body, crate::prefs::GENERIC_BODY);
        // A title people set is shown under generic previews too; an auto-title (message text) is not.
        assert_eq!(title_for(&r, "Claw", &Preferences::default()), "Claw · Plans");
        let auto = SendPushForConversation { conversation_title_auto: true, ..r.clone() };
        assert_eq!(title_for(&auto, "Claw", &Preferences::default()), "Claw · Untitled");
        assert_eq!(title_for(&auto, "Claw", &full), "Claw · Plans");
        assert!(delivered(&[Ticket::Error { error: None, message: String::new() }, Ticket::Ok { id: "x".into() }]));
        assert!(!delivered(&[Ticket::Error { error: None, message: String::new() }]));
    }
}
