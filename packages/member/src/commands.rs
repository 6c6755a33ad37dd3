//! The commands the worker (and other objects) send a member's object, as JSON (`{"op", ...}`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
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
        events: Vec<switchboard_core::hub::Delivery>,
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
        what: crate::limits::Limited,
    },
}

/// What a reconcile's `Touch` carries beyond a flush's: enough to add a missing entry back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRepair {
    pub sandbox_id: String,
    /// When the member joined (the entry's `joinedAt`).
    pub joined_at: i64,
}

/// The answer to `SetBotStatus` and `GetBotStatus`: the bot's status, and (for `SetBotStatus`) its
/// conversations, so the worker can tell their live channels and members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotStatusAnswer {
    pub online: bool,
    /// When the bot reported it; `None` for a bot never heard from.
    pub at: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversations: Vec<String>,
    /// `SetBotStatus` only: the report was older (`at`) than the stored status, which was kept and
    /// is what `online` and `at` say; nothing changed, so nobody is told.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}
