//! The events a conversation broadcasts, in kilo-chat's shapes (plus the full `message` where useful).

use crate::model::Message;
use serde_json::{json, Value};

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
                    message: &'a Message,
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
                    message,
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
                    "message": message,
                })
            }
            Event::MessageUpdated { message } => json!({
                "messageId": message.id,
                "content": message.content,
                "clientUpdatedAt": message.client_updated_at,
                "message": message,
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
}
