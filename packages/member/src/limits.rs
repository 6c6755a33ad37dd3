//! The member's rate limits and caps (`switchboard_core::limit_vars::Limits`, from the vars).
//!
//! Per user, in this object's memory (`rate::Buckets`, at most `MAX_RATE_BUCKETS`): conversation
//! creations and connect-ticket requests ([`Command::Allow`](crate::Command::Allow), asked by the
//! worker before it acts), and each hub socket's frames. Memory only: an object that is evicted
//! (it was idle) starts with full buckets, which is only more lenient.
//!
//! Stored, so that no eviction resets it: the conversations this user created in the last 24 hours
//! (rolling window, `CONVERSATIONS_WINDOW_MS`), at most `max_conversations_per_day` rows.
//! The hub's sessions are capped at `max_hub_sessions` open sockets (see `hub::sessions`).

use crate::store::Store;
use crate::{Member, Outcome, Reply};
use serde::{Deserialize, Serialize};
use switchboard_core::limits::{close, CONVERSATIONS_WINDOW_MS};
use switchboard_core::rate::{FrameVerdict, RetryAfterMs};
use switchboard_core::ApiError;

/// What the worker asks leave for before it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limited {
    /// `POST /v1/conversations` by this user (counted against the rate and the daily cap).
    CreateConversation,
    /// `POST /connect-ticket` by this member.
    ConnectTicket,
}

/// What to do with a hub socket's frame.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameCheck {
    Pass,
    /// Answer this error frame and drop the frame.
    Refuse(String),
    /// Close with this code and reason.
    Close(u16, &'static str),
}

impl<S: Store> Member<S> {
    /// 204 when this member may do `what` now (and it is counted), else 429 `rate_limited`.
    pub(crate) fn allow(&self, what: Limited, now: i64) -> Outcome {
        let l = self.limits;
        let (key, rate, name) = match what {
            Limited::CreateConversation => ("create", l.conversation_creates, "conversation creations"),
            Limited::ConnectTicket => ("ticket", l.connect_tickets, "connect tickets"),
        };
        if let Err(retry) = self.rates.borrow_mut().take(key, rate, now) {
            return (Err(ApiError::rate_limited(format!("{name}: {rate} per user"), retry)), Default::default());
        }
        match what {
            Limited::ConnectTicket => (Ok(Reply::no_content()), Default::default()),
            Limited::CreateConversation => self.command(|| {
                let since = now - CONVERSATIONS_WINDOW_MS;
                self.exec("DELETE FROM creations WHERE at <= ?", &[since.into()])?;
                let n = self.scalar("SELECT COUNT(*) AS v FROM creations", &[])?.unwrap_or(0);
                let cap = l.max_conversations_per_day;
                if n >= i64::from(cap) {
                    let oldest = self.scalar("SELECT MIN(at) AS v FROM creations", &[])?.unwrap_or(now);
                    let retry = RetryAfterMs((oldest + CONVERSATIONS_WINDOW_MS - now).max(1) as u64);
                    return Err(ApiError::rate_limited(
                        format!("at most {cap} conversations per user in 24 hours"),
                        retry,
                    ));
                }
                self.exec("INSERT INTO creations (at) VALUES (?)", &[now.into()])?;
                Ok(Reply::no_content())
            }),
        }
    }

    /// A frame from the hub socket of `session` opened at `connected_at` (one connection).
    pub(crate) fn frame_allowed(&self, session: &str, connected_at: i64, now: i64) -> FrameCheck {
        let rate = self.limits.socket_frames;
        let key = format!("frame\u{0}{session}\u{0}{connected_at}");
        match self.rates.borrow_mut().frame(&key, rate, self.limits.flood_strikes, now) {
            FrameVerdict::Pass => FrameCheck::Pass,
            FrameVerdict::Refuse(retry) => FrameCheck::Refuse(
                ApiError::rate_limited(format!("frames: {rate} per connection"), retry).to_frame(None),
            ),
            FrameVerdict::Close => FrameCheck::Close(close::RATE_LIMITED, "rate limited"),
        }
    }

    /// Forgets a closed connection's frame bucket.
    pub(crate) fn connection_closed(&self, session: &str, connected_at: i64) {
        self.rates.borrow_mut().forget(&format!("frame\u{0}{session}\u{0}{connected_at}"));
    }
}
