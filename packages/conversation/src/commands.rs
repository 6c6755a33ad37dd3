//! The commands the worker sends a conversation's object, as JSON (`{"caller", "op", ...}`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_bridge::link::Link;
use switchboard_core::model::{ConversationListItem, MemberInfo};

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
    /// The owner removes a member, or a member removes themself.
    RemoveMember {
        member: String,
    },
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
    /// A member links a room of another platform (validated by `Link::parse` at the edge).
    LinkBridge {
        link: Link,
    },
    ListBridges,
    UnlinkBridge {
        bridge_id: String,
    },
    /// From a bridge object (never from a client): one thing that happened in the external room.
    BridgeIngest {
        bridge_id: String,
        item: Ingest,
    },
    /// From a bridge object: its connection state and counters.
    BridgeStatus {
        bridge_id: String,
        status: BridgeStatus,
    },
}

/// What a bridge brings in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ingest {
    /// A message of the room. `idempotency_key` (e.g. `kick:{id}`) makes our copy exactly once;
    /// `reply_to_key` names the original's key when it is a reply.
    Message { idempotency_key: String, sender_id: String, text: String, source: Value, reply_to_key: Option<String> },
    /// The room deleted a message: our copy is soft-deleted.
    Delete { idempotency_key: String },
    /// A moderation or room event (`bridge.user_banned`, ...), logged as a conversation event.
    Notice { name: String, payload: Value },
}

/// A bridge's state as it reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeStatus {
    /// `connecting`, `live`, `backoff` or `failed`.
    pub state: String,
    pub reason: Option<String>,
    pub last_event_at: Option<i64>,
    pub received: i64,
    pub relayed: i64,
}

/// The answer to `AddMember`: the roster, and the new member's list entry (for the worker, which
/// writes it into the member's list; the client is answered the roster only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddMemberAnswer {
    pub members: Vec<MemberInfo>,
    pub list_item: ConversationListItem,
}

/// The answer to `MarkRead`: the caller's read position, and whether it reaches the newest message
/// (the worker then clears the conversation's badge bucket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkReadAnswer {
    pub conversation_id: String,
    pub sandbox_id: String,
    pub last_read_at: i64,
    pub last_read_message_id: String,
    pub caught_up: bool,
}
