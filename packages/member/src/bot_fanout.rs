//! Telling everyone of a bot's new status, in bounded steps from the bot's member object's alarm.
//!
//! A status change must reach the live channel of each of the bot's conversations (going offline
//! ends their streams) and, as `bot.status` on their instance context, every person who shares a
//! conversation with the bot. A bot may have thousands of conversations and each up to
//! `MAX_MEMBERS` people, more calls than one request or alarm run may make, so the change starts a
//! *fan-out* (stored: `bot_fanout`) that the alarm carries out one step at a time, each step at
//! most [`FANOUT_CONVERSATIONS`] conversations (their live channel, their members read) or
//! [`FANOUT_PEOPLE`] people (told), until all are done. People are gathered in `bot_fanout_people`
//! (each once, however many conversations they share with the bot). A newer status replaces the
//! fan-out in progress: it starts again from the first conversation, and everyone is told the
//! newer one. A call that fails is logged by the shell and not repeated (at most once, as a
//! notification of a status that the next report replaces anyway).

use crate::store::Store;
use crate::{Member, Outcome};
use serde::Deserialize;
use switchboard_core::ApiError;

/// Conversations one step tells (their live channel) and reads (their members).
pub const FANOUT_CONVERSATIONS: usize = 10;
/// People one step tells `bot.status`.
pub const FANOUT_PEOPLE: usize = 50;

/// What the shell carries out in one step of a fan-out of the status `online` as of `at`.
#[derive(Debug, Clone, PartialEq)]
pub enum FanoutStep {
    /// Tell these conversations' live channels (when going offline) and read their members; report
    /// with [`Member::bot_fanout_read`].
    Conversations { sandbox_id: String, online: bool, at: i64, ids: Vec<String> },
    /// Tell these people `bot.status`; report with [`Member::bot_fanout_told`].
    People { sandbox_id: String, online: bool, at: i64, ids: Vec<String> },
}

#[derive(Deserialize)]
struct Job {
    sandbox_id: String,
    online: i64,
    at: i64,
    cursor: Option<String>,
}

impl<S: Store> Member<S> {
    /// Starts the fan-out of a status just recorded (replacing one in progress); the alarm runs it.
    /// A bot in no conversation has nobody to tell.
    pub(crate) fn start_bot_fanout(&self, online: bool, at: i64, now: i64) -> Result<(), ApiError> {
        self.exec("DELETE FROM bot_fanout_people", &[])?;
        // Every conversation of a bot (`bot:kiloclaw:{sandboxId}`) is of its sandbox.
        let started = self.exec(
            "INSERT OR REPLACE INTO bot_fanout (id, sandbox_id, online, at, cursor)
             SELECT 1, sandbox_id, ?, ?, '' FROM conversations LIMIT 1",
            &[online.into(), at.into()],
        )?;
        if started == 0 {
            self.exec("DELETE FROM bot_fanout", &[])?;
        } else {
            self.pending.borrow_mut().alarm_by(now);
        }
        Ok(())
    }

    /// The next step of the fan-out in progress, if any: conversations first, then people.
    pub fn bot_fanout_next(&self) -> Result<Option<FanoutStep>, ApiError> {
        let Some(job) = self.bot_fanout_job()? else { return Ok(None) };
        let online = job.online != 0;
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let ids = |rows: Vec<Id>| rows.into_iter().map(|r| r.id).collect::<Vec<String>>();
        if let Some(cursor) = job.cursor {
            let rows = self.query::<Id>(
                "SELECT conversation_id AS id FROM conversations WHERE conversation_id > ? ORDER BY conversation_id LIMIT ?",
                &[cursor.into(), (FANOUT_CONVERSATIONS as i64).into()],
            )?;
            if !rows.is_empty() {
                let sandbox_id = job.sandbox_id.clone();
                return Ok(Some(FanoutStep::Conversations { sandbox_id, online, at: job.at, ids: ids(rows) }));
            }
        }
        let rows = self.query::<Id>(
            "SELECT member_id AS id FROM bot_fanout_people WHERE told = 0 ORDER BY member_id LIMIT ?",
            &[(FANOUT_PEOPLE as i64).into()],
        )?;
        Ok((!rows.is_empty()).then(|| FanoutStep::People {
            sandbox_id: job.sandbox_id,
            online,
            at: job.at,
            ids: ids(rows),
        }))
    }

    /// A conversations step of the fan-out of `at` is done: `people` are their members (to be told,
    /// each once). The next step is due at once. Nothing happens when a newer status replaced it.
    pub fn bot_fanout_read(&self, at: i64, ids: &[String], people: &[String], now: i64) -> Outcome<()> {
        self.command(|| {
            if !self.bot_fanout_job()?.is_some_and(|j| j.at == at && j.cursor.is_some()) {
                return Ok(());
            }
            for p in people {
                self.exec("INSERT OR IGNORE INTO bot_fanout_people (member_id, told) VALUES (?, 0)", &[p.into()])?;
            }
            // Fewer than a step's worth: the conversations are all read (NULL cursor).
            let cursor = ids.last().filter(|_| ids.len() == FANOUT_CONVERSATIONS).cloned();
            self.exec("UPDATE bot_fanout SET cursor = ? WHERE id = 1", &[cursor.into()])?;
            self.pending.borrow_mut().alarm_by(now);
            Ok(())
        })
    }

    /// A people step of the fan-out of `at` is done. The next step is due at once; after the last,
    /// the fan-out is over. Nothing happens when a newer status replaced it.
    pub fn bot_fanout_told(&self, at: i64, ids: &[String], now: i64) -> Outcome<()> {
        self.command(|| {
            let Some(job) = self.bot_fanout_job()?.filter(|j| j.at == at) else { return Ok(()) };
            for p in ids {
                self.exec("UPDATE bot_fanout_people SET told = 1 WHERE member_id = ?", &[p.into()])?;
            }
            let left = self.scalar("SELECT COUNT(*) AS v FROM bot_fanout_people WHERE told = 0", &[])?.unwrap_or(0);
            if left == 0 && job.cursor.is_none() {
                self.exec("DELETE FROM bot_fanout", &[])?;
                self.exec("DELETE FROM bot_fanout_people", &[])?;
            } else {
                self.pending.borrow_mut().alarm_by(now);
            }
            Ok(())
        })
    }

    fn bot_fanout_job(&self) -> Result<Option<Job>, ApiError> {
        if !self.exists()? {
            return Ok(None);
        }
        Ok(self
            .query::<Job>("SELECT sandbox_id, online, at, cursor FROM bot_fanout WHERE id = 1", &[])?
            .into_iter()
            .next())
    }
}
