//! What a bridge hands the shell, for either platform: a message to commit, a deletion, a notice, or an event we do
//! not know.
//!
//! Notices are moderation facts of the external room (a ban, a cleared chat, a pin). They are not messages: the shell
//! appends them to the conversation's event log as `bridge.*` events with `payload()` as the camelCase payload.

use crate::source::{BridgedMessage, Platform, UserRef};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeEvent {
    /// Commit this message (idempotently, by its key).
    Message(BridgedMessage),
    /// Delete our copy of an external message, found by its idempotency key (nothing to do if we have none).
    Delete { idempotency_key: String, external_id: String },
    /// Append a `bridge.*` event.
    Notice(Notice),
    /// An event we do not map; the caller counts it. `event` is its name, cut to `MAX_EVENT_NAME_CHARS`.
    Unknown { platform: Platform, event: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    UserBanned(UserBanned),
    UserUnbanned(UserUnbanned),
    ChatCleared(ChatCleared),
    MessagePinned(MessagePinned),
}

impl Notice {
    /// The event type the shell appends.
    pub fn event_type(&self) -> &'static str {
        match self {
            Notice::UserBanned(_) => "bridge.user_banned",
            Notice::UserUnbanned(_) => "bridge.user_unbanned",
            Notice::ChatCleared(_) => "bridge.chat_cleared",
            Notice::MessagePinned(_) => "bridge.message_pinned",
        }
    }

    /// The event's payload, a camelCase JSON object.
    pub fn payload(&self) -> Value {
        let v = match self {
            Notice::UserBanned(n) => serde_json::to_value(n),
            Notice::UserUnbanned(n) => serde_json::to_value(n),
            Notice::ChatCleared(n) => serde_json::to_value(n),
            Notice::MessagePinned(n) => serde_json::to_value(n),
        };
        v.unwrap_or(Value::Null)
    }
}

/// A user was banned from the room, for good or for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserBanned {
    pub platform: Platform,
    pub room: String,
    pub user: UserRef,
    /// `kick:{user.id}`: the sender id their bridged messages carry.
    pub sender_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banned_by: Option<UserRef>,
    pub permanent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_minutes: Option<u64>,
    /// As the platform wrote it (ISO 8601 on Kick).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUnbanned {
    pub platform: Platform,
    pub room: String,
    pub user: UserRef,
    pub sender_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unbanned_by: Option<UserRef>,
}

/// A moderator cleared the room's chat (our copies stay; the shell may mark them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatCleared {
    pub platform: Platform,
    pub room: String,
}

/// A message was pinned in the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePinned {
    pub platform: Platform,
    pub room: String,
    pub external_id: String,
    /// The idempotency key of our copy of the pinned message.
    pub message_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<UserRef>,
    /// The pinned text, whitespace collapsed, at most `MAX_EXCERPT_CHARS`.
    pub excerpt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_by: Option<UserRef>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn notices_name_their_event_and_serialize_camel_case() {
        let n = Notice::UserBanned(UserBanned {
            platform: Platform::Kick,
            room: "7".into(),
            user: UserRef { id: "9".into(), username: "troll".into() },
            sender_id: "kick:9".into(),
            banned_by: None,
            permanent: false,
            duration_minutes: Some(10),
            expires_at: None,
        });
        assert_eq!(n.event_type(), "bridge.user_banned");
        assert_eq!(
            n.payload(),
            json!({"platform": "kick", "room": "7", "user": {"id": "9", "username": "troll"},
                   "senderId": "kick:9", "permanent": false, "durationMinutes": 10})
        );
        let c = Notice::ChatCleared(ChatCleared { platform: Platform::Kick, room: "7".into() });
        assert_eq!(c.event_type(), "bridge.chat_cleared");
        assert_eq!(c.payload(), json!({"platform": "kick", "room": "7"}));
    }
}
