//! The commands the worker (and other objects) send a member's object, as JSON (`{"op", ...}`).
//! Encoded by serde; decoded by hand ([`Command::decode`], `switchboard_core::fields`: a derived
//! `Deserialize` of this enum was ~29 KB of wasm).

use crate::limits::Limited;
use serde::{Deserialize, Serialize};
use switchboard_core::fields::{FieldError, Fields};
use switchboard_core::hub::Delivery;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// The member joined (or was created into) a conversation.
    Upsert {
        conversation_id: String,
        sandbox_id: String,
        title: Option<String>,
        joined_at: i64,
        last_activity_at: Option<i64>,
        /// Who added the member (`None`: they created it), told in `conversation.created`.
        #[serde(default)]
        added_by: Option<String>,
    },
    /// The member left, or (`removed_by`) was removed by the conversation's owner.
    Remove {
        conversation_id: String,
        #[serde(default)]
        removed_by: Option<String>,
    },
    /// New activity or a new title, flushed by the conversation's alarm. With `repair` (the
    /// conversation's background reconcile) an entry the member lacks is added back.
    Touch {
        conversation_id: String,
        title: Option<String>,
        last_activity_at: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repair: Option<ListRepair>,
    },
    List {
        sandbox_id: Option<String>,
        limit: usize,
        cursor: Option<String>,
    },
    /// The member's read position in a conversation moved forward.
    MarkRead {
        conversation_id: String,
        member_id: String,
        last_read_at: i64,
    },
    /// An event for the member's hub sockets subscribed to `context` (ephemeral: no seq, not logged).
    Deliver {
        context: String,
        event: String,
        payload: serde_json::Value,
        ephemeral: bool,
    },
    /// Several events, in order, in one command (what queued up in a conversation's pump while its
    /// previous call was on the way): each exactly as one `Deliver`, and their frames go out
    /// together. At most `hub::MAX_DELIVERIES_PER_CALL` (400 beyond).
    DeliverAll {
        events: Vec<Delivery>,
    },
    /// A bot's status: answers `{online, at, conversations}` (its conversation ids, to tell their
    /// live channels when it goes offline).
    SetBotStatus {
        online: bool,
        at: i64,
    },
    GetBotStatus,
    /// A sandbox's bot object: replace the people allowed to use the sandbox (`sandbox_users`).
    SetSandboxUsers {
        users: Vec<String>,
    },
    /// A sandbox's bot object: may `user` create a conversation with it? 204 or 403.
    /// `open_unlisted`: a sandbox whose list was never set admits everyone (local mode only).
    SandboxAccess {
        sandbox_id: String,
        user: String,
        open_unlisted: bool,
    },
    /// Redeem a connect ticket's nonce; answers 204 once, 401 after.
    RedeemTicket {
        nonce: String,
        expires_at_ms: i64,
    },
    /// May this member do `what` now? 204 (and it is counted) or 429 `rate_limited` (`crate::limits`).
    Allow {
        what: Limited,
    },
}

impl Command {
    /// Decodes what `serde_json::to_string(&command)` wrote (the sender's side).
    pub fn decode(text: &str) -> Result<Command, FieldError> {
        let mut f = Fields::parse(text)?;
        let op = f.string("op")?;
        Ok(match op.as_str() {
            "upsert" => Command::Upsert {
                conversation_id: f.string("conversation_id")?,
                sandbox_id: f.string("sandbox_id")?,
                title: f.opt_string("title")?,
                joined_at: f.i64("joined_at")?,
                last_activity_at: f.opt_i64("last_activity_at")?,
                added_by: f.opt_string("added_by")?,
            },
            "remove" => Command::Remove {
                conversation_id: f.string("conversation_id")?,
                removed_by: f.opt_string("removed_by")?,
            },
            "touch" => Command::Touch {
                conversation_id: f.string("conversation_id")?,
                title: f.opt_string("title")?,
                last_activity_at: f.opt_i64("last_activity_at")?,
                repair: match f.take("repair") {
                    serde_json::Value::Null => None,
                    v => {
                        let mut r = Fields::of(v, "repair")?;
                        Some(ListRepair { sandbox_id: r.string("sandbox_id")?, joined_at: r.i64("joined_at")? })
                    }
                },
            },
            "list" => Command::List {
                sandbox_id: f.opt_string("sandbox_id")?,
                limit: f.usize("limit")?,
                cursor: f.opt_string("cursor")?,
            },
            "mark_read" => Command::MarkRead {
                conversation_id: f.string("conversation_id")?,
                member_id: f.string("member_id")?,
                last_read_at: f.i64("last_read_at")?,
            },
            "deliver" => Command::Deliver {
                context: f.string("context")?,
                event: f.string("event")?,
                payload: f.value("payload")?,
                ephemeral: f.bool("ephemeral")?,
            },
            "deliver_all" => Command::DeliverAll {
                events: f.objects("events")?.into_iter().map(Delivery::decode).collect::<Result<_, _>>()?,
            },
            "set_bot_status" => Command::SetBotStatus { online: f.bool("online")?, at: f.i64("at")? },
            "get_bot_status" => Command::GetBotStatus,
            "set_sandbox_users" => Command::SetSandboxUsers { users: f.strings("users")? },
            "sandbox_access" => Command::SandboxAccess {
                sandbox_id: f.string("sandbox_id")?,
                user: f.string("user")?,
                open_unlisted: f.bool("open_unlisted")?,
            },
            "redeem_ticket" => {
                Command::RedeemTicket { nonce: f.string("nonce")?, expires_at_ms: f.i64("expires_at_ms")? }
            }
            "allow" => Command::Allow {
                what: match f.string("what")?.as_str() {
                    "create_conversation" => Limited::CreateConversation,
                    "connect_ticket" => Limited::ConnectTicket,
                    other => return Err(Fields::unknown("what", other)),
                },
            },
            other => return Err(Fields::unknown("op", other)),
        })
    }
}

/// What a reconcile's `Touch` carries beyond a flush's: enough to add a missing entry back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRepair {
    pub sandbox_id: String,
    /// When the member joined (the entry's `joinedAt`).
    pub joined_at: i64,
}

/// The answer to `SetBotStatus` and `GetBotStatus`: the bot's status. (Who is told of a change is
/// the bot's object's own work: `bot_fanout`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotStatusAnswer {
    pub online: bool,
    /// When the bot reported it; `None` for a bot never heard from.
    pub at: Option<i64>,
    /// `SetBotStatus` only: the report was older (`at`) than the stored status, which was kept and
    /// is what `online` and `at` say; nothing changed, so nobody is told.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}
