//! The commands the worker sends a conversation's object, as JSON (`{"caller", "op", ...}`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A command on behalf of `caller` (a member id the worker authenticated).
#[derive(Debug, Serialize, Deserialize)]
pub struct Call {
    pub caller: String,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    Create {
        conversation_id: String,
        sandbox_id: String,
        title: Option<String>,
        members: Vec<String>,
    },
    Get,
    Rename {
        title: String,
    },
    AddMember {
        member: String,
    },
    Leave,
    ListMessages {
        before: Option<String>,
        limit: usize,
    },
    SendMessage {
        content: Value,
        in_reply_to_message_id: Option<String>,
        client_id: Option<String>,
    },
    EditMessage {
        message_id: String,
        content: Value,
        timestamp: i64,
    },
    DeleteMessage {
        message_id: String,
    },
    AddReaction {
        message_id: String,
        emoji: String,
    },
    RemoveReaction {
        message_id: String,
        emoji: String,
    },
    MarkRead {
        message_id: String,
    },
    /// The caller's hub follows this conversation (`watching`) and/or is present in it.
    Watch {
        watching: bool,
        present: bool,
    },
    Presence,
    Typing {
        stop: bool,
    },
}
