//! The conversation's rate limits and caps (`switchboard_core::limit_vars::Limits`, from the vars).
//!
//! Per member (in this object's memory, `rate::Buckets`, at most `MAX_RATE_BUCKETS`): message sends
//! (HTTP, the bot's route and the socket's `message.create` all go through [`Conversation::send`]
//! and share one bucket), edits and deletes, reactions, member additions. Per connection: the
//! frames of each of the conversation's sockets. Memory only: an object that is evicted (it was
//! idle) or restarted starts with full buckets, which is only more lenient. When a member's
//! `typing` was last broadcast is kept here too (a `typing.stop` deletes the typing state, not
//! this), bounded by `MAX_MEMBERS` entries.
//!
//! Caps: sockets per member (`accept`), distinct reactions per member and per message (stored).

use crate::store::Store;
use crate::Conversation;
use std::collections::HashMap;
use switchboard_core::limits::{close, MAX_MEMBERS};
use switchboard_core::rate::{Buckets, FrameVerdict, Rate};
use switchboard_core::{ApiError, ErrorCode};

/// What a member does that is rate-limited per member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Send,
    Edit,
    React,
    AddMember,
}

impl Action {
    fn key(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Edit => "edit",
            Action::React => "react",
            Action::AddMember => "add",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Action::Send => "messages",
            Action::Edit => "edits and deletes",
            Action::React => "reactions",
            Action::AddMember => "member additions",
        }
    }
}

/// A frame's fate, as the socket is to be told.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameCheck {
    Pass,
    /// Answer this error frame and drop the frame.
    Refuse(String),
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
}

/// The rate-limit state in memory: buckets, and when each member's `typing` was last broadcast.
#[derive(Debug, Default)]
pub struct RateMemory {
    pub(crate) buckets: Buckets,
    pub(crate) typing_broadcast_at: HashMap<String, i64>,
}

impl<S: Store> Conversation<S> {
    fn rate_of(&self, action: Action) -> Rate {
        let l = &self.config.limits;
        match action {
            Action::Send => l.sends,
            Action::Edit => l.edits,
            Action::React => l.reactions,
            Action::AddMember => l.member_adds,
        }
    }

    /// Takes one of `caller`'s tokens for `action`; 429 `rate_limited` when there is none.
    pub(crate) fn rate_limit(&self, action: Action, caller: &str, now: i64) -> Result<(), ApiError> {
        let rate = self.rate_of(action);
        let key = format!("{}\u{0}{caller}", action.key());
        self.rates
            .borrow_mut()
            .buckets
            .take(&key, rate, now)
            .map_err(|retry| ApiError::rate_limited(format!("{}: {rate} per member", action.what()), retry))
    }

    /// A frame from a conversation socket of `member` opened at `connected_at` (one connection).
    pub fn frame_allowed(&self, member: &str, connected_at: i64, now: i64) -> FrameCheck {
        let rate = self.config.limits.socket_frames;
        let key = format!("frame\u{0}{member}\u{0}{connected_at}");
        let verdict = self.rates.borrow_mut().buckets.frame(&key, rate, self.config.limits.flood_strikes, now);
        match verdict {
            FrameVerdict::Pass => FrameCheck::Pass,
            FrameVerdict::Refuse(retry) => FrameCheck::Refuse(
                ApiError::rate_limited(format!("frames: {rate} per connection"), retry).to_frame(None),
            ),
            FrameVerdict::Close => FrameCheck::Close(close::RATE_LIMITED, "rate limited"),
        }
    }

    /// Forgets a closed connection's frame bucket.
    pub fn connection_closed(&self, member: &str, connected_at: i64) {
        self.rates.borrow_mut().buckets.forget(&format!("frame\u{0}{member}\u{0}{connected_at}"));
    }

    /// Refuses a new socket of `member` when they already have `max_sockets_per_member` open here
    /// (counted from the connected cache, rebuilt from the runtime's list when stale).
    pub(crate) fn socket_cap(
        &self,
        member: &str,
        socket_members: &dyn Fn() -> Vec<String>,
        now: i64,
    ) -> Result<(), ApiError> {
        let mut connected = self.connected.borrow_mut();
        if connected.needs_rebuild(now) {
            connected.rebuild(socket_members(), now);
        }
        let cap = self.config.limits.max_sockets_per_member;
        if connected.sockets_of(member) >= cap {
            return Err(ApiError::new(
                ErrorCode::TooManyConnections,
                format!("at most {cap} sockets per member on one conversation; close one first"),
            ));
        }
        Ok(())
    }

    /// When `member`'s `typing` was last broadcast (it outlives `typing.stop`).
    pub(crate) fn typing_broadcast_at(&self, member: &str) -> Option<i64> {
        self.rates.borrow().typing_broadcast_at.get(member).copied()
    }

    pub(crate) fn typing_broadcast(&self, member: &str, now: i64) {
        let throttle = self.config.limits.typing_throttle_ms;
        let mut rates = self.rates.borrow_mut();
        let map = &mut rates.typing_broadcast_at;
        if map.len() >= MAX_MEMBERS && !map.contains_key(member) {
            // Entries older than the throttle say nothing any more.
            map.retain(|_, at| now.saturating_sub(*at) < throttle);
            if map.len() >= MAX_MEMBERS {
                map.clear();
            }
        }
        map.insert(member.to_string(), now);
    }

    /// Refuses a reaction that would put more distinct emoji on the message than the caps allow:
    /// `max_reactions_per_member` of the caller's, `max_reactions_per_message` in all.
    pub(crate) fn reaction_caps(&self, caller: &str, message_id: &str, emoji: &str) -> Result<(), ApiError> {
        let l = &self.config.limits;
        let mine = self
            .scalar(
                "SELECT COUNT(*) AS v FROM reactions WHERE message_id = ? AND member_id = ? AND emoji <> ?",
                &[message_id.into(), caller.into(), emoji.into()],
            )?
            .unwrap_or(0);
        if mine >= i64::from(l.max_reactions_per_member) {
            return Err(ApiError::new(
                ErrorCode::TooManyReactions,
                format!("at most {} different reactions per member on one message", l.max_reactions_per_member),
            ));
        }
        let exists = self
            .scalar(
                "SELECT COUNT(*) AS v FROM reactions WHERE message_id = ? AND emoji = ?",
                &[message_id.into(), emoji.into()],
            )?
            .unwrap_or(0);
        if exists == 0 {
            let distinct = self
                .scalar("SELECT COUNT(DISTINCT emoji) AS v FROM reactions WHERE message_id = ?", &[message_id.into()])?
                .unwrap_or(0);
            if distinct >= i64::from(l.max_reactions_per_message) {
                return Err(ApiError::new(
                    ErrorCode::TooManyReactions,
                    format!("at most {} different reactions on one message", l.max_reactions_per_message),
                ));
            }
        }
        Ok(())
    }
}
