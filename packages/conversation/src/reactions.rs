//! Reactions: a member adds or removes an emoji on a message (validated, rate-limited, capped per
//! member and per message); the answer is the message's reaction summary.

use crate::limits::Action;
use crate::messages::Outcome;
use crate::store::Store;
use crate::{Conversation, Reply};
use serde_json::json;
use switchboard_core::events::Event;
use switchboard_core::{validate, ApiError, ErrorCode};

impl<S: Store> Conversation<S> {
    pub(crate) fn add_reaction(&self, caller: &str, message_id: &str, emoji: &str, now: i64) -> Outcome {
        self.command(|| {
            self.require_member(caller)?;
            validate::emoji(emoji)?;
            self.rate_limit(Action::React, caller, now)?;
            let row = self.require_message(message_id)?;
            if row.deleted != 0 {
                return Err(ApiError::new(ErrorCode::MessageDeleted, "the message was deleted"));
            }
            self.reaction_caps(caller, message_id, emoji)?;
            let written = self.exec(
                "INSERT OR IGNORE INTO reactions (message_id, member_id, emoji, created_at) VALUES (?, ?, ?, ?)",
                &[message_id.into(), caller.into(), emoji.into(), now.into()],
            )?;
            if written > 0 {
                self.emit(Event::ReactionAdded {
                    message_id: message_id.into(),
                    member_id: caller.into(),
                    emoji: emoji.into(),
                })?;
            }
            let summary = self.reactions_of(message_id)?;
            Ok(Reply::json(if written > 0 { 201 } else { 200 }, json!({"id": message_id, "reactions": summary})))
        })
    }

    pub(crate) fn remove_reaction(&self, caller: &str, message_id: &str, emoji: &str, now: i64) -> Outcome {
        self.command(|| {
            self.require_member(caller)?;
            // Keys stored before reactions were validated can still be removed.
            switchboard_core::emoji::validate_removal(emoji)?;
            self.rate_limit(Action::React, caller, now)?;
            self.require_message(message_id)?;
            let written = self.exec(
                "DELETE FROM reactions WHERE message_id = ? AND member_id = ? AND emoji = ?",
                &[message_id.into(), caller.into(), emoji.into()],
            )?;
            if written > 0 {
                self.emit(Event::ReactionRemoved {
                    message_id: message_id.into(),
                    member_id: caller.into(),
                    emoji: emoji.into(),
                })?;
            }
            let summary = self.reactions_of(message_id)?;
            Ok(Reply::json(200, json!({"id": message_id, "reactions": summary})))
        })
    }
}
