//! The member's conversation list, ordered by activity (`sort_key`: the last activity, or the join
//! time before any), and the instance events its changes make.
//!
//! Listing reads only this table: it never scans conversations. Activity only moves forward, and a
//! member who left has no row and is not re-added by a late flush.

use crate::events::InstanceEvent;
use crate::store::Store;
use crate::{Ctx, Member, Outcome, Reply};
use serde::Deserialize;
use serde_json::json;
use switchboard_core::cursor::ListCursor;
use switchboard_core::hub::contexts;
use switchboard_core::model::ConversationListItem;
use switchboard_core::ApiError;

/// One row of the list.
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    pub conversation_id: String,
    pub sandbox_id: String,
    pub title: Option<String>,
    pub last_activity_at: Option<i64>,
    pub last_read_at: Option<i64>,
    pub joined_at: i64,
}

const COLUMNS: &str = "conversation_id, sandbox_id, title, last_activity_at, last_read_at, joined_at";

impl<S: Store> Member<S> {
    /// The member joined (`row`; its `last_read_at` is not written), added by `added_by` (`None`:
    /// they created the conversation).
    pub(crate) fn upsert(&self, row: Row, added_by: Option<String>, ctx: &Ctx) -> Outcome {
        let Row { conversation_id, sandbox_id, title, last_activity_at, joined_at, .. } = row;
        let (conversation_id, sandbox_id) = (conversation_id.as_str(), sandbox_id.as_str());
        self.command(|| {
            let existed = self.row(conversation_id)?.is_some();
            let sort_key = last_activity_at.unwrap_or(joined_at).max(joined_at);
            self.exec(
                "INSERT INTO conversations (conversation_id, sandbox_id, title, last_activity_at, joined_at, sort_key)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (conversation_id) DO UPDATE SET title = excluded.title,
                   last_activity_at = excluded.last_activity_at, joined_at = excluded.joined_at, sort_key = excluded.sort_key",
                &[
                    conversation_id.into(),
                    sandbox_id.into(),
                    title.clone().into(),
                    last_activity_at.into(),
                    joined_at.into(),
                    sort_key.into(),
                ],
            )?;
            if !existed {
                let event = InstanceEvent::ConversationCreated {
                    conversation_id: conversation_id.to_string(),
                    title: title.clone(),
                    sandbox_id: sandbox_id.to_string(),
                    added_by: added_by.clone(),
                };
                self.announce(ctx, sandbox_id, &event)?;
            }
            Ok(Reply::no_content())
        })
    }

    /// The member left: the row goes, `conversation.left` goes out, and no session of the member
    /// follows the conversation any more.
    pub(crate) fn remove(&self, conversation_id: &str, removed_by: Option<String>, ctx: &Ctx) -> Outcome {
        self.command(|| {
            let row = self.row(conversation_id)?;
            self.exec("DELETE FROM conversations WHERE conversation_id = ?", &[conversation_id.into()])?;
            if let Some(r) = row {
                let event = InstanceEvent::ConversationLeft {
                    conversation_id: conversation_id.to_string(),
                    removed_by: removed_by.clone(),
                };
                self.announce(ctx, &r.sandbox_id, &event)?;
                self.forget_conversation(ctx, &r.sandbox_id, conversation_id)?;
            }
            Ok(Reply::no_content())
        })
    }

    /// A conversation's flush: its title, and activity that only moves forward. With `repair` (the
    /// conversation's background reconcile, which tells only its members) an entry the member lacks
    /// is added back, announced as `conversation.created`.
    pub(crate) fn touch(
        &self,
        conversation_id: &str,
        title: Option<String>,
        last_activity_at: Option<i64>,
        repair: Option<crate::ListRepair>,
        ctx: &Ctx,
    ) -> Outcome {
        let missing = || match self.exists() {
            Ok(true) => matches!(self.row(conversation_id), Ok(None)),
            Ok(false) => true,
            Err(_) => false,
        };
        if let Some(r) = repair.filter(|_| missing()) {
            let row = Row {
                conversation_id: conversation_id.to_string(),
                sandbox_id: r.sandbox_id,
                title,
                last_activity_at,
                last_read_at: None,
                joined_at: r.joined_at,
            };
            return self.upsert(row, None, ctx);
        }
        self.command(|| {
            let before = self.row(conversation_id)?;
            self.exec(
                "UPDATE conversations SET title = ?1,
                   last_activity_at = CASE WHEN ?2 IS NULL THEN last_activity_at
                                           ELSE MAX(COALESCE(last_activity_at, ?2), ?2) END,
                   sort_key = MAX(sort_key, COALESCE(?2, sort_key))
                 WHERE conversation_id = ?3",
                &[title.clone().into(), last_activity_at.into(), conversation_id.into()],
            )?;
            let Some(b) = before else { return Ok(Reply::no_content()) };
            if let Some(t) = title.filter(|t| b.title.as_ref() != Some(t)) {
                let event =
                    InstanceEvent::ConversationRenamed { conversation_id: conversation_id.to_string(), title: t };
                self.announce(ctx, &b.sandbox_id, &event)?;
            }
            if let Some(at) = last_activity_at.filter(|at| b.last_activity_at.is_none_or(|x| *at > x)) {
                let event = InstanceEvent::ConversationActivity {
                    conversation_id: conversation_id.to_string(),
                    last_activity_at: at,
                };
                self.announce(ctx, &b.sandbox_id, &event)?;
            }
            Ok(Reply::no_content())
        })
    }

    /// The read position only moves forward; every mark-read is announced to the user's devices.
    pub(crate) fn mark_read(&self, conversation_id: &str, member_id: &str, last_read_at: i64, ctx: &Ctx) -> Outcome {
        self.command(|| {
            self.exec(
                "UPDATE conversations SET last_read_at = MAX(COALESCE(last_read_at, 0), ?1) WHERE conversation_id = ?2",
                &[last_read_at.into(), conversation_id.into()],
            )?;
            if let Some(r) = self.row(conversation_id)? {
                let event = InstanceEvent::ConversationRead {
                    conversation_id: conversation_id.to_string(),
                    member_id: member_id.to_string(),
                    last_read_at,
                };
                self.announce(ctx, &r.sandbox_id, &event)?;
            }
            Ok(Reply::no_content())
        })
    }

    /// One page, newest activity first: `{conversations, hasMore, nextCursor}`.
    pub(crate) fn list(&self, sandbox_id: Option<&str>, limit: usize, cursor: Option<&str>) -> Result<Reply, ApiError> {
        let cursor = cursor.map(ListCursor::decode).transpose()?;
        if !self.exists()? {
            return Ok(Reply::json(200, json!({"conversations": [], "hasMore": false, "nextCursor": null})));
        }
        let (key, id) = match &cursor {
            Some(c) => (c.sort_key, c.conversation_id.clone()),
            // No cursor: the bound is not used (`?2 = 0`).
            None => (0, String::new()),
        };
        let rows: Vec<Row> = self.query(
            &format!(
                "SELECT {COLUMNS} FROM conversations
                 WHERE (?1 IS NULL OR sandbox_id = ?1)
                   AND (?2 = 0 OR sort_key < ?3 OR (sort_key = ?3 AND conversation_id < ?4))
                 ORDER BY sort_key DESC, conversation_id DESC LIMIT ?5"
            ),
            &[
                sandbox_id.into(),
                cursor.is_some().into(),
                key.into(),
                id.into(),
                (limit.saturating_add(1).min(i64::MAX as usize) as i64).into(),
            ],
        )?;
        let has_more = rows.len() > limit;
        let items: Vec<ConversationListItem> = rows
            .into_iter()
            .take(limit)
            .map(|r| ConversationListItem {
                conversation_id: r.conversation_id,
                title: r.title,
                sandbox_id: r.sandbox_id,
                last_activity_at: r.last_activity_at,
                last_read_at: r.last_read_at,
                joined_at: r.joined_at,
            })
            .collect();
        let next_cursor = if has_more {
            items
                .last()
                .map(|i| ListCursor { sort_key: i.sort_key(), conversation_id: i.conversation_id.clone() }.encode())
        } else {
            None
        };
        Ok(Reply::json(200, json!({"conversations": items, "hasMore": has_more, "nextCursor": next_cursor})))
    }

    pub(crate) fn row(&self, conversation_id: &str) -> Result<Option<Row>, ApiError> {
        Ok(self
            .query::<Row>(
                &format!("SELECT {COLUMNS} FROM conversations WHERE conversation_id = ?"),
                &[conversation_id.into()],
            )?
            .into_iter()
            .next())
    }

    /// Does the member have a conversation with this sandbox?
    pub(crate) fn has_sandbox(&self, sandbox_id: &str) -> Result<bool, ApiError> {
        Ok(self
            .scalar("SELECT 1 AS v FROM conversations WHERE sandbox_id = ? LIMIT 1", &[sandbox_id.into()])?
            .is_some())
    }

    pub(crate) fn has_conversation(&self, sandbox_id: &str, conversation_id: &str) -> Result<bool, ApiError> {
        Ok(matches!(self.row(conversation_id)?, Some(r) if r.sandbox_id == sandbox_id))
    }

    /// Logs and sends an instance event on `sandbox_id`'s instance context.
    fn announce(&self, ctx: &Ctx, sandbox_id: &str, event: &InstanceEvent) -> Result<(), ApiError> {
        self.deliver(ctx, &contexts::instance(sandbox_id), event.name(), &event.payload(), false)
    }
}
