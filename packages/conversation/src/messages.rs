//! Messages: the one send path, edits, deletes, the message list, reactions, read positions.

use crate::cache::MetaRow;
use crate::commands::MarkReadAnswer;
use crate::effects::Effects;
use crate::limits::Action;
use crate::store::Store;
use crate::{Conversation, Ctx, Reply};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::content::{self, Block};
use switchboard_core::events::Event;
use switchboard_core::idempotency::{self, IdemRecord, SendDecision};
use switchboard_core::ids::{self, MonotonicUlids};
use switchboard_core::limits::{AUTO_TITLE_CHARS, MAX_PAGE_BYTES};

/// Messages looked at, oldest first, for a new auto-title when the old one's message is deleted.
const RETITLE_CANDIDATES: usize = 20;
use switchboard_core::model::{Message, ReactionSummary};
use switchboard_core::{reactions, validate, ApiError, ErrorCode};

#[derive(Debug, Deserialize)]
pub(crate) struct MessageRow {
    pub id: String,
    pub sender_id: String,
    pub content: String,
    pub in_reply_to: Option<String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    pub client_updated_at: Option<i64>,
    pub deleted: i64,
    pub delivery_failed: i64,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReactionRow {
    message_id: String,
    emoji: String,
    member_id: String,
}

/// A message that [`Conversation::send`] created or found again.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message: Message,
    pub client_id: Option<String>,
    /// The `clientId` was seen before: this is the original message, nothing was written.
    pub duplicate: bool,
    /// The conversation as the message left it (its title may have just been set from it).
    pub meta: MetaRow,
}

impl Sent {
    /// The HTTP answer: 201 for a new message, 200 for a repeat.
    pub fn reply(&self) -> Reply {
        let mut body = json!({"messageId": self.message.id, "message": self.message});
        if let Some(c) = &self.client_id {
            body["clientId"] = Value::String(c.clone());
        }
        if self.duplicate {
            body["duplicate"] = Value::Bool(true);
        }
        Reply::json(if self.duplicate { 200 } else { 201 }, body)
    }
}

pub(crate) type Outcome = (Result<Reply, ApiError>, Effects);

impl<S: Store> Conversation<S> {
    /// The send path, for HTTP and socket sends alike: validate, check the idempotency ledger,
    /// write message + record + activity + event + the push to members who are not looking (the
    /// alarm delivers it: `push`) in one transaction, then ask for the broadcast and the alarm.
    pub fn send(
        &self,
        caller: &str,
        content: &Value,
        in_reply_to: Option<String>,
        client_id: Option<String>,
        ctx: &Ctx,
    ) -> (Result<Sent, ApiError>, Effects) {
        let (sent, mut effects) = self.command(|| {
            let sent = self.send_inner(caller, content, in_reply_to, client_id, ctx)?;
            if !sent.duplicate {
                // Recorded with the message, in the same transaction; the alarm delivers it.
                self.queue_push(&sent.message, ctx.now_ms, ctx.socket_members)?;
            }
            Ok(sent)
        });
        if let Ok(s) = &sent {
            if !s.duplicate {
                if let Err(e) = self.relay_out(&s.message, &mut effects) {
                    effects.to_bridges.clear();
                    let _ = e;
                }
            }
        }
        (sent, effects)
    }

    fn send_inner(
        &self,
        caller: &str,
        content: &Value,
        in_reply_to: Option<String>,
        client_id: Option<String>,
        ctx: &Ctx,
    ) -> Result<Sent, ApiError> {
        let now = ctx.now_ms;
        let mut meta = self.require_member(caller)?;
        self.rate_limit(Action::Send, caller, now)?;
        let blocks = content::parse(content)?;
        let content_json = content::encode(&blocks)?;
        if let Some(c) = &client_id {
            validate::client_id(c)?;
        }
        let reply_sender = match &in_reply_to {
            Some(r) => {
                ids::parse("inReplyToMessageId", r)?;
                match self.find_message(r)? {
                    Some(row) => Some(row.sender_id),
                    None => return Err(ApiError::invalid("inReplyToMessageId: no such message in this conversation")),
                }
            }
            None => None,
        };
        let last = self.last_message_id()?.and_then(|id| ids::parse("id", &id).ok());
        let id = MonotonicUlids::new(last).next(now.max(0) as u64, ctx.random).to_string();
        if let Some(c) = &client_id {
            // One statement on the usual path: the record is written unless a live one exists (an
            // expired one is replaced: `idempotency::decide`); only a repeat reads the record.
            let SendDecision::Create { expires_at } = idempotency::decide(None, now, self.config.idem_ttl_ms) else {
                return Err(ApiError::internal("idempotency: no record must mean create"));
            };
            let claimed = self.exec(
                "INSERT INTO idempotency (sender_id, client_id, message_id, expires_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (sender_id, client_id) DO UPDATE
                   SET message_id = excluded.message_id, expires_at = excluded.expires_at
                   WHERE idempotency.expires_at <= ?",
                &[caller.into(), c.into(), id.as_str().into(), expires_at.into(), now.into()],
            )?;
            if claimed == 0 {
                #[derive(Deserialize)]
                struct Rec {
                    message_id: String,
                    expires_at: i64,
                }
                let found: Option<Rec> = self
                    .query(
                        "SELECT message_id, expires_at FROM idempotency WHERE sender_id = ? AND client_id = ?",
                        &[caller.into(), c.into()],
                    )?
                    .into_iter()
                    .next();
                let found = found.map(|r| IdemRecord { message_id: r.message_id, expires_at: r.expires_at });
                let SendDecision::Replay { message_id } =
                    idempotency::decide(found.as_ref(), now, self.config.idem_ttl_ms)
                else {
                    return Err(ApiError::internal("idempotency: a kept record that is not live"));
                };
                // Messages are never hard-deleted, so the record's message is there.
                let message = self
                    .message(&meta.id, &message_id)?
                    .ok_or_else(|| ApiError::internal("idempotency record without message"))?;
                // A retry repeats its request; the same key with other content is a client bug
                // that must not pass silently for the original. A deleted or edited original is not
                // compared by content (its content is no longer what was sent; a retry from before
                // the edit is still the same request); the reply target cannot change, so it is.
                let content_changed = !message.deleted && message.updated_at.is_none() && message.content != blocks;
                if content_changed || (!message.deleted && message.in_reply_to_message_id != in_reply_to) {
                    return Err(ApiError::new(
                        ErrorCode::IdempotencyConflict,
                        "clientId: already used for a message with other content",
                    ));
                }
                return Ok(Sent { message, client_id, duplicate: true, meta });
            }
        }

        let message = Message {
            id,
            conversation_id: meta.id.clone(),
            sender_id: caller.to_string(),
            content: blocks,
            in_reply_to_message_id: in_reply_to,
            created_at: now,
            updated_at: None,
            client_updated_at: None,
            deleted: false,
            delivery_failed: false,
            reactions: vec![],
            source: None,
        };
        let event = Event::MessageCreated {
            message: message.clone(),
            client_id: client_id.clone(),
            reply_to_sender: reply_sender,
        };
        // The message and its event in one statement (`schema`: the `message_sends` view).
        let (seq, frame) = self.event_frame(&event)?;
        self.exec(
            "INSERT INTO message_sends (id, sender_id, content, in_reply_to, created_at, client_id, seq, frame)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                message.id.as_str().into(),
                caller.into(),
                content_json.into(),
                message.in_reply_to_message_id.clone().into(),
                now.into(),
                client_id.clone().into(),
                (seq as i64).into(),
                frame.as_str().into(),
            ],
        )?;
        self.cache.last_message_id.replace(Some(message.id.clone()));
        self.touch_activity(now)?;
        self.logged(seq, frame, &event)?;
        if meta.title.is_none() {
            let text = content::plain_text(&message.content);
            let title = content::preview(&text, AUTO_TITLE_CHARS);
            if !title.is_empty() {
                self.exec(
                    "UPDATE conversation SET title = ?, title_message_id = ? WHERE title IS NULL",
                    &[title.as_str().into(), message.id.as_str().into()],
                )?;
                self.emit(Event::ConversationRenamed { conversation_id: meta.id.clone(), title: Some(title.clone()) })?;
                meta.title = Some(title);
                meta.title_message_id = Some(message.id.clone());
            }
        }
        self.list_changed(now)?;
        Ok(Sent { message, client_id, duplicate: false, meta })
    }

    pub(crate) fn list_messages(&self, caller: &str, before: Option<&str>, limit: usize) -> Result<Reply, ApiError> {
        let meta = self.require_member(caller)?;
        let fetch = (limit as i64).saturating_add(1);
        let before = before.unwrap_or("\u{10FFFF}");
        // The page's size is measured before its content is read: it holds at most
        // `MAX_PAGE_BYTES` of content (always at least one message), the rest is the next page.
        #[derive(Deserialize)]
        struct Size {
            bytes: i64,
        }
        let sizes: Vec<Size> = self.query(
            "SELECT LENGTH(CAST(content AS BLOB)) AS bytes FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?",
            &[before.into(), fetch.into()],
        )?;
        let mut total = 0usize;
        let fits = sizes
            .iter()
            .take(limit)
            .take_while(|s| {
                total += s.bytes.max(0) as usize;
                total <= MAX_PAGE_BYTES
            })
            .count()
            .max(1)
            .min(sizes.len());
        let has_more = sizes.len() > fits;
        let rows: Vec<MessageRow> = self.query(
            "SELECT * FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?",
            &[before.into(), (fits as i64).into()],
        )?;
        let messages = self.hydrate(&meta.id, &rows)?;
        let next_cursor = if has_more { messages.last().map(|m| m.id.clone()) } else { None };
        Ok(Reply::json(200, json!({"messages": messages, "hasMore": has_more, "nextCursor": next_cursor})))
    }

    pub(crate) fn edit_message(
        &self,
        caller: &str,
        message_id: &str,
        content: &Value,
        timestamp: i64,
        now: i64,
    ) -> Outcome {
        self.command(|| {
            let timestamp = switchboard_core::validate::client_time("timestamp", timestamp, now)?;
            let meta = self.require_member(caller)?;
            self.rate_limit(Action::Edit, caller, now)?;
            let row = self.require_message(message_id)?;
            if row.sender_id != caller {
                return Err(ApiError::forbidden("only the sender may edit a message"));
            }
            if row.deleted != 0 {
                return Err(ApiError::new(ErrorCode::MessageDeleted, "the message was deleted"));
            }
            if let Some(stored) = row.client_updated_at {
                if timestamp < stored {
                    return Err(ApiError::new(
                        ErrorCode::EditConflict,
                        "Edit conflict: the message was edited more recently",
                    ));
                }
            }
            let content_json = content::encode(&content::parse(content)?)?;
            self.exec(
                "UPDATE messages SET content = ?, updated_at = ?, client_updated_at = ? WHERE id = ?",
                &[content_json.into(), now.into(), timestamp.into(), message_id.into()],
            )?;
            let message =
                self.message(&meta.id, message_id)?.ok_or_else(|| ApiError::internal("edited message vanished"))?;
            self.emit(Event::MessageUpdated { message: message.clone() })?;
            if meta.title_message_id.as_deref() == Some(message_id) {
                // An auto-title follows its message's text; the old text must not outlive the edit.
                // It comes from the new text, or, when the edit left none, is taken again.
                let title = content::preview(&content::plain_text(&message.content), AUTO_TITLE_CHARS);
                if title.is_empty() {
                    self.retitle(&meta.id, now)?;
                } else if meta.title.as_deref() != Some(title.as_str()) {
                    self.set_auto_title(&meta.id, Some(title), Some(message_id.to_string()), now)?;
                }
            }
            Ok(Reply::json(200, json!({"messageId": message.id, "message": message})))
        })
    }

    pub(crate) fn delete_message(&self, caller: &str, message_id: &str, now: i64) -> Outcome {
        self.command(|| {
            self.require_member(caller)?;
            self.rate_limit(Action::Edit, caller, now)?;
            let row = self.require_message(message_id)?;
            if row.sender_id != caller {
                return Err(ApiError::forbidden("only the sender may delete a message"));
            }
            if row.deleted == 0 {
                self.soft_delete(message_id, now)?;
            }
            Ok(Reply::no_content())
        })
    }

    /// Moves the caller's read position forward (never back) and tells the members. Answers
    /// whether the caller has now read the newest message (`caughtUp`), so the worker can clear
    /// their badge bucket.
    pub(crate) fn mark_read(&self, caller: &str, message_id: &str, now: i64) -> Outcome {
        self.command(|| {
            let meta = self.require_member(caller)?;
            self.require_message(message_id)?;
            #[derive(Deserialize)]
            struct ReadRow {
                last_read_message_id: String,
                last_read_at: i64,
            }
            let current: Option<ReadRow> = self
                .query(
                    "SELECT last_read_message_id, last_read_at FROM read_state WHERE member_id = ?",
                    &[caller.into()],
                )?
                .into_iter()
                .next();
            let (last_id, last_at) = match current {
                Some(r) if r.last_read_message_id.as_str() >= message_id => (r.last_read_message_id, r.last_read_at),
                _ => {
                    self.exec(
                        "INSERT OR REPLACE INTO read_state (member_id, last_read_message_id, last_read_at) VALUES (?, ?, ?)",
                        &[caller.into(), message_id.into(), now.into()],
                    )?;
                    self.emit(Event::ConversationRead {
                        conversation_id: meta.id.clone(),
                        member_id: caller.to_string(),
                        last_read_at: now,
                        last_read_message_id: message_id.to_string(),
                    })?;
                    (message_id.to_string(), now)
                }
            };
            let caught_up = self.last_message_id()?.map(|newest| newest.as_str() <= last_id.as_str()).unwrap_or(true);
            let answer = MarkReadAnswer {
                conversation_id: meta.id,
                sandbox_id: meta.sandbox_id,
                last_read_at: last_at,
                last_read_message_id: last_id,
                caught_up,
            };
            Ok(Reply::json(200, crate::members::to_value(&answer)?))
        })
    }

    /// Deletes a message's content and reactions (the row stays: ids and replies keep pointing
    /// at it) and tells the members. Nothing happens to a message already deleted.
    pub(crate) fn soft_delete(&self, message_id: &str, now: i64) -> Result<(), ApiError> {
        let written = self.exec(
            "UPDATE messages SET deleted = 1, content = '[]', updated_at = ? WHERE id = ? AND deleted = 0",
            &[now.into(), message_id.into()],
        )?;
        if written > 0 {
            self.exec("DELETE FROM reactions WHERE message_id = ?", &[message_id.into()])?;
            self.emit(Event::MessageDeleted { message_id: message_id.to_string() })?;
            let meta = self.meta()?.ok_or_else(|| ApiError::internal("no conversation row"))?;
            if meta.title_message_id.as_deref() == Some(message_id) {
                self.retitle(&meta.id, now)?;
            }
        }
        Ok(())
    }

    /// The message an auto-title came from was deleted (or edited to no text): the title is taken
    /// again from the oldest member's message left that has text (its text must not outlive it;
    /// bridged messages never title a conversation), or cleared when there is none.
    fn retitle(&self, conversation_id: &str, now: i64) -> Result<(), ApiError> {
        #[derive(Deserialize)]
        struct Candidate {
            id: String,
            content: String,
        }
        let candidates: Vec<Candidate> = self.query(
            "SELECT id, content FROM messages WHERE deleted = 0 AND source IS NULL ORDER BY id LIMIT ?",
            &[(RETITLE_CANDIDATES as i64).into()],
        )?;
        let next = candidates.into_iter().find_map(|c| {
            let blocks: Vec<Block> = serde_json::from_str(&c.content).ok()?;
            let title = content::preview(&content::plain_text(&blocks), AUTO_TITLE_CHARS);
            (!title.is_empty()).then_some((title, c.id))
        });
        let (title, from) = match next {
            Some((t, id)) => (Some(t), Some(id)),
            None => (None, None),
        };
        self.set_auto_title(conversation_id, title, from, now)
    }

    /// Sets the auto-title (taken from message `from`), announced and listed.
    fn set_auto_title(
        &self,
        conversation_id: &str,
        title: Option<String>,
        from: Option<String>,
        now: i64,
    ) -> Result<(), ApiError> {
        self.exec(
            "UPDATE conversation SET title = ?, title_message_id = ?, list_version = list_version + 1",
            &[title.clone().into(), from.into()],
        )?;
        self.emit(Event::ConversationRenamed { conversation_id: conversation_id.to_string(), title })?;
        self.list_changed(now)
    }

    fn find_message(&self, message_id: &str) -> Result<Option<MessageRow>, ApiError> {
        Ok(self.query::<MessageRow>("SELECT * FROM messages WHERE id = ?", &[message_id.into()])?.into_iter().next())
    }

    pub(crate) fn require_message(&self, message_id: &str) -> Result<MessageRow, ApiError> {
        self.find_message(message_id)?.ok_or_else(|| ApiError::not_found("message not found"))
    }

    pub(crate) fn message(&self, conversation_id: &str, message_id: &str) -> Result<Option<Message>, ApiError> {
        let rows: Vec<MessageRow> = self.find_message(message_id)?.into_iter().collect();
        Ok(self.hydrate(conversation_id, &rows)?.into_iter().next())
    }

    pub(crate) fn reactions_of(&self, message_id: &str) -> Result<Vec<ReactionSummary>, ApiError> {
        let rows: Vec<ReactionRow> = self.query(
            "SELECT message_id, emoji, member_id FROM reactions WHERE message_id = ? ORDER BY rowid",
            &[message_id.into()],
        )?;
        Ok(reactions::summarize(rows.iter().map(|r| (r.emoji.as_str(), r.member_id.as_str()))))
    }

    /// Stored rows → client messages, with their reactions (one query for all of them).
    fn hydrate(&self, conversation_id: &str, rows: &[MessageRow]) -> Result<Vec<Message>, ApiError> {
        let mut reaction_rows: Vec<ReactionRow> = Vec::new();
        if !rows.is_empty() {
            let marks = vec!["?"; rows.len()].join(",");
            let q = format!(
                "SELECT message_id, emoji, member_id FROM reactions WHERE message_id IN ({marks}) ORDER BY rowid"
            );
            let args: Vec<crate::Arg> = rows.iter().map(|r| r.id.as_str().into()).collect();
            reaction_rows = self.query(&q, &args)?;
        }
        // Grouped by message once: linear in messages + reactions.
        let mut by_message: std::collections::HashMap<&str, Vec<(&str, &str)>> = std::collections::HashMap::new();
        for x in &reaction_rows {
            by_message.entry(x.message_id.as_str()).or_default().push((x.emoji.as_str(), x.member_id.as_str()));
        }
        rows.iter()
            .map(|r| {
                let content: Vec<Block> =
                    serde_json::from_str(&r.content).map_err(|e| ApiError::internal(format!("stored content: {e}")))?;
                let mine = by_message.remove(r.id.as_str()).unwrap_or_default();
                Ok(Message {
                    id: r.id.clone(),
                    conversation_id: conversation_id.to_string(),
                    sender_id: r.sender_id.clone(),
                    content,
                    in_reply_to_message_id: r.in_reply_to.clone(),
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                    client_updated_at: r.client_updated_at,
                    deleted: r.deleted != 0,
                    delivery_failed: r.delivery_failed != 0,
                    reactions: reactions::summarize(mine),
                    source: r.source.as_deref().and_then(|s| serde_json::from_str(s).ok()),
                })
            })
            .collect()
    }
}
