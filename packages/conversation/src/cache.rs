//! What the send path would otherwise read from SQLite on every message, kept in memory.
//!
//! Each field is `None` until first read, and is dropped (set to `None`) by every command that
//! writes what it mirrors, before it writes: only this object writes its storage, so memory and
//! storage cannot disagree for longer than one synchronous command. A command that fails drops all
//! of it ([`Cache::clear`]): its transaction rolled back writes the cache may already mirror.

use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// The conversation row, with the seq of the newest logged event.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct MetaRow {
    pub id: String,
    pub sandbox_id: String,
    pub title: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    /// The newest of the stored activity time and the newest message's `created_at`: a message
    /// does not write the conversation row ([`Conversation::touch_activity`]).
    pub last_activity_at: Option<i64>,
    pub seq: i64,
    /// The message an auto-title was taken from; `None` when people set the title (or none is set).
    #[serde(default)]
    pub title_message_id: Option<String>,
}

#[derive(Debug, Default)]
pub struct Cache {
    /// Active members: id → is a person (not the bot). Dropped by create, add member and leave.
    pub roster: RefCell<Option<Rc<HashMap<String, bool>>>>,
    /// Members whose hubs watch this conversation. Dropped by watch and leave.
    pub watchers: RefCell<Option<Rc<Vec<String>>>>,
    /// The newest message id (for the next monotonic ULID). Set by each insert.
    pub last_message_id: RefCell<Option<String>>,
    /// The conversation row. Dropped by every write to the row; a send's activity and each
    /// event's seq update it in place.
    pub meta: RefCell<Option<MetaRow>>,
    /// Bridges that relay members' messages out. Dropped by link and unlink.
    pub outbound_bridges: RefCell<Option<Rc<Vec<String>>>>,
    /// The stored `list_version` is known to be above every version a list flush pass has
    /// started serving: a new message needs no write for the members' lists (the pass that serves
    /// that version reads the activity from the newest message). Set by the send that bumps the
    /// version, cleared when a pass starts; unknown (false) after hibernation or a failed command,
    /// which costs one more bump, never a missed flush.
    pub list_dirty: Cell<bool>,
}

impl Cache {
    pub fn clear(&self) {
        self.roster.replace(None);
        self.watchers.replace(None);
        self.last_message_id.replace(None);
        self.meta.replace(None);
        self.outbound_bridges.replace(None);
        self.list_dirty.set(false);
    }
}

use crate::store::{Arg, Store, StoreExt};
use crate::Conversation;
use switchboard_core::ApiError;

/// Whether a statement writes the conversation row (and so invalidates [`Cache::meta`]).
fn writes_conversation_row(query: &str) -> bool {
    query.starts_with("UPDATE conversation ")
        || query.starts_with("INSERT INTO conversation ")
        || query.starts_with("DELETE FROM conversation")
}

impl<S: Store> Conversation<S> {
    /// Runs a write; answers the rows written. Drops the cached row when the statement writes it.
    pub(crate) fn exec(&self, query: &str, args: &[Arg]) -> Result<usize, ApiError> {
        if writes_conversation_row(query) {
            self.cache.meta.replace(None);
        }
        Ok(self.store.run(query, args)?)
    }

    pub(crate) fn query<T: serde::de::DeserializeOwned>(&self, query: &str, args: &[Arg]) -> Result<Vec<T>, ApiError> {
        Ok(self.store.rows(query, args)?)
    }

    pub(crate) fn scalar(&self, query: &str, args: &[Arg]) -> Result<Option<i64>, ApiError> {
        Ok(self.store.scalar(query, args)?)
    }

    /// The conversation row, from memory after the first read.
    pub fn meta(&self) -> Result<Option<MetaRow>, ApiError> {
        if let Some(m) = self.cache.meta.borrow().as_ref() {
            return Ok(Some(m.clone()));
        }
        // The activity of the newest message is not written to the row (`touch_activity`): it is
        // the larger of the row's and that message's time.
        let row = self.store.first::<MetaRow>(
            "SELECT id, sandbox_id, title, created_by, created_at, title_message_id,
               MAX(COALESCE(last_activity_at, (SELECT created_at FROM messages ORDER BY id DESC LIMIT 1)),
                   COALESCE((SELECT created_at FROM messages ORDER BY id DESC LIMIT 1), last_activity_at))
                 AS last_activity_at,
               COALESCE((SELECT MAX(seq) FROM events), 0) AS seq FROM conversation LIMIT 1",
            &[],
        )?;
        if let Some(m) = &row {
            self.cache.meta.replace(Some(m.clone()));
        }
        Ok(row)
    }

    /// The conversation, if `caller` is one of its current members: 404 when it does not exist,
    /// 403 when the caller is not (or no longer) a member.
    pub fn require_member(&self, caller: &str) -> Result<MetaRow, ApiError> {
        let meta = self.meta()?.ok_or_else(|| ApiError::not_found("conversation not found"))?;
        if !self.active_roster()?.contains_key(caller) {
            return Err(ApiError::forbidden("not a member of this conversation"));
        }
        Ok(meta)
    }

    /// Assigns the next event seq: the newest logged event's plus one (`events` is never trimmed
    /// up to its newest row), counted on in the cached row.
    pub(crate) fn next_seq(&self) -> Result<u64, ApiError> {
        if self.cache.meta.borrow().is_none() {
            self.meta()?;
        }
        let mut cached = self.cache.meta.borrow_mut();
        let meta = cached.as_mut().ok_or_else(|| ApiError::internal("no conversation row"))?;
        meta.seq += 1;
        Ok(meta.seq.max(0) as u64)
    }

    /// Records new activity (a message just inserted at `now`) for the members' lists. The time
    /// is not written: it is the newest message's ([`Conversation::meta`]). The row is written
    /// only to mark the list dirty (`list_version`), and not again until a flush pass has started
    /// serving that version ([`Cache::list_dirty`]), so most messages write nothing here.
    pub(crate) fn touch_activity(&self, now: i64) -> Result<(), ApiError> {
        if !self.cache.list_dirty.get() {
            self.store.run("UPDATE conversation SET list_version = list_version + 1", &[])?;
            self.cache.list_dirty.set(true);
        }
        if let Some(m) = self.cache.meta.borrow_mut().as_mut() {
            m.last_activity_at = Some(m.last_activity_at.map_or(now, |at| at.max(now)));
        }
        Ok(())
    }

    /// Members joined or left: the cached roster and who of it is absent are recomputed on next use.
    pub(crate) fn forget_roster(&self) {
        self.cache.roster.replace(None);
        self.connected.borrow_mut().roster_changed();
    }

    /// The newest message's id, from memory after the first read.
    pub(crate) fn last_message_id(&self) -> Result<Option<String>, ApiError> {
        if let Some(id) = self.cache.last_message_id.borrow().as_ref() {
            return Ok(Some(id.clone()));
        }
        #[derive(Deserialize)]
        struct LastId {
            id: String,
        }
        let last = self.store.first::<LastId>("SELECT id FROM messages ORDER BY id DESC LIMIT 1", &[])?.map(|r| r.id);
        self.cache.last_message_id.replace(last.clone());
        Ok(last)
    }

    /// Active members (id → is a person), from memory after the first read.
    pub fn active_roster(&self) -> Result<Rc<HashMap<String, bool>>, ApiError> {
        if let Some(r) = self.cache.roster.borrow().as_ref() {
            return Ok(r.clone());
        }
        #[derive(Deserialize)]
        struct R {
            member_id: String,
            kind: String,
        }
        let rows: Vec<R> = self.query("SELECT member_id, kind FROM members WHERE left_at IS NULL", &[])?;
        let roster: Rc<HashMap<String, bool>> =
            Rc::new(rows.into_iter().map(|r| (r.member_id, r.kind == "user")).collect());
        self.cache.roster.replace(Some(roster.clone()));
        Ok(roster)
    }

    /// Members whose hubs watch this conversation, from memory after the first read.
    pub fn watcher_ids(&self) -> Result<Rc<Vec<String>>, ApiError> {
        if let Some(w) = self.cache.watchers.borrow().as_ref() {
            return Ok(w.clone());
        }
        #[derive(Deserialize)]
        struct W {
            member_id: String,
        }
        let ids: Rc<Vec<String>> = Rc::new(
            self.query::<W>("SELECT member_id FROM watchers ORDER BY member_id", &[])?
                .into_iter()
                .map(|w| w.member_id)
                .collect(),
        );
        self.cache.watchers.replace(Some(ids.clone()));
        Ok(ids)
    }
}
