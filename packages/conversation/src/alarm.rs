//! The one alarm: typing that timed out, expired idempotency records, the pushes to deliver
//! (`push`), and the flush of new activity and titles to members' conversation lists.
//!
//! A run has two halves around the calls to members' objects, which the shell makes:
//! [`Conversation::alarm_start`] ends typing, sweeps records and plans the next batch of the list
//! flush; [`Conversation::alarm_finish`] records how that batch went and answers when the alarm
//! should fire next. A pass starts when the list is dirty (`list_version > list_flushed`),
//! remembers the version it serves, walks the members in id order [`FLUSH_BATCH`] at a time (the
//! cursor is stored, so hibernation loses nothing), and when it reaches the end marks that
//! version flushed. A member whose object failed never holds the pass up: the batch moves on, and
//! that member alone is tried again later (`list_retry`, backing off, [`LIST_RETRY_MAX_ATTEMPTS`]
//! times; any later pass tells it too). Telling a member is idempotent (it sets the title and last
//! activity), so retries converge.
//!
//! **The background reconcile.** A flush tells members only what changed, and only to entries they
//! have, so an entry lost on the way (an add whose list write failed, a member object's storage
//! restored from before it) or left stale (retries given up) would stay so. So when a pass that
//! served new activity ends (and when the conversation is created: the worker's first list
//! entries may have failed), a reconcile is scheduled `Config::list_reconcile_ms` later (stored:
//! `list_reconcile`; one at a time, never postponed): a pass like the others, in the same bounded
//! batches, that tells every member the whole entry ([`Repair`]: also the sandbox and their join
//! time), so a member object missing the entry adds it back and a stale one is corrected
//! (activity only moves forward, the title is the current one). A reconcile pass schedules no other:
//! an idle conversation is reconciled once after its last activity, a busy one at most once per
//! period. A member who left while a reconcile batch was on its way is told to remove the entry
//! again ([`Conversation::left_during`]), so a reconcile never re-adds a conversation someone left.

use crate::effects::Effects;
use crate::store::Store;
use crate::Conversation;
use serde::Deserialize;
use switchboard_core::events::Event;
use switchboard_core::{alarm, ApiError};

/// Members told per alarm run, so one run stays far below the per-invocation subrequest limit.
pub const FLUSH_BATCH: usize = 50;
/// Members' objects told at once during a flush; small, so other requests keep being answered.
pub const FLUSH_CONCURRENCY: usize = 8;
/// A member whose list could not be told is tried again after 5 s, doubling to 10 min...
pub const LIST_RETRY_BACKOFF: switchboard_core::backoff::BackoffPolicy =
    switchboard_core::backoff::BackoffPolicy { initial_ms: 5_000, cap_ms: 600_000, stable_ms: 0 };
/// ...this many times, then left to the next pass.
pub const LIST_RETRY_MAX_ATTEMPTS: i64 = 8;

/// One batch of the list flush: tell these members the conversation's title and activity.
#[derive(Debug, Clone, PartialEq)]
pub struct FlushBatch {
    pub conversation_id: String,
    pub title: Option<String>,
    pub last_activity_at: Option<i64>,
    pub members: Vec<String>,
    /// Members tried again after a failure (not a step of a pass).
    pub retry: bool,
    /// A step of a reconcile pass: the whole entry, for members whose entry went missing.
    pub repair: Option<Repair>,
}

/// What a reconcile adds to a flush: enough for a member's object to add a missing entry back.
#[derive(Debug, Clone, PartialEq)]
pub struct Repair {
    pub sandbox_id: String,
    /// Each member's join time, in `members`' order.
    pub joined_at: Vec<i64>,
}

/// The first half of an alarm run.
#[derive(Debug, Default)]
pub struct AlarmStart {
    pub effects: Effects,
    pub flush: Option<FlushBatch>,
    /// Pushes to deliver now (claimed; settle each with [`Conversation::push_settled`]).
    pub pushes: Vec<switchboard_notify_contract::SendPushForConversation>,
}

impl<S: Store> Conversation<S> {
    /// How long new activity waits before members' lists learn of it (`alarm::flush_period_ms`).
    pub fn flush_delay_ms(&self) -> i64 {
        let members = self.active_roster().map(|r| r.len()).unwrap_or(0);
        alarm::flush_period_ms(self.config.activity_flush_ms, members)
    }

    /// Ends typing that timed out, sweeps expired idempotency records, and plans the next flush
    /// batch (`None` when no list is waiting).
    pub fn alarm_start(&self, now: i64) -> Result<AlarmStart, ApiError> {
        if !self.exists()? {
            return Ok(AlarmStart::default());
        }
        let claims_before = self.push_claims.borrow().clone();
        let (r, effects) = self.command(|| {
            #[derive(Deserialize)]
            struct Expired {
                member_id: String,
            }
            let expired: Vec<Expired> =
                self.query("SELECT member_id FROM typing WHERE expires_at <= ? ORDER BY member_id", &[now.into()])?;
            if !expired.is_empty() {
                self.exec("DELETE FROM typing WHERE expires_at <= ?", &[now.into()])?;
                for e in expired {
                    self.emit_ephemeral(Event::TypingStop { member_id: e.member_id })?;
                }
            }
            self.exec("DELETE FROM idempotency WHERE expires_at <= ?", &[now.into()])?;
            let pushes = self.claim_due_pushes(now)?;
            Ok((self.plan_flush(now)?, pushes))
        });
        if r.is_err() {
            // Nothing was handed out: nothing is held.
            self.push_claims.replace(claims_before);
        }
        let (flush, pushes) = r?;
        Ok(AlarmStart { effects, flush, pushes })
    }

    fn plan_flush(&self, now: i64) -> Result<Option<FlushBatch>, ApiError> {
        let Some(meta) = self.meta()? else { return Ok(None) };
        #[derive(Deserialize)]
        struct Pass {
            cursor: Option<String>,
            reconcile: i64,
        }
        let pass = self.query::<Pass>("SELECT cursor, reconcile FROM list_flush WHERE id = 1", &[])?.into_iter().next();
        let (cursor, reconcile) = match pass {
            Some(p) => (p.cursor.unwrap_or_default(), p.reconcile != 0),
            None => {
                if self.flush_due.get().is_some_and(|due| due > now) {
                    // Woken early (a push, typing): the pass starts when it is due.
                    return self.plan_retry(meta, now);
                }
                let dirty =
                    self.scalar("SELECT list_version AS v FROM conversation WHERE list_version > list_flushed", &[])?;
                let reconcile_due =
                    self.scalar("SELECT due_at AS v FROM list_reconcile WHERE due_at <= ?", &[now.into()])?;
                let reconcile = match (dirty, reconcile_due) {
                    (Some(_), _) => false,
                    (None, Some(_)) => true,
                    (None, None) => return self.plan_retry(meta, now),
                };
                if !reconcile {
                    self.flush_due.set(None);
                }
                // This pass serves the stored version: the next message must mark the list again.
                self.cache.list_dirty.set(false);
                self.exec(
                    "INSERT OR REPLACE INTO list_flush (id, pass_version, cursor, reconcile)
                     SELECT 1, list_version, '', ? FROM conversation",
                    &[reconcile.into()],
                )?;
                (String::new(), reconcile)
            }
        };
        #[derive(Deserialize)]
        struct M {
            member_id: String,
            joined_at: i64,
        }
        let rows: Vec<M> = self.query::<M>(
            "SELECT member_id, joined_at FROM members WHERE left_at IS NULL AND member_id > ? ORDER BY member_id LIMIT ?",
            &[cursor.into(), (FLUSH_BATCH as i64).into()],
        )?;
        let repair = reconcile.then(|| Repair {
            sandbox_id: meta.sandbox_id.clone(),
            joined_at: rows.iter().map(|m| m.joined_at).collect(),
        });
        Ok(Some(FlushBatch {
            conversation_id: meta.id,
            title: meta.title,
            last_activity_at: meta.last_activity_at,
            members: rows.into_iter().map(|m| m.member_id).collect(),
            retry: false,
            repair,
        }))
    }

    /// The members of `batch` (a reconcile step, which told them the whole entry) who left since it
    /// was planned: the shell tells each to remove the entry again, so that a reconcile that crossed a
    /// leave never leaves the conversation in the list of someone who left.
    pub fn left_during(&self, batch: &FlushBatch) -> Result<Vec<String>, ApiError> {
        if batch.repair.is_none() || batch.members.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(Deserialize)]
        struct M {
            member_id: String,
        }
        let list = serde_json::to_string(&batch.members).map_err(|e| ApiError::internal(format!("encode: {e}")))?;
        let left: Vec<M> = self.query(
            "SELECT member_id FROM members WHERE left_at IS NOT NULL AND member_id IN (SELECT value FROM json_each(?))
             ORDER BY member_id",
            &[list.into()],
        )?;
        Ok(left.into_iter().map(|m| m.member_id).collect())
    }

    /// No pass step to take: the members whose retry is due, if any.
    fn plan_retry(&self, meta: crate::cache::MetaRow, now: i64) -> Result<Option<FlushBatch>, ApiError> {
        #[derive(Deserialize)]
        struct M {
            member_id: String,
        }
        let members: Vec<String> = self
            .query::<M>(
                "SELECT member_id FROM list_retry WHERE next_at <= ? ORDER BY next_at, member_id LIMIT ?",
                &[now.into(), (FLUSH_BATCH as i64).into()],
            )?
            .into_iter()
            .map(|m| m.member_id)
            .collect();
        if members.is_empty() {
            return Ok(None);
        }
        Ok(Some(FlushBatch {
            conversation_id: meta.id,
            title: meta.title,
            last_activity_at: meta.last_activity_at,
            members,
            retry: true,
            repair: None,
        }))
    }

    /// How one batch went: the members told are caught up (their retries end); each member that
    /// failed is tried again later, backing off, up to [`LIST_RETRY_MAX_ATTEMPTS`] times.
    fn record_batch(&self, batch: &FlushBatch, failed: &[String], now: i64) -> Result<(), ApiError> {
        let told: Vec<&String> = batch.members.iter().filter(|m| !failed.contains(m)).collect();
        if !told.is_empty() {
            let list = serde_json::to_string(&told).map_err(|e| ApiError::internal(format!("encode: {e}")))?;
            self.exec("DELETE FROM list_retry WHERE member_id IN (SELECT value FROM json_each(?))", &[list.into()])?;
        }
        for m in failed {
            let attempts =
                self.scalar("SELECT attempts AS v FROM list_retry WHERE member_id = ?", &[m.into()])?.unwrap_or(0) + 1;
            if attempts > LIST_RETRY_MAX_ATTEMPTS {
                self.exec("DELETE FROM list_retry WHERE member_id = ?", &[m.into()])?;
                continue;
            }
            let wait = switchboard_core::backoff::Backoff::new(LIST_RETRY_BACKOFF).ceiling_ms((attempts - 1) as u32);
            self.exec(
                "INSERT OR REPLACE INTO list_retry (member_id, attempts, next_at) VALUES (?, ?, ?)",
                &[m.into(), attempts.into(), (now + wait as i64).into()],
            )?;
        }
        Ok(())
    }

    /// The second half: `batch` is the planned batch and the members it failed to tell (`None`:
    /// there was none). Answers when the alarm should fire next (`None`: nothing left to do).
    pub fn alarm_finish(&self, now: i64, batch: Option<(&FlushBatch, &[String])>) -> Result<Option<i64>, ApiError> {
        let (r, _) = self.command(|| {
            if let Some((b, failed)) = batch {
                self.record_batch(b, failed, now)?;
            }
            let flush_at = match batch {
                None => None,
                Some((b, _)) if b.retry => None,
                Some((b, _)) => match b.members.last() {
                    Some(last) if b.members.len() == FLUSH_BATCH => {
                        self.exec("UPDATE list_flush SET cursor = ? WHERE id = 1", &[last.into()])?;
                        let members = self.active_roster()?.len();
                        Some(now + alarm::flush_batch_gap_ms(members, FLUSH_BATCH, self.flush_delay_ms()))
                    }
                    _ => {
                        let version = self.scalar("SELECT pass_version AS v FROM list_flush WHERE id = 1", &[])?;
                        self.exec("DELETE FROM list_flush WHERE id = 1", &[])?;
                        if let Some(v) = version {
                            self.exec("UPDATE conversation SET list_flushed = MAX(list_flushed, ?)", &[v.into()])?;
                        }
                        if b.repair.is_some() {
                            // This reconcile is done; the next follows the next activity's flush.
                            self.exec("DELETE FROM list_reconcile WHERE id = 1", &[])?;
                        } else {
                            // A pass that served activity: a reconcile follows (one at a time, never postponed).
                            self.exec(
                                "INSERT OR IGNORE INTO list_reconcile (id, due_at) VALUES (1, ?)",
                                &[(now + self.config.list_reconcile_ms).into()],
                            )?;
                        }
                        let dirty = self.scalar("SELECT list_version > list_flushed AS v FROM conversation", &[])?;
                        (dirty.unwrap_or(0) != 0).then(|| now + self.flush_delay_ms())
                    }
                },
            };
            let retry_at = self.scalar("SELECT MIN(next_at) AS v FROM list_retry", &[])?;
            let flush_at = alarm::next_fire(flush_at, retry_at);
            // A reconcile due waits for a flush that is waiting for its period (it starts after it).
            let reconcile_at = self
                .scalar("SELECT due_at AS v FROM list_reconcile WHERE id = 1", &[])?
                .map(|at| self.flush_due.get().map_or(at, |due| at.max(due)));
            let flush_at = alarm::next_fire(flush_at, reconcile_at);
            // The earliest remaining record, typing state or push, and the flush's next step.
            let earliest = self.scalar("SELECT MIN(expires_at) AS v FROM idempotency", &[])?;
            let typing_end = self.scalar("SELECT MIN(expires_at) AS v FROM typing", &[])?;
            let push_at = self.next_push_at()?;
            let flush_at = alarm::next_fire(flush_at, self.flush_due.get());
            Ok(alarm::next_fire(alarm::next_fire(alarm::next_fire(earliest, typing_end), push_at), flush_at))
        });
        r
    }
}
