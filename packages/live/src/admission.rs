//! Who may publish or subscribe: a member of the conversation (the conversation's own answer)
//! while the conversation's bot is online. Asked once per publish or subscription, never per line.

use serde::Deserialize;
use switchboard_core::live::close;
use switchboard_core::{ApiError, ErrorCode};

/// Why a caller may not publish or subscribe.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Unknown conversation, or not a member: the conversation's own answer.
    NotVisible(ApiError),
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
            Refusal::NotVisible(e) | Refusal::Fault(e) => e,
            Refusal::BotOffline => ApiError::new(ErrorCode::BotOffline, "the conversation's bot is not online"),
        }
    }

    /// A refused subscriber: its socket is accepted and closed at once with this code (browsers can
    /// read a close code, not an HTTP status). `Err`: a fault, answered as an HTTP error.
    pub fn subscriber_close(self) -> Result<(u16, &'static str), ApiError> {
        match self {
            Refusal::NotVisible(_) => Ok((close::UNKNOWN_CONVERSATION, "unknown conversation")),
            Refusal::BotOffline => Ok((close::BOT_OFFLINE, "bot is not online")),
            Refusal::Fault(e) => Err(e),
        }
    }
}
