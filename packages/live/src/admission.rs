//! Who may publish or subscribe: a member of the conversation (the conversation's own answer)
//! while the conversation's bot is online; publishing is further limited to the conversation's bot
//! unless the deployment widens it to every member (`LIVE_PUBLISHERS`). Asked once per publish or
//! subscription, never per line.

use serde::Deserialize;
use switchboard_core::live::close;
use switchboard_core::{ApiError, ErrorCode, MemberId};

/// Who may publish (`LIVE_PUBLISHERS`): `bot` (the default) or `members`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Publishers {
    /// Only the conversation's bot.
    #[default]
    Bot,
    /// Any member (the bot included).
    Members,
}

impl Publishers {
    /// The var's value: `members` widens; anything else (unset, `bot`, a typo) is the default.
    pub fn from_config(value: Option<&str>) -> Publishers {
        match value.map(str::trim) {
            Some("members") => Publishers::Members,
            _ => Publishers::Bot,
        }
    }
}

/// May `caller`, a member of the conversation of sandbox `sandbox_id`, publish?
pub fn may_publish(publishers: Publishers, caller: &str, sandbox_id: &str) -> Result<(), Refusal> {
    let is_bot = MemberId::bot(sandbox_id).map(|b| b.to_string() == caller).unwrap_or(false);
    if publishers == Publishers::Members || is_bot {
        Ok(())
    } else {
        Err(Refusal::NotPublisher(ApiError::forbidden(
            "only the conversation's bot publishes on its live channel (LIVE_PUBLISHERS=bot)",
        )))
    }
}

/// Why a caller may not publish or subscribe.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Unknown conversation, or not a member: the conversation's own answer.
    NotVisible(ApiError),
    /// A member who may not publish (see [`Publishers`]).
    NotPublisher(ApiError),
    BotOffline,
    /// Something failed on the way (not the caller's doing).
    Fault(ApiError),
}

/// What the live channel reads of the conversation's answer to `Get`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSeen {
    #[serde(default)]
    pub sandbox_id: String,
}

/// What the live channel reads of the bot's status.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct BotSeen {
    #[serde(default)]
    pub online: bool,
}

/// The conversation refused `Get`: a refusal of the caller below 500, a fault from 500 on.
pub fn conversation_refused(e: ApiError) -> Refusal {
    if e.status() < 500 {
        Refusal::NotVisible(e)
    } else {
        Refusal::Fault(e)
    }
}

/// The bot's status decides the rest.
pub fn bot_status(bot: BotSeen) -> Result<(), Refusal> {
    if bot.online {
        Ok(())
    } else {
        Err(Refusal::BotOffline)
    }
}

impl Refusal {
    /// The HTTP answer of a refused publish (or preflight).
    pub fn into_error(self) -> ApiError {
        match self {
            Refusal::NotVisible(e) | Refusal::NotPublisher(e) | Refusal::Fault(e) => e,
            Refusal::BotOffline => ApiError::new(ErrorCode::BotOffline, "the conversation's bot is not online"),
        }
    }

    /// A refused subscriber: its socket is accepted and closed at once with this code (browsers can
    /// read a close code, not an HTTP status). `Err`: a fault, answered as an HTTP error.
    pub fn subscriber_close(self) -> Result<(u16, &'static str), ApiError> {
        match self {
            Refusal::NotVisible(_) | Refusal::NotPublisher(_) => {
                Ok((close::UNKNOWN_CONVERSATION, "unknown conversation"))
            }
            Refusal::BotOffline => Ok((close::BOT_OFFLINE, "bot is not online")),
            Refusal::Fault(e) => Err(e),
        }
    }
}

/// Subscriptions being admitted. Admission awaits other objects (the conversation, the bot), and
/// other requests reach the channel meanwhile: a membership that ends then (`/membership-ended`)
/// finds no socket of that member to close yet. It marks the member's admissions in progress
/// instead, and a marked admission is refused as the close would have closed it. Holds only
/// admissions in progress (one entry per member, counting that member's concurrent ones).
#[derive(Debug, Default)]
pub struct Admissions {
    pending: std::collections::HashMap<String, (u32, bool)>,
}

impl Admissions {
    /// An admission of `member` begins.
    pub fn begin(&mut self, member: &str) {
        self.pending.entry(member.to_string()).or_insert((0, false)).0 += 1;
    }

    /// `member`'s membership ended: the admissions in progress are marked.
    pub fn membership_ended(&mut self, member: &str) {
        if let Some(p) = self.pending.get_mut(member) {
            p.1 = true;
        }
    }

    /// An admission of `member` ends: whether the membership ended while it was in progress.
    pub fn end(&mut self, member: &str) -> bool {
        let Some(p) = self.pending.get_mut(member) else { return false };
        let ended = p.1;
        p.0 = p.0.saturating_sub(1);
        if p.0 == 0 {
            self.pending.remove(member);
        }
        ended
    }
}
