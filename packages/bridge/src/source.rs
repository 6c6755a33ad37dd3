//! The shared output of both bridges: a message to commit to the conversation, with where it came from.
//!
//! Kick and Kosmi map into this one shape so that the Durable Object shell has one commit path: it sends
//! `content()` as `sender_id` with `idempotency_key` as the send's client id (a replayed or re-delivered external
//! message then answers the copy we already have instead of making a second one), stores `source` with the message,
//! and points `inReplyToMessageId` at our copy of `reply_to_key()` when it has one.
//!
//! The reverse rule lives here too: a message that came from a bridge is never sent to a platform again
//! ([`is_bridged`]), which is what keeps two bridged rooms from echoing each other forever.

use serde::Serialize;
use serde_json::Value;
use switchboard_core::content::Block;

/// The platforms we bridge; the lowercase name prefixes sender ids and idempotency keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Kick,
    Kosmi,
}

impl Platform {
    pub const ALL: [Platform; 2] = [Platform::Kick, Platform::Kosmi];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Kick => "kick",
            Platform::Kosmi => "kosmi",
        }
    }

    /// The idempotency key of our copy of external message `external_id`: `{platform}:{id}`.
    pub fn idempotency_key(self, external_id: &str) -> String {
        format!("{}:{external_id}", self.as_str())
    }

    /// The Switchboard sender id of external user `user_id`: `{platform}:{id}`.
    pub fn sender_id(self, user_id: &str) -> String {
        format!("{}:{user_id}", self.as_str())
    }
}

/// Whether a message came from a bridge, by its sender id (`kick:…`, `kosmi:…`) or by having a `source`.
/// Such a message is never relayed to any platform.
pub fn is_bridged(sender_id: &str, source: Option<&Value>) -> bool {
    let has_source = matches!(source, Some(v) if !v.is_null());
    has_source
        || Platform::ALL.iter().any(|p| sender_id.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with(':')))
}

/// A conversation message offered to a bridge for the external room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound<'a> {
    /// Our message id: named again in the bridge's delivery report.
    pub local_id: &'a str,
    pub sender_id: &'a str,
    /// The message's stored `source`, if it has one (then it came from a bridge and is refused).
    pub source: Option<&'a Value>,
    /// Written for `{name}` in the bridge's `nickFormat`.
    pub sender_name: &'a str,
    pub text: &'a str,
}

impl Outbound<'_> {
    /// Whether this message came from a bridge (never relayed).
    pub fn is_bridged(&self) -> bool {
        is_bridged(self.sender_id, self.source)
    }
}

/// A user of the external platform, as much as we keep of them when they are mentioned (a ban, a reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRef {
    pub id: String,
    pub username: String,
}

/// A Kick badge (`broadcaster`, `moderator`, `subscriber` with a month count, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Badge {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// The author of a bridged message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Author {
    pub id: String,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub badges: Vec<Badge>,
}

/// An emote used in the text, where it stays inline as `[emote:ID:NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Emote {
    pub id: String,
    pub name: String,
}

/// What a reply answered: kept even when we have no copy of the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyTo {
    pub external_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<UserRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

/// Stored with the message: `{platform, room, externalId, author, replyTo?, emotes?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub platform: Platform,
    pub room: String,
    pub external_id: String,
    pub author: Author,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyTo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emotes: Vec<Emote>,
}

/// One external message, ready to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgedMessage {
    /// `{platform}:{externalId}`: the send's client id, so a replay never makes a second copy.
    pub idempotency_key: String,
    /// `{platform}:{userId}`.
    pub sender_id: String,
    /// Trimmed, 1..=`MAX_TEXT_CHARS` characters (a valid text block).
    pub text: String,
    pub source: Source,
    /// The external id of the message this one answers.
    pub reply_to_external_id: Option<String>,
}

impl BridgedMessage {
    /// The message's content: one text block.
    pub fn content(&self) -> Vec<Block> {
        vec![Block::Text { text: self.text.clone() }]
    }

    /// `source` as the JSON object stored with the message.
    pub fn source_json(&self) -> Value {
        serde_json::to_value(&self.source).unwrap_or(Value::Null)
    }

    /// The idempotency key of our copy of the answered message, to find its id for `inReplyToMessageId`.
    pub fn reply_to_key(&self) -> Option<String> {
        self.reply_to_external_id.as_deref().map(|id| self.source.platform.idempotency_key(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message() -> BridgedMessage {
        BridgedMessage {
            idempotency_key: "kick:m1".into(),
            sender_id: "kick:42".into(),
            text: "hi".into(),
            source: Source {
                platform: Platform::Kick,
                room: "7".into(),
                external_id: "m1".into(),
                author: Author {
                    id: "42".into(),
                    username: "ann".into(),
                    display_name: None,
                    color: Some("#FF0000".into()),
                    badges: vec![Badge { kind: "subscriber".into(), text: "Subscriber".into(), count: Some(3) }],
                },
                reply_to: Some(ReplyTo { external_id: "m0".into(), author: None, excerpt: Some("first".into()) }),
                emotes: vec![],
            },
            reply_to_external_id: Some("m0".into()),
        }
    }

    #[test]
    fn source_serializes_camel_case_and_skips_what_is_absent() {
        let m = message();
        assert_eq!(
            m.source_json(),
            json!({
                "platform": "kick", "room": "7", "externalId": "m1",
                "author": {"id": "42", "username": "ann", "color": "#FF0000",
                           "badges": [{"type": "subscriber", "text": "Subscriber", "count": 3}]},
                "replyTo": {"externalId": "m0", "excerpt": "first"}
            })
        );
        assert_eq!(m.content(), vec![Block::Text { text: "hi".into() }]);
        assert_eq!(m.reply_to_key().as_deref(), Some("kick:m0"));
    }

    #[test]
    fn bridged_messages_are_recognized_by_sender_or_source() {
        assert!(is_bridged("kick:1", None));
        assert!(is_bridged("kosmi:abc", None));
        assert!(is_bridged("alice", Some(&json!({"platform": "kick"}))));
        assert!(!is_bridged("alice", None));
        assert!(!is_bridged("alice", Some(&Value::Null)));
        assert!(!is_bridged("kicker", None));
        assert!(!is_bridged("kosmic:1", None));
        assert!(!is_bridged("bot:kiloclaw:sb1", None));
    }
}
