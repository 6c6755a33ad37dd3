//! Pushes that survive: a message's push is recorded in `push_outbox` in the same transaction as
//! the message, and delivered by the alarm (at once: the send asks for the alarm now), with
//! retries and backoff; after [`PUSH_MAX_ATTEMPTS`] failures it is dead-lettered (kept
//! [`PUSH_DEAD_KEEP_MS`], logged by the shell, `docs/notifications.md`). A delivery being made is
//! claimed for [`PUSH_CLAIM_MS`] (the shell stores the alarm for the claim's end before it sends),
//! so a restart during it retries it later. The notifications
//! worker's ledger is idempotent by `chat:{messageId}:{userId}` and the request is stored as first
//! made, so a retry never counts a badge twice.

use crate::store::Store;
use crate::Conversation;
use serde::Deserialize;
use switchboard_core::backoff::{Backoff, BackoffPolicy};
use switchboard_core::model::Message;
use switchboard_core::ApiError;
use switchboard_notify_contract::SendPushForConversation;

/// A delivery handed to the shell is not handed out again for this long (a crash mid-delivery
/// retries it after this: the shell stores the alarm for then before it sends anything).
pub const PUSH_CLAIM_MS: i64 = 30_000;
/// Failed deliveries before the push is dead-lettered.
pub const PUSH_MAX_ATTEMPTS: i64 = 8;
/// Pushes delivered per alarm run (more due: the alarm fires again at once).
pub const PUSH_BATCH: usize = 10;
/// Waits between attempts: 2 s doubling to 5 min, jittered (`switchboard_core::backoff`).
pub const PUSH_BACKOFF: BackoffPolicy = BackoffPolicy { initial_ms: 2_000, cap_ms: 300_000, stable_ms: 0 };
/// Dead-lettered pushes are kept this long for operators, then swept.
pub const PUSH_DEAD_KEEP_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// What became of a push after a delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum PushSettled {
    Delivered,
    /// Failed; tried again at `at`.
    Retry {
        at: i64,
        attempts: i64,
    },
    /// Failed for the last time: dead-lettered.
    Dead {
        attempts: i64,
    },
    /// Not in the outbox (already settled).
    Unknown,
}

impl<S: Store> Conversation<S> {
    /// Within a command that just created `message`: the push for the members who are not looking,
    /// if any, recorded for delivery (the alarm is asked for now).
    pub(crate) fn queue_push(
        &self,
        message: &Message,
        now: i64,
        socket_members: &dyn Fn() -> Vec<String>,
    ) -> Result<(), ApiError> {
        let meta = self.meta()?.ok_or_else(|| ApiError::not_found("conversation not found"))?;
        let Some(push) = self.push_request(&meta, message, now, socket_members)? else { return Ok(()) };
        let request = serde_json::to_string(&push).map_err(|e| ApiError::internal(format!("encode push: {e}")))?;
        self.exec(
            "INSERT OR IGNORE INTO push_outbox (message_id, request, attempts, next_at) VALUES (?, ?, 0, ?)",
            &[message.id.as_str().into(), request.into(), now.into()],
        )?;
        let mut pending = self.pending.borrow_mut();
        pending.push = Some(push);
        pending.alarm_by(now);
        Ok(())
    }

    /// Within the alarm's command: the pushes due at `now` (at most [`PUSH_BATCH`]), claimed for
    /// [`PUSH_CLAIM_MS`]; dead letters older than [`PUSH_DEAD_KEEP_MS`] are swept.
    pub(crate) fn claim_due_pushes(&self, now: i64) -> Result<Vec<SendPushForConversation>, ApiError> {
        self.exec(
            "DELETE FROM push_outbox WHERE dead_at IS NOT NULL AND dead_at <= ?",
            &[(now - PUSH_DEAD_KEEP_MS).into()],
        )?;
        #[derive(Deserialize)]
        struct Due {
            message_id: String,
            request: String,
        }
        let due: Vec<Due> = self.query(
            "SELECT message_id, request FROM push_outbox WHERE dead_at IS NULL AND next_at <= ? ORDER BY next_at, message_id LIMIT ?",
            &[now.into(), (PUSH_BATCH as i64).into()],
        )?;
        let mut out = Vec::with_capacity(due.len());
        for d in due {
            self.exec(
                "UPDATE push_outbox SET next_at = ? WHERE message_id = ?",
                &[(now + PUSH_CLAIM_MS).into(), d.message_id.as_str().into()],
            )?;
            match serde_json::from_str(&d.request) {
                Ok(push) => out.push(push),
                Err(e) => {
                    // Never deliverable: dead at once rather than retried forever.
                    self.exec(
                        "UPDATE push_outbox SET dead_at = ?, last_error = ? WHERE message_id = ?",
                        &[now.into(), format!("undecodable request: {e}").into(), d.message_id.into()],
                    )?;
                }
            }
        }
        Ok(out)
    }

    /// The earliest time a push waits for (the alarm must fire by then).
    pub(crate) fn next_push_at(&self) -> Result<Option<i64>, ApiError> {
        self.scalar("SELECT MIN(next_at) AS v FROM push_outbox WHERE dead_at IS NULL", &[])
    }

    /// How the delivery of `message_id`'s push went (`Err`: why it failed). `random`: any 64
    /// random bits, for the backoff's jitter.
    pub fn push_settled(
        &self,
        message_id: &str,
        outcome: Result<(), String>,
        now: i64,
        random: u64,
    ) -> Result<PushSettled, ApiError> {
        let (r, _) = self.command(|| {
            let Some(attempts) = self.scalar(
                "SELECT attempts AS v FROM push_outbox WHERE message_id = ? AND dead_at IS NULL",
                &[message_id.into()],
            )?
            else {
                return Ok(PushSettled::Unknown);
            };
            let error = match outcome {
                Ok(()) => {
                    self.exec("DELETE FROM push_outbox WHERE message_id = ?", &[message_id.into()])?;
                    return Ok(PushSettled::Delivered);
                }
                Err(e) => e.chars().take(500).collect::<String>(),
            };
            let attempts = attempts + 1;
            if attempts >= PUSH_MAX_ATTEMPTS {
                self.exec(
                    "UPDATE push_outbox SET attempts = ?, dead_at = ?, last_error = ? WHERE message_id = ?",
                    &[attempts.into(), now.into(), error.into(), message_id.into()],
                )?;
                return Ok(PushSettled::Dead { attempts });
            }
            let wait = Backoff::with_failures(PUSH_BACKOFF, (attempts - 1) as u32).failed(now.max(0) as u64, random);
            let at = now + wait as i64;
            self.exec(
                "UPDATE push_outbox SET attempts = ?, next_at = ?, last_error = ? WHERE message_id = ?",
                &[attempts.into(), at.into(), error.into(), message_id.into()],
            )?;
            Ok(PushSettled::Retry { at, attempts })
        });
        r
    }

    /// Dead-lettered pushes kept now (for operators).
    pub fn dead_pushes(&self) -> Result<i64, ApiError> {
        if !self.exists()? {
            return Ok(0);
        }
        Ok(self.scalar("SELECT COUNT(*) AS v FROM push_outbox WHERE dead_at IS NOT NULL", &[])?.unwrap_or(0))
    }
}
