//! The events a member's hub makes itself, on the instance context `/kiloclaw/{sandboxId}`
//! (`docs/events.md`): list changes, and what the worker tells it of bots and badges. Conversation
//! events come from the conversations (`switchboard_core::events::Event`) as `Command::Deliver`.

use crate::commands::Command;
use serde_json::{json, Value};
use switchboard_core::hub::contexts;

#[derive(Debug, Clone, PartialEq)]
pub enum InstanceEvent {
    /// The member joined a conversation: they created it (`added_by` `None`) or were added.
    ConversationCreated {
        conversation_id: String,
        title: Option<String>,
        sandbox_id: String,
        added_by: Option<String>,
    },
    ConversationRenamed {
        conversation_id: String,
        title: String,
    },
    /// The member left, or was removed (`removed_by`).
    ConversationLeft {
        conversation_id: String,
        removed_by: Option<String>,
    },
    ConversationActivity {
        conversation_id: String,
        last_activity_at: i64,
    },
    /// This user's own read position moved (across their devices).
    ConversationRead {
        conversation_id: String,
        member_id: String,
        last_read_at: i64,
    },
    BotStatus {
        sandbox_id: String,
        online: bool,
        at: i64,
    },
    /// A push counted toward the user's badge, or a mark-read cleared a bucket.
    BadgeUpdated {
        badge_bucket: String,
        total: i64,
    },
}

impl InstanceEvent {
    pub fn name(&self) -> &'static str {
        match self {
            InstanceEvent::ConversationCreated { .. } => "conversation.created",
            InstanceEvent::ConversationRenamed { .. } => "conversation.renamed",
            InstanceEvent::ConversationLeft { .. } => "conversation.left",
            InstanceEvent::ConversationActivity { .. } => "conversation.activity",
            InstanceEvent::ConversationRead { .. } => "conversation.read",
            InstanceEvent::BotStatus { .. } => "bot.status",
            InstanceEvent::BadgeUpdated { .. } => "badge.updated",
        }
    }

    pub fn payload(&self) -> Value {
        match self {
            InstanceEvent::ConversationCreated { conversation_id, title, sandbox_id, added_by } => {
                json!({"conversationId": conversation_id, "title": title, "sandboxId": sandbox_id, "addedBy": added_by})
            }
            InstanceEvent::ConversationRenamed { conversation_id, title } => {
                json!({"conversationId": conversation_id, "title": title})
            }
            InstanceEvent::ConversationLeft { conversation_id, removed_by: None } => {
                json!({"conversationId": conversation_id})
            }
            InstanceEvent::ConversationLeft { conversation_id, removed_by: Some(by) } => {
                json!({"conversationId": conversation_id, "removedBy": by})
            }
            InstanceEvent::ConversationActivity { conversation_id, last_activity_at } => {
                json!({"conversationId": conversation_id, "lastActivityAt": last_activity_at})
            }
            InstanceEvent::ConversationRead { conversation_id, member_id, last_read_at } => {
                json!({"conversationId": conversation_id, "memberId": member_id, "lastReadAt": last_read_at})
            }
            InstanceEvent::BotStatus { sandbox_id, online, at } => {
                json!({"sandboxId": sandbox_id, "online": online, "at": at})
            }
            InstanceEvent::BadgeUpdated { badge_bucket, total } => json!({"badgeBucket": badge_bucket, "total": total}),
        }
    }

    /// The command that has a member's hub log and send this event on `sandbox_id`'s instance
    /// context (for events made outside the member's object: bot status, badges).
    pub fn deliver(&self, sandbox_id: &str) -> Command {
        Command::Deliver {
            context: contexts::instance(sandbox_id),
            event: self.name().to_string(),
            payload: self.payload(),
            ephemeral: false,
        }
    }
}
