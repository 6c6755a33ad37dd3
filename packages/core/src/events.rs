//! The events a conversation broadcasts, in kilo-chat's shapes (plus the rest of the `message` where
//! useful). An event carries a message's content once: at the top (`content`, kilo-chat's field),
//! never again inside `message` ([`MessageFields`]).

use crate::model::{Message, ReactionSummary};
use serde_json::{json, Value};

/// A message in an event: every field but `content`, which the event carries once, beside it.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageFields<'a> {
    pub id: &'a str,
    pub conversation_id: &'a str,
    pub sender_id: &'a str,
    pub in_reply_to_message_id: Option<&'a str>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    pub client_updated_at: Option<i64>,
    pub deleted: bool,
    pub delivery_failed: bool,
    pub reactions: &'a [ReactionSummary],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a Value>,
}

impl<'a> MessageFields<'a> {
    pub fn of(m: &'a Message) -> Self {
        MessageFields {
            id: &m.id,
            conversation_id: &m.conversation_id,
            sender_id: &m.sender_id,
            in_reply_to_message_id: m.in_reply_to_message_id.as_deref(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            client_updated_at: m.client_updated_at,
            deleted: m.deleted,
            delivery_failed: m.delivery_failed,
            reactions: &m.reactions,
            source: m.source.as_ref(),
        }
    }

    fn value(m: &Message) -> Value {
        serde_json::to_value(MessageFields::of(m)).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    MessageCreated {
        message: Message,
        client_id: Option<String>,
        reply_to_sender: Option<String>,
    },
    MessageUpdated {
        message: Message,
    },
    MessageDeleted {
        message_id: String,
    },
    ReactionAdded {
        message_id: String,
        member_id: String,
        emoji: String,
    },
    ReactionRemoved {
        message_id: String,
        member_id: String,
        emoji: String,
    },
    ConversationRenamed {
        conversation_id: String,
        /// `None`: the conversation has no title any more (its auto-title's message was deleted).
        title: Option<String>,
    },
    /// `added_by`: the person who added the member.
    MemberJoined {
        conversation_id: String,
        member_id: String,
        added_by: String,
    },
    /// `removed_by`: present when another member removed them (absent when they left).
    MemberLeft {
        conversation_id: String,
        member_id: String,
        removed_by: Option<String>,
    },
    /// A member became present in the conversation (first tab or device subscribed to its presence).
    PresenceJoined {
        member_id: String,
    },
    /// A member's last presence subscription ended (or their socket went stale).
    PresenceLeft {
        member_id: String,
    },
    /// Ephemeral (no seq, not replayed): a member is typing.
    Typing {
        member_id: String,
    },
    TypingStop {
        member_id: String,
    },
    /// Something a bridge reports (`bridge.state`, `bridge.user_banned`, `bridge.user_unbanned`,
    /// `bridge.chat_cleared`, `bridge.message_pinned`): logged and replayed like other events.
    Bridge {
        name: &'static str,
        payload: Value,
    },
    /// A member's read position moved forward (read receipts).
    ConversationRead {
        conversation_id: String,
        member_id: String,
        last_read_at: i64,
        last_read_message_id: String,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::MessageCreated { .. } => "message.created",
            Event::MessageUpdated { .. } => "message.updated",
            Event::MessageDeleted { .. } => "message.deleted",
            Event::ReactionAdded { .. } => "reaction.added",
            Event::ReactionRemoved { .. } => "reaction.removed",
            Event::ConversationRenamed { .. } => "conversation.renamed",
            Event::MemberJoined { .. } => "member.joined",
            Event::MemberLeft { .. } => "member.left",
            Event::ConversationRead { .. } => "conversation.read",
            Event::PresenceJoined { .. } => "presence.joined",
            Event::PresenceLeft { .. } => "presence.left",
            Event::Typing { .. } => "typing",
            Event::TypingStop { .. } => "typing.stop",
            Event::Bridge { name, .. } => name,
        }
    }

    /// The payload as JSON text: what `payload()` serializes to (the same object; keys may come in
    /// another order). `message.created`, sent once per message, is written straight from the message
    /// without building a `Value` tree first.
    pub fn payload_json(&self) -> String {
        match self {
            Event::MessageCreated { message, client_id, reply_to_sender } => {
                #[derive(serde::Serialize)]
                #[serde(rename_all = "camelCase")]
                struct ReplyTo<'a> {
                    message_id: &'a str,
                    sender_id: &'a str,
                }
                #[derive(serde::Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Created<'a> {
                    message_id: &'a str,
                    sender_id: &'a str,
                    content: &'a [crate::content::Block],
                    in_reply_to_message_id: Option<&'a str>,
                    reply_to: Option<ReplyTo<'a>>,
                    client_id: Option<&'a str>,
                    message: MessageFields<'a>,
                }
                let reply_to = match (&message.in_reply_to_message_id, reply_to_sender) {
                    (Some(id), Some(sender)) => Some(ReplyTo { message_id: id, sender_id: sender }),
                    _ => None,
                };
                let created = Created {
                    message_id: &message.id,
                    sender_id: &message.sender_id,
                    content: &message.content,
                    in_reply_to_message_id: message.in_reply_to_message_id.as_deref(),
                    reply_to,
                    client_id: client_id.as_deref(),
                    message: MessageFields::of(message),
                };
                serde_json::to_string(&created).unwrap_or_else(|_| self.payload().to_string())
            }
            other => other.payload().to_string(),
        }
    }

    /// Ephemeral events are sent without a seq and are not kept for resume.
    pub fn is_ephemeral(&self) -> bool {
        matches!(self, Event::Typing { .. } | Event::TypingStop { .. })
    }

    pub fn payload(&self) -> Value {
        match self {
            Event::MessageCreated { message, client_id, reply_to_sender } => {
                let reply_to = match (&message.in_reply_to_message_id, reply_to_sender) {
                    (Some(id), Some(sender)) => json!({"messageId": id, "senderId": sender}),
                    _ => Value::Null,
                };
                json!({
                    "messageId": message.id,
                    "senderId": message.sender_id,
                    "content": message.content,
                    "inReplyToMessageId": message.in_reply_to_message_id,
                    "replyTo": reply_to,
                    "clientId": client_id,
                    "message": MessageFields::value(message),
                })
            }
            Event::MessageUpdated { message } => json!({
                "messageId": message.id,
                "content": message.content,
                "clientUpdatedAt": message.client_updated_at,
                "message": MessageFields::value(message),
            }),
            Event::MessageDeleted { message_id } => json!({"messageId": message_id}),
            Event::ReactionAdded { message_id, member_id, emoji }
            | Event::ReactionRemoved { message_id, member_id, emoji } => {
                json!({"messageId": message_id, "memberId": member_id, "emoji": emoji})
            }
            Event::ConversationRenamed { conversation_id, title } => {
                json!({"conversationId": conversation_id, "title": title})
            }
            Event::MemberJoined { conversation_id, member_id, added_by } => {
                json!({"conversationId": conversation_id, "memberId": member_id, "addedBy": added_by})
            }
            Event::MemberLeft { conversation_id, member_id, removed_by: None } => {
                json!({"conversationId": conversation_id, "memberId": member_id})
            }
            Event::MemberLeft { conversation_id, member_id, removed_by: Some(by) } => {
                json!({"conversationId": conversation_id, "memberId": member_id, "removedBy": by})
            }
            Event::PresenceJoined { member_id }
            | Event::PresenceLeft { member_id }
            | Event::Typing { member_id }
            | Event::TypingStop { member_id } => json!({"memberId": member_id}),
            Event::Bridge { payload, .. } => payload.clone(),
            Event::ConversationRead { conversation_id, member_id, last_read_at, last_read_message_id } => json!({
                "conversationId": conversation_id,
                "memberId": member_id,
                "lastReadAt": last_read_at,
                "lastReadMessageId": last_read_message_id,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::Block;

    fn msg(reply: Option<&str>) -> Message {
        Message {
            id: "m2".into(),
            conversation_id: "c".into(),
            sender_id: "alice".into(),
            content: vec![Block::Text { text: "hi".into() }],
            in_reply_to_message_id: reply.map(String::from),
            created_at: 1,
            updated_at: None,
            client_updated_at: None,
            deleted: false,
            delivery_failed: false,
            reactions: vec![],
            source: None,
        }
    }

    #[test]
    fn payload_json_is_the_payload() {
        let events = [
            Event::MessageCreated {
                message: msg(Some("m1")),
                client_id: Some("k".into()),
                reply_to_sender: Some("bob".into()),
            },
            Event::MessageCreated { message: msg(None), client_id: None, reply_to_sender: None },
            Event::MessageCreated { message: msg(Some("gone")), client_id: Some("k2".into()), reply_to_sender: None },
            Event::MessageUpdated { message: msg(None) },
            Event::MessageDeleted { message_id: "m".into() },
            Event::Typing { member_id: "alice".into() },
        ];
        for e in events {
            let parsed: Value = serde_json::from_str(&e.payload_json()).unwrap();
            assert_eq!(parsed, e.payload(), "{}", e.name());
        }
    }

    #[test]
    fn created_carries_reply_to() {
        let e = Event::MessageCreated {
            message: msg(Some("m1")),
            client_id: Some("k".into()),
            reply_to_sender: Some("bob".into()),
        };
        let p = e.payload();
        assert_eq!(e.name(), "message.created");
        assert_eq!(p["replyTo"]["messageId"], "m1");
        assert_eq!(p["replyTo"]["senderId"], "bob");
        assert_eq!(p["clientId"], "k");
        assert_eq!(p["content"][0]["text"], "hi");
        let e = Event::MessageCreated { message: msg(None), client_id: None, reply_to_sender: None };
        assert!(e.payload()["replyTo"].is_null());
    }

    #[test]
    fn an_event_carries_the_content_once() {
        let mut m = msg(None);
        m.content = vec![Block::Text { text: "needle-of-text".into() }];
        m.client_updated_at = Some(7);
        for e in [
            Event::MessageCreated { message: m.clone(), client_id: None, reply_to_sender: None },
            Event::MessageUpdated { message: m.clone() },
        ] {
            let json = e.payload_json();
            assert_eq!(json.matches("needle-of-text").count(), 1, "{json}");
            let p = e.payload();
            assert_eq!(p["content"][0]["text"], "needle-of-text");
            assert!(p["message"].get("content").is_none(), "{p}");
            // Everything else of the message is there.
            let mut full = serde_json::to_value(&m).unwrap();
            full.as_object_mut().unwrap().remove("content");
            assert_eq!(p["message"], full);
        }
    }
}
