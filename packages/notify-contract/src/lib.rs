//! The contract between the chat worker and the notifications worker.
//!
//! The chat worker calls the notifications worker over Workers RPC through a service binding. Each
//! method takes one JSON string and answers one JSON string; the shapes are defined here, once, and
//! carry `version` so either side can refuse what it does not understand. Names shared by both sides
//! (badge buckets, idempotency keys, push titles and previews) are derived here too.

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change of the shapes below.
pub const CONTRACT_VERSION: u32 = 1;

/// The RPC method names exported by the notifications worker.
pub mod methods {
    pub const SEND_PUSH_FOR_CONVERSATION: &str = "sendPushForConversation";
    pub const CLEAR_BADGE_BUCKET_FOR_USER: &str = "clearBadgeBucketForUser";
}

/// Characters of message text in a push preview.
pub const PREVIEW_CHARS: usize = 200;

/// `sendPushForConversation`: sent by the chat worker after every committed message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendPushForConversation {
    pub version: u32,
    pub conversation_id: String,
    pub message_id: String,
    pub sandbox_id: String,
    pub conversation_title: Option<String>,
    /// The title was taken from a message's text (auto-titling), not set by a person: under
    /// `generic` previews it is not shown, since it is message text.
    #[serde(default)]
    pub conversation_title_auto: bool,
    /// The human sender; `None` when the bot sent the message.
    pub sender_user_id: Option<String>,
    /// The message's text blocks joined by newlines (the preview is cut from it with `body_preview`).
    pub text: String,
    /// Human members minus the sender (all humans for a bot's message).
    pub recipients: Vec<Recipient>,
}

/// One recipient and what the conversation knows of their presence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recipient {
    pub user_id: String,
    /// A socket of theirs is open on this conversation right now.
    pub viewing: bool,
    /// When their last socket on this conversation closed (ms), if it did.
    pub last_viewed_at: Option<i64>,
}

/// What happened for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Delivered,
    Duplicate,
    SuppressedPresence,
    SuppressedPreference,
    NoTokens,
    Failed,
    /// Another attempt holds this recipient's push (claimed, not settled): it may still be sent, or
    /// its sender died. Not done: ask again at `retryAt`, when an abandoned attempt is sent again.
    Pending,
}

impl Outcome {
    /// Nothing more to do for the recipient: the push went out, was suppressed, or never will.
    /// `Failed` and `Pending` are to be asked again.
    pub fn is_done(self) -> bool {
        !matches!(self, Outcome::Failed | Outcome::Pending)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientOutcome {
    pub user_id: String,
    pub outcome: Outcome,
    /// The user's total unread after this push, when the push counted toward their badge (the chat
    /// side tells the user's open apps with a `badge.updated` event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge_count: Option<i64>,
    /// With `pending`: when the attempt that holds the push lets go of it (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<i64>,
}

/// The answer to `sendPushForConversation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendPushResult {
    pub version: u32,
    /// Set when nothing was attempted (no sandbox, nobody to notify).
    pub skipped: Option<String>,
    pub outcomes: Vec<RecipientOutcome>,
}

/// `clearBadgeBucketForUser`: sent on mark-read when the reader is caught up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClearBadgeBucket {
    pub version: u32,
    pub user_id: String,
    pub badge_bucket: String,
}

/// The answer to `clearBadgeBucketForUser`: the user's total unread after clearing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BadgeCount {
    pub version: u32,
    pub badge_count: i64,
}

/// An error answer: `{"version", "error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: String,
    pub message: String,
}

/// The badge bucket of a conversation: `kiloclaw:{sandboxId}:{conversationId}`.
pub fn badge_bucket(sandbox_id: &str, conversation_id: &str) -> String {
    format!("kiloclaw:{sandbox_id}:{conversation_id}")
}

/// The per-recipient idempotency key: `chat:{messageId}:{userId}`.
pub fn idempotency_key(message_id: &str, user_id: &str) -> String {
    format!("chat:{message_id}:{user_id}")
}

/// `"<sandboxLabel> · <conversation title or Untitled>"`.
pub fn push_title(sandbox_label: &str, conversation_title: Option<&str>) -> String {
    let title = conversation_title.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("Untitled");
    format!("{sandbox_label} · {title}")
}

/// The first `PREVIEW_CHARS` characters of the text, never cut inside a character.
pub fn body_preview(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names() {
        assert_eq!(badge_bucket("sb1", "C1"), "kiloclaw:sb1:C1");
        assert_eq!(idempotency_key("M1", "alice"), "chat:M1:alice");
        assert_eq!(push_title("Claw", Some("Plans")), "Claw · Plans");
        assert_eq!(push_title("Claw", None), "Claw · Untitled");
        assert_eq!(push_title("Claw", Some("  ")), "Claw · Untitled");
    }

    #[test]
    fn preview_counts_characters() {
        let s = "ü".repeat(250);
        let p = body_preview(&s);
        assert_eq!(p.chars().count(), 200);
        assert_eq!(body_preview("short"), "short");
    }

    #[test]
    fn wire_shape() {
        let req = SendPushForConversation {
            version: CONTRACT_VERSION,
            conversation_id: "C".into(),
            message_id: "M".into(),
            sandbox_id: "sb".into(),
            conversation_title: None,
            conversation_title_auto: false,
            sender_user_id: None,
            text: "hi".into(),
            recipients: vec![Recipient { user_id: "bob".into(), viewing: false, last_viewed_at: None }],
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["conversationId"], "C");
        assert!(v["senderUserId"].is_null());
        assert_eq!(v["recipients"][0]["userId"], "bob");
        let back: SendPushForConversation = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, req);
        // A sender from before `conversationTitleAuto` is still understood.
        let mut old = v;
        old.as_object_mut().unwrap().remove("conversationTitleAuto");
        assert!(!serde_json::from_value::<SendPushForConversation>(old).unwrap().conversation_title_auto);
        let o = serde_json::to_value(Outcome::SuppressedPresence).unwrap();
        assert_eq!(o, "suppressed_presence");
    }
}
