//! The commands the worker sends a conversation's object, as JSON (`{"caller", "op", ...}`).
//! Encoded by serde; decoded by hand ([`Call::decode`], `switchboard_core::fields`: a derived
//! `Deserialize` of this enum was ~40 KB of wasm).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_bridge::link::Link;
use switchboard_core::fields::{FieldError, Fields};
use switchboard_core::model::{ConversationListItem, MemberInfo};

/// A command on behalf of `caller` (a member id the worker authenticated).
#[derive(Debug, Serialize)]
pub struct Call {
    pub caller: String,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeStatus {
    /// `connecting`, `live`, `backoff` or `failed`.
    pub state: String,
    pub reason: Option<String>,
    pub last_event_at: Option<i64>,
    pub received: i64,
    pub relayed: i64,
}

impl Call {
    /// Decodes what `serde_json::to_string(&call)` wrote (the worker's side).
    pub fn decode(text: &str) -> Result<Call, FieldError> {
        let mut f = Fields::parse(text)?;
        let caller = f.string("caller")?;
        let command = Command::decode(&mut f)?;
        Ok(Call { caller, command })
    }
}

impl Command {
    /// The command in `f` (its `op` and that variant's fields).
    pub fn decode(f: &mut Fields) -> Result<Command, FieldError> {
        let op = f.string("op")?;
        Ok(match op.as_str() {
            "create" => Command::Create {
                conversation_id: f.string("conversation_id")?,
                sandbox_id: f.string("sandbox_id")?,
                title: f.opt_string("title")?,
                members: f.strings("members")?,
            },
            "get" => Command::Get,
            "rename" => Command::Rename { title: f.string("title")? },
            "add_member" => Command::AddMember { member: f.string("member")? },
            "leave" => Command::Leave,
            "remove_member" => Command::RemoveMember { member: f.string("member")? },
            "list_messages" => Command::ListMessages { before: f.opt_string("before")?, limit: f.usize("limit")? },
            "send_message" => Command::SendMessage {
                content: f.value("content")?,
                in_reply_to_message_id: f.opt_string("in_reply_to_message_id")?,
                client_id: f.opt_string("client_id")?,
            },
            "edit_message" => Command::EditMessage {
                message_id: f.string("message_id")?,
                content: f.value("content")?,
                timestamp: f.i64("timestamp")?,
            },
            "delete_message" => Command::DeleteMessage { message_id: f.string("message_id")? },
            "add_reaction" => Command::AddReaction { message_id: f.string("message_id")?, emoji: f.string("emoji")? },
            "remove_reaction" => {
                Command::RemoveReaction { message_id: f.string("message_id")?, emoji: f.string("emoji")? }
            }
            "mark_read" => Command::MarkRead { message_id: f.string("message_id")? },
            "watch" => Command::Watch { watching: f.bool("watching")?, present: f.bool("present")? },
            "presence" => Command::Presence,
            "typing" => Command::Typing { stop: f.bool("stop")? },
            "link_bridge" => {
                let mut l = f.object("link")?;
                Command::LinkBridge {
                    link: Link {
                        platform: l.string("platform")?,
                        room: l.string("room")?,
                        relay_outbound: l.bool("relayOutbound")?,
                        nick_format: l.opt_string("nickFormat")?,
                    },
                }
            }
            "list_bridges" => Command::ListBridges,
            "unlink_bridge" => Command::UnlinkBridge { bridge_id: f.string("bridge_id")? },
            "bridge_ingest" => {
                Command::BridgeIngest { bridge_id: f.string("bridge_id")?, item: Ingest::decode(f.object("item")?)? }
            }
            "bridge_status" => {
                let mut s = f.object("status")?;
                Command::BridgeStatus {
                    bridge_id: f.string("bridge_id")?,
                    status: BridgeStatus {
                        state: s.string("state")?,
                        reason: s.opt_string("reason")?,
                        last_event_at: s.opt_i64("lastEventAt")?,
                        received: s.i64("received")?,
                        relayed: s.i64("relayed")?,
                    },
                }
            }
            other => return Err(Fields::unknown("op", other)),
        })
    }
}

impl Ingest {
    fn decode(mut f: Fields) -> Result<Ingest, FieldError> {
        let kind = f.string("kind")?;
        Ok(match kind.as_str() {
            "message" => Ingest::Message {
                idempotency_key: f.string("idempotency_key")?,
                sender_id: f.string("sender_id")?,
                text: f.string("text")?,
                source: f.value("source")?,
                reply_to_key: f.opt_string("reply_to_key")?,
            },
            "delete" => Ingest::Delete { idempotency_key: f.string("idempotency_key")? },
            "notice" => Ingest::Notice { name: f.string("name")?, payload: f.value("payload")? },
            other => return Err(Fields::unknown("kind", other)),
        })
    }
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
