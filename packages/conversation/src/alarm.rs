//! The one alarm: typing that timed out, expired idempotency records, and the flush of new
//! activity and titles to members' conversation lists.
//!
//! A run has two halves around the calls to members' objects, which the shell makes:
//! [`Conversation::alarm_start`] ends typing, sweeps records and plans the next batch of the list
//! flush; [`Conversation::alarm_finish`] records how that batch went and answers when the alarm
//! should fire next. A pass starts when the list is dirty (`list_version > list_flushed`),
//! remembers the version it serves, walks the members in id order [`FLUSH_BATCH`] at a time (the
//! cursor is stored, so hibernation loses nothing), and when it reaches the end marks that
//! version flushed. A batch that failed is tried again later.

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
/// After a failed batch, wait this many flush periods (at least 1 s each) before trying again.
pub const FLUSH_RETRY_PERIODS: i64 = 5;

/// One batch of the list flush: tell these members the conversation's title and activity.
#[derive(Debug, Clone, PartialEq)]
pub struct FlushBatch {
    pub conversation_id: String,
    pub title: Option<String>,
    pub last_activity_at: Option<i64>,
    pub members: Vec<String>,
}

/// The first half of an alarm run.
#[derive(Debug, Default)]
pub struct AlarmStart {
    pub effects: Effects,
    pub flush: Option<FlushBatch>,
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
            self.plan_flush()
        });
        Ok(AlarmStart { effects, flush: r? })
    }

    fn plan_flush(&self) -> Result<Option<FlushBatch>, ApiError> {
        let Some(meta) = self.meta()? else { return Ok(None) };
        #[derive(Deserialize)]
        struct Pass {
            cursor: Option<String>,
        }
        let cursor = match self.query::<Pass>("SELECT cursor FROM list_flush WHERE id = 1", &[])?.into_iter().next() {
            Some(p) => p.cursor.unwrap_or_default(),
            None => {
                let dirty =
                    self.scalar("SELECT list_version AS v FROM conversation WHERE list_version > list_flushed", &[])?;
                match dirty {
                    Some(v) => {
                        self.exec(
                            "INSERT OR REPLACE INTO list_flush (id, pass_version, cursor) VALUES (1, ?, '')",
                            &[v.into()],
                        )?;
                        String::new()
                    }
                    None => return Ok(None),
                }
            }
        };
        #[derive(Deserialize)]
        struct M {
            member_id: String,
        }
        let members: Vec<String> = self
            .query::<M>(
                "SELECT member_id FROM members WHERE left_at IS NULL AND member_id > ? ORDER BY member_id LIMIT ?",
                &[cursor.into(), (FLUSH_BATCH as i64).into()],
            )?
            .into_iter()
            .map(|m| m.member_id)
            .collect();
        Ok(Some(FlushBatch {
            conversation_id: meta.id,
            title: meta.title,
            last_activity_at: meta.last_activity_at,
            members,
        }))
    }

    /// The second half: `flushed` is how the planned batch went (`None`: there was none). Answers
    /// when the alarm should fire next (`None`: nothing left to do).
    pub fn alarm_finish(&self, now: i64, batch: Option<(&FlushBatch, bool)>) -> Result<Option<i64>, ApiError> {
        let (r, _) = self.command(|| {
            let flush_at = match batch {
                None => None,
                Some((_, false)) => Some(now + self.flush_delay_ms().max(1000) * FLUSH_RETRY_PERIODS),
                Some((b, true)) => match b.members.last() {
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
                        let dirty = self.scalar("SELECT list_version > list_flushed AS v FROM conversation", &[])?;
                        (dirty.unwrap_or(0) != 0).then(|| now + self.flush_delay_ms())
                    }
                },
            };
            // The earliest remaining record or typing state, and the flush's next step.
            let earliest = self.scalar("SELECT MIN(expires_at) AS v FROM idempotency", &[])?;
            let typing_end = self.scalar("SELECT MIN(expires_at) AS v FROM typing", &[])?;
            Ok(alarm::next_fire(alarm::next_fire(earliest, typing_end), flush_at))
        });
        r
    }
}
