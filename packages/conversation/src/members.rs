//! Who is in the conversation: create, detail, rename, add a member, leave, remove a member.
//!
//! Rights: any human member renames and adds people (the bot does neither: 403); the creator is
//! the conversation's owner and may remove anyone but the bot; anyone may remove themself (leave);
//! the bot can be neither removed nor leave. Every member sees who added whom (`addedBy`)
//! and how far each member has read (`lastReadMessageId`, the read receipts).

use crate::cache::MetaRow;
use crate::commands::AddMemberAnswer;
use crate::effects::Effects;
use crate::store::Store;
use crate::{Conversation, Reply};
use serde::Deserialize;
use serde_json::json;
use switchboard_core::events::Event;
use switchboard_core::limits::{close, MAX_MEMBERS};
use switchboard_core::model::{ConversationDetail, ConversationListItem, MemberInfo};
use switchboard_core::{validate, ApiError, MemberId};

#[derive(Debug, Deserialize)]
pub(crate) struct MemberRow {
    pub member_id: String,
    pub kind: String,
    pub joined_at: i64,
    pub added_by: Option<String>,
    #[serde(default)]
    pub last_read_message_id: Option<String>,
    #[serde(default)]
    pub last_read_at: Option<i64>,
}

/// The member role of a conversation's creator.
pub const OWNER: &str = "owner";

fn is_bot(member: &str) -> bool {
    MemberId::parse(member).map(|m| m.is_bot()).unwrap_or(false)
}

type Outcome = (Result<Reply, ApiError>, Effects);

impl<S: Store> Conversation<S> {
    pub(crate) fn create(
        &self,
        id: &str,
        sandbox_id: &str,
        title: Option<String>,
        creator: &str,
        humans: &[String],
        now: i64,
    ) -> Outcome {
        self.command(|| {
            if self.meta()?.is_some() {
                return Err(ApiError::internal("conversation id collision"));
            }
            self.forget_roster();
            let bot = MemberId::bot(sandbox_id)?.to_string();
            self.exec(
                "INSERT INTO conversation (id, sandbox_id, title, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
                &[id.into(), sandbox_id.into(), title.clone().into(), creator.into(), now.into()],
            )?;
            self.exec(
                "INSERT INTO members (member_id, kind, joined_at, added_by) VALUES (?, 'bot', ?, ?)",
                &[bot.into(), now.into(), creator.into()],
            )?;
            for m in humans {
                let added_by: Option<&str> = (m != creator).then_some(creator);
                self.exec(
                    "INSERT OR IGNORE INTO members (member_id, kind, joined_at, added_by) VALUES (?, 'user', ?, ?)",
                    &[m.into(), now.into(), added_by.map(str::to_string).into()],
                )?;
            }
            // The worker adds the entry to each member's list; one that fails is added back by the
            // background reconcile, due once after creation as after activity (`alarm`), so a
            // conversation nobody writes in reaches every list too.
            let reconcile_at = now + self.config.list_reconcile_ms;
            self.exec("INSERT OR IGNORE INTO list_reconcile (id, due_at) VALUES (1, ?)", &[reconcile_at.into()])?;
            self.pending.borrow_mut().alarm_by(reconcile_at);
            Ok(Reply::json(201, json!({"createdAt": now})))
        })
    }

    pub(crate) fn detail(&self, caller: &str) -> Result<Reply, ApiError> {
        let meta = self.require_member(caller)?;
        Ok(Reply::json(200, to_value(&self.detail_of(&meta)?)?))
    }

    pub(crate) fn detail_of(&self, meta: &MetaRow) -> Result<ConversationDetail, ApiError> {
        let members: Vec<MemberRow> = self.query(
            "SELECT m.member_id, m.kind, m.joined_at, m.added_by, r.last_read_message_id, r.last_read_at
               FROM members m LEFT JOIN read_state r ON r.member_id = m.member_id
              WHERE m.left_at IS NULL ORDER BY m.joined_at, m.member_id",
            &[],
        )?;
        Ok(ConversationDetail {
            id: meta.id.clone(),
            title: meta.title.clone(),
            sandbox_id: meta.sandbox_id.clone(),
            created_by: meta.created_by.clone(),
            created_at: meta.created_at,
            members: members
                .into_iter()
                .map(|m| MemberInfo {
                    role: (m.member_id == meta.created_by).then(|| OWNER.to_string()),
                    id: m.member_id,
                    kind: m.kind,
                    joined_at: m.joined_at,
                    added_by: m.added_by,
                    last_read_message_id: m.last_read_message_id,
                    last_read_at: m.last_read_at,
                })
                .collect(),
        })
    }

    pub(crate) fn rename(&self, caller: &str, title: &str, now: i64) -> Outcome {
        self.command(|| {
            let meta = self.require_member(caller)?;
            if is_bot(caller) {
                return Err(ApiError::forbidden("the conversation's bot cannot rename it; its members can"));
            }
            let title = validate::title(title)?;
            if meta.title.as_deref() != Some(title.as_str()) {
                self.exec(
                    "UPDATE conversation SET title = ?, title_message_id = NULL, list_version = list_version + 1",
                    &[title.as_str().into()],
                )?;
                self.emit(Event::ConversationRenamed { conversation_id: meta.id.clone(), title: Some(title.clone()) })?;
                self.list_changed(now)?;
            }
            Ok(Reply::json(200, json!({"id": meta.id, "title": title})))
        })
    }

    /// A person adds a person. The answer's `listItem` is for the worker (it updates the new
    /// member's list) and is removed before the client sees the answer.
    pub(crate) fn add_member(&self, caller: &str, member: &str, now: i64) -> Outcome {
        self.command(|| {
            let meta = self.require_member(caller)?;
            if is_bot(caller) {
                return Err(ApiError::forbidden("only people add members; the conversation's bot cannot"));
            }
            let new = MemberId::user(member)?.to_string();
            self.rate_limit(crate::limits::Action::AddMember, caller, now)?;
            let roster = self.active_roster()?;
            let existing = roster.contains_key(&new);
            if !existing {
                if roster.len() >= MAX_MEMBERS {
                    return Err(ApiError::invalid(format!("a conversation has at most {MAX_MEMBERS} members")));
                }
                self.forget_roster();
                self.exec(
                    "INSERT INTO members (member_id, kind, joined_at, left_at, added_by) VALUES (?, 'user', ?, NULL, ?)
                     ON CONFLICT (member_id) DO UPDATE SET joined_at = excluded.joined_at, left_at = NULL,
                       added_by = excluded.added_by",
                    &[new.as_str().into(), now.into(), caller.into()],
                )?;
                self.emit(Event::MemberJoined {
                    conversation_id: meta.id.clone(),
                    member_id: new.clone(),
                    added_by: caller.to_string(),
                })?;
            }
            let detail = self.detail_of(&meta)?;
            let joined_at = detail.members.iter().find(|m| m.id == new).map(|m| m.joined_at).unwrap_or(0);
            let item = ConversationListItem {
                conversation_id: meta.id.clone(),
                title: meta.title.clone(),
                sandbox_id: meta.sandbox_id.clone(),
                last_activity_at: meta.last_activity_at,
                last_read_at: None,
                joined_at,
            };
            let answer = AddMemberAnswer { members: detail.members, list_item: item };
            Ok(Reply::json(if existing { 200 } else { 201 }, to_value(&answer)?))
        })
    }

    /// The caller leaves: their sockets here close with 4003, their hub stops watching, and their
    /// presence (if any) ends. The bot cannot leave.
    pub(crate) fn leave(&self, caller: &str, now: i64) -> Outcome {
        self.command(|| {
            let meta = self.require_member(caller)?;
            if is_bot(caller) {
                return Err(ApiError::forbidden("the conversation's bot cannot leave it"));
            }
            self.end_membership(&meta, caller, None, now)?;
            Ok(Reply::no_content())
        })
    }

    /// `DELETE /v1/conversations/:id/members/:userId`: the owner (the creator) removes anyone but
    /// the bot; anyone removes themself (as leaving does). The removed member's sockets here close
    /// with 4003 and the worker ends their other channels (hub, live, Pusher). The owner removing a
    /// member who is already out answers 204 again with nothing recorded, so that a removal retried
    /// after the worker failed to end those channels converges (the worker ends them again).
    pub(crate) fn remove_member(&self, caller: &str, member: &str, now: i64) -> Outcome {
        self.command(|| {
            let meta = self.require_member(caller)?;
            if !self.active_roster()?.contains_key(member) {
                let former = self
                    .scalar("SELECT 1 AS v FROM members WHERE member_id = ? AND left_at IS NOT NULL", &[member.into()])?
                    .is_some();
                if former && caller == meta.created_by {
                    return Ok(Reply::no_content());
                }
                return Err(ApiError::not_found(format!("{member} is not a member of this conversation")));
            }
            if is_bot(member) {
                return Err(ApiError::forbidden("the conversation's bot cannot be removed"));
            }
            let removed_by = if member == caller {
                None
            } else if caller == meta.created_by {
                Some(caller)
            } else {
                return Err(ApiError::forbidden(
                    "only the conversation's owner (its creator) removes others; anyone may remove themself",
                ));
            };
            self.end_membership(&meta, member, removed_by, now)?;
            Ok(Reply::no_content())
        })
    }

    /// `member` is no longer in the conversation: recorded, announced, their sockets here closed.
    fn end_membership(&self, meta: &MetaRow, member: &str, removed_by: Option<&str>, now: i64) -> Result<(), ApiError> {
        let was_present =
            self.scalar("SELECT present AS v FROM watchers WHERE member_id = ?", &[member.into()])?.unwrap_or(0) != 0;
        self.forget_roster();
        self.cache.watchers.replace(None);
        self.exec("UPDATE members SET left_at = ? WHERE member_id = ?", &[now.into(), member.into()])?;
        self.exec("DELETE FROM watchers WHERE member_id = ?", &[member.into()])?;
        // Others saw them typing: they see it end (the alarm will not, the row is gone).
        let typing_until = self.scalar("SELECT expires_at AS v FROM typing WHERE member_id = ?", &[member.into()])?;
        if typing_until.is_some() {
            self.exec("DELETE FROM typing WHERE member_id = ?", &[member.into()])?;
            if typing_until.is_some_and(|until| until > now) {
                self.emit_ephemeral(Event::TypingStop { member_id: member.to_string() })?;
            }
        }
        self.emit(Event::MemberLeft {
            conversation_id: meta.id.clone(),
            member_id: member.to_string(),
            removed_by: removed_by.map(str::to_string),
        })?;
        if was_present {
            self.emit(Event::PresenceLeft { member_id: member.to_string() })?;
        }
        let reason = if removed_by.is_some() { "removed from the conversation" } else { "left the conversation" };
        self.pending.borrow_mut().close_member.push((member.to_string(), close::MEMBERSHIP_ENDED, reason));
        self.connected.borrow_mut().gone(member);
        Ok(())
    }

    /// The conversation's list entry changed (title or activity): members' lists learn of it
    /// through the alarm's flush, no later than one flush period from now.
    pub(crate) fn list_changed(&self, now: i64) -> Result<(), ApiError> {
        let at = now + self.flush_delay_ms();
        self.flush_due.set(Some(self.flush_due.get().map_or(at, |due| due.min(at))));
        self.pending.borrow_mut().alarm_by(at);
        Ok(())
    }
}

pub(crate) fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(format!("encode: {e}")))
}
