//! The shapes clients see: messages, conversation list items, conversation details.

use crate::content::Block;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionSummary {
    pub emoji: String,
    pub count: usize,
    pub member_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub sender_id: String,
    pub content: Vec<Block>,
    pub in_reply_to_message_id: Option<String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    pub client_updated_at: Option<i64>,
    pub deleted: bool,
    pub delivery_failed: bool,
    pub reactions: Vec<ReactionSummary>,
    /// Where a bridged message came from (`{platform, room, externalId, author, ...}`); absent on
    /// messages members posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationListItem {
    pub conversation_id: String,
    pub title: Option<String>,
    pub sandbox_id: String,
    pub last_activity_at: Option<i64>,
    pub last_read_at: Option<i64>,
    pub joined_at: i64,
}

impl ConversationListItem {
    /// What lists sort by: last activity, or the join time before any activity.
    pub fn sort_key(&self) -> i64 {
        self.last_activity_at.unwrap_or(self.joined_at).max(self.joined_at)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    pub id: String,
    pub kind: String,
    pub joined_at: i64,
    /// Who added this member: the creator for the bot and the members named at creation, the
    /// adding member afterwards; `null` for the creator (and for members of conversations created
    /// before this was recorded).
    #[serde(default)]
    pub added_by: Option<String>,
    /// `"owner"` for the creator (who may remove others); absent for everyone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The newest message this member has marked read (read receipts); `null` before their first
    /// mark-read. Changes arrive as `conversation.read` events.
    #[serde(default)]
    pub last_read_message_id: Option<String>,
    /// When they marked it read; `null` with `last_read_message_id`.
    #[serde(default)]
    pub last_read_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationDetail {
    pub id: String,
    pub title: Option<String>,
    pub sandbox_id: String,
    pub created_by: String,
    pub created_at: i64,
    pub members: Vec<MemberInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_key_prefers_activity_but_never_before_join() {
        let mut item = ConversationListItem {
            conversation_id: "c".into(),
            title: None,
            sandbox_id: "s".into(),
            last_activity_at: None,
            last_read_at: None,
            joined_at: 100,
        };
        assert_eq!(item.sort_key(), 100);
        item.last_activity_at = Some(200);
        assert_eq!(item.sort_key(), 200);
        // Re-joined after the last activity: the join counts.
        item.last_activity_at = Some(50);
        assert_eq!(item.sort_key(), 100);
    }

    #[test]
    fn message_serializes_camel_case() {
        let m = Message {
            id: "m".into(),
            conversation_id: "c".into(),
            sender_id: "alice".into(),
            content: vec![Block::Text { text: "hi".into() }],
            in_reply_to_message_id: None,
            created_at: 1,
            updated_at: None,
            client_updated_at: None,
            deleted: false,
            delivery_failed: false,
            reactions: vec![],
            source: None,
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["senderId"], "alice");
        assert!(v["inReplyToMessageId"].is_null());
        assert_eq!(v["deliveryFailed"], false);
        assert!(v.get("source").is_none(), "no source key on members' messages");
    }
}
