//! Pushes that survive: a message's push is recorded in `push_outbox` in the same transaction as
//! the message, and delivered by the alarm (at once: the send asks for the alarm now), with
//! retries and backoff; after [`PUSH_MAX_ATTEMPTS`] failures it is dead-lettered (kept
//! [`PUSH_DEAD_KEEP_MS`], logged by the shell, `docs/notifications.md`).
//!
//! A delivery being made is claimed **in memory** for [`PUSH_CLAIM_MS`]: this instance of the
//! object does not hand it out again meanwhile, and the shell stores the alarm for the claim's end
//! before it sends. A restart (a crash, an eviction) ends every claim with the instance that held
//! it, so the next instance hands the push out at its first alarm instead of waiting for a stored
//! claim to run out.
//!
//! The notifications worker's answer says, per recipient, whether their push is done
//! ([`switchboard_notify_contract::Outcome::is_done`]); a push is settled only when every
//! recipient's is. A recipient answered `failed` is retried (an attempt, backing off); one
//! answered `pending` (another attempt holds it: e.g. one a crash cut short after the ledger
//! counted the badge and before Expo was called) is asked for again when that attempt's lease
//! ends, without counting an attempt. The stored request keeps only the recipients not done,
//! otherwise exactly as first made: the ledger's key (`chat:{messageId}:{userId}`) is the same on
//! every attempt, so a retry never counts a badge twice.

use crate::store::Store;
use crate::Conversation;
use serde::Deserialize;
use switchboard_core::backoff::{Backoff, BackoffPolicy};
use switchboard_core::model::Message;
use switchboard_core::ApiError;
use switchboard_notify_contract::{Outcome, SendPushForConversation, SendPushResult};

/// A delivery handed to the shell is not handed out again by this instance for this long (a
/// delivery that hangs is retried after it; after a restart at once: the claim is memory).
pub const PUSH_CLAIM_MS: i64 = 30_000;
/// Failed deliveries before the push is dead-lettered.
pub const PUSH_MAX_ATTEMPTS: i64 = 8;
/// Pushes delivered per alarm run (more due: the alarm fires again at once).
pub const PUSH_BATCH: usize = 10;
/// Waits between attempts: 2 s doubling to 5 min, jittered (`switchboard_core::backoff`).
pub const PUSH_BACKOFF: BackoffPolicy = BackoffPolicy { initial_ms: 2_000, cap_ms: 300_000, stable_ms: 0 };
/// A push another attempt holds is asked for again when that attempt's lease ends, but at least
/// this much later...
pub const PUSH_HELD_MIN_WAIT_MS: i64 = 1_000;
/// ...and at most this much later (a lease end further out is not believed).
pub const PUSH_HELD_MAX_WAIT_MS: i64 = 300_000;
/// Dead-lettered pushes are kept this long for operators, then swept.
pub const PUSH_DEAD_KEEP_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// What became of a push after a delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum PushSettled {
    Delivered,
    /// Failed for some recipients; tried again (for those) at `at`.
    Retry {
        at: i64,
        attempts: i64,
    },
    /// None failed, but some recipients' pushes are held by another attempt: asked for again at
    /// `at`, when its lease ends. Not a failed attempt.
    Held {
        at: i64,
    },
    /// Failed for the last time: dead-lettered.
    Dead {
        attempts: i64,
    },
    /// Not in the outbox (already settled).
    Unknown,
}

/// What one delivery's answer leaves to do: the recipients not done, why (the first failure, if
/// any failed), and the latest lease end of those held by another attempt.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PushLeft {
    pub recipients: Vec<String>,
    pub failed: Option<String>,
    pub held_until: Option<i64>,
}

impl PushLeft {
    /// Reads the notifications worker's answer (`Err`: the call failed, every recipient is left).
    pub fn of(request: &SendPushForConversation, answer: &Result<SendPushResult, String>, now: i64) -> PushLeft {
        let result = match answer {
            Err(e) => {
                return PushLeft {
                    recipients: request.recipients.iter().map(|r| r.user_id.clone()).collect(),
                    failed: Some(e.clone()),
                    held_until: None,
                }
            }
            Ok(r) => r,
        };
        let mut left = PushLeft::default();
        for o in result.outcomes.iter().filter(|o| !o.outcome.is_done()) {
            left.recipients.push(o.user_id.clone());
            if o.outcome == Outcome::Pending {
                let until = o.retry_at.unwrap_or(now);
                left.held_until = Some(left.held_until.map_or(until, |h: i64| h.max(until)));
            } else if left.failed.is_none() {
                left.failed = Some(format!("the push to {} answered {:?}", o.user_id, o.outcome));
            }
        }
        left
    }
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

    /// Within the alarm's command: the pushes due at `now` (at most [`PUSH_BATCH`]) that this
    /// instance does not hold, claimed in memory for [`PUSH_CLAIM_MS`]; dead letters older than
    /// [`PUSH_DEAD_KEEP_MS`] are swept.
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
        self.push_claims.borrow_mut().retain(|_, until| *until > now);
        let due: Vec<Due> = self.query(
            "SELECT message_id, request FROM push_outbox
             WHERE dead_at IS NULL AND next_at <= ? AND message_id NOT IN (SELECT value FROM json_each(?))
             ORDER BY next_at, message_id LIMIT ?",
            &[now.into(), self.held_pushes()?.into(), (PUSH_BATCH as i64).into()],
        )?;
        let mut out = Vec::with_capacity(due.len());
        for d in due {
            match serde_json::from_str(&d.request) {
                Ok(push) => {
                    self.push_claims.borrow_mut().insert(d.message_id, now + PUSH_CLAIM_MS);
                    out.push(push);
                }
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

    /// The message ids of the pushes this instance holds, as a JSON array.
    fn held_pushes(&self) -> Result<String, ApiError> {
        serde_json::to_string(&self.push_claims.borrow().keys().collect::<Vec<_>>())
            .map_err(|e| ApiError::internal(format!("encode: {e}")))
    }

    /// The earliest time a push waits for (the alarm must fire by then): a push due that this
    /// instance does not hold, or the end of a claim.
    pub(crate) fn next_push_at(&self) -> Result<Option<i64>, ApiError> {
        let free = self.scalar(
            "SELECT MIN(next_at) AS v FROM push_outbox
             WHERE dead_at IS NULL AND message_id NOT IN (SELECT value FROM json_each(?))",
            &[self.held_pushes()?.into()],
        )?;
        let claim_end = self.push_claims.borrow().values().min().copied();
        Ok(switchboard_core::alarm::next_fire(free, claim_end))
    }

    /// How the delivery of `request` went: the notifications worker's answer, or why the call
    /// failed. `random`: any 64 random bits, for the backoff's jitter.
    pub fn push_settled(
        &self,
        request: &SendPushForConversation,
        answer: &Result<SendPushResult, String>,
        now: i64,
        random: u64,
    ) -> Result<PushSettled, ApiError> {
        let message_id = request.message_id.as_str();
        self.push_claims.borrow_mut().remove(message_id);
        let left = PushLeft::of(request, answer, now);
        let (r, _) = self.command(|| {
            #[derive(Deserialize)]
            struct Row {
                attempts: i64,
                request: String,
            }
            let row = self.query::<Row>(
                "SELECT attempts, request FROM push_outbox WHERE message_id = ? AND dead_at IS NULL",
                &[message_id.into()],
            )?;
            let Some(row) = row.into_iter().next() else { return Ok(PushSettled::Unknown) };
            if left.recipients.is_empty() {
                self.exec("DELETE FROM push_outbox WHERE message_id = ?", &[message_id.into()])?;
                return Ok(PushSettled::Delivered);
            }
            // The stored request, with only the recipients still to do.
            let mut stored: SendPushForConversation = serde_json::from_str(&row.request)
                .map_err(|e| ApiError::internal(format!("stored push request: {e}")))?;
            stored.recipients.retain(|r| left.recipients.contains(&r.user_id));
            let narrowed =
                serde_json::to_string(&stored).map_err(|e| ApiError::internal(format!("encode push: {e}")))?;
            let held_at =
                left.held_until.map(|h| h.clamp(now + PUSH_HELD_MIN_WAIT_MS, now + PUSH_HELD_MAX_WAIT_MS));
            let Some(error) = &left.failed else {
                // Only held by another attempt: not a failure; asked for again when its lease ends.
                let at = held_at.unwrap_or(now + PUSH_HELD_MIN_WAIT_MS);
                self.exec(
                    "UPDATE push_outbox SET request = ?, next_at = ? WHERE message_id = ?",
                    &[narrowed.into(), at.into(), message_id.into()],
                )?;
                return Ok(PushSettled::Held { at });
            };
            let error: String = error.chars().take(500).collect();
            let attempts = row.attempts + 1;
            if attempts >= PUSH_MAX_ATTEMPTS {
                self.exec(
                    "UPDATE push_outbox SET request = ?, attempts = ?, dead_at = ?, last_error = ? WHERE message_id = ?",
                    &[narrowed.into(), attempts.into(), now.into(), error.into(), message_id.into()],
                )?;
                return Ok(PushSettled::Dead { attempts });
            }
            let wait = Backoff::with_failures(PUSH_BACKOFF, (attempts - 1) as u32).failed(now.max(0) as u64, random);
            let at = (now + wait as i64).max(held_at.unwrap_or(i64::MIN));
            self.exec(
                "UPDATE push_outbox SET request = ?, attempts = ?, next_at = ?, last_error = ? WHERE message_id = ?",
                &[narrowed.into(), attempts.into(), at.into(), error.into(), message_id.into()],
            )?;
            Ok(PushSettled::Retry { at, attempts })
        });
        r
    }

    /// Pushes waiting in the outbox (not dead) and dead-lettered ones (for operators and the local
    /// inspection route).
    pub fn push_outbox_counts(&self) -> Result<(i64, i64), ApiError> {
        if !self.exists()? {
            return Ok((0, 0));
        }
        let waiting = self.scalar("SELECT COUNT(*) AS v FROM push_outbox WHERE dead_at IS NULL", &[])?.unwrap_or(0);
        Ok((waiting, self.dead_pushes()?))
    }

    /// Dead-lettered pushes kept now (for operators).
    pub fn dead_pushes(&self) -> Result<i64, ApiError> {
        if !self.exists()? {
            return Ok(0);
        }
        Ok(self.scalar("SELECT COUNT(*) AS v FROM push_outbox WHERE dead_at IS NOT NULL", &[])?.unwrap_or(0))
    }
}
