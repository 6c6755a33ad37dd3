//! Who is in the conversation: create, detail, rename, add a member, leave.

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
                "INSERT INTO members (member_id, kind, joined_at) VALUES (?, 'bot', ?)",
                &[bot.into(), now.into()],
            )?;
            for m in humans {
                self.exec(
                    "INSERT OR IGNORE INTO members (member_id, kind, joined_at) VALUES (?, 'user', ?)",
                    &[m.into(), now.into()],
                )?;
            }
            Ok(Reply::json(201, json!({"createdAt": now})))
        })
    }

    pub(crate) fn detail(&self, caller: &str) -> Result<Reply, ApiError> {
        let meta = self.require_member(caller)?;
        Ok(Reply::json(200, to_value(&self.detail_of(&meta)?)?))
    }

    pub(crate) fn detail_of(&self, meta: &MetaRow) -> Result<ConversationDetail, ApiError> {
        let members: Vec<MemberRow> = self.query(
            "SELECT member_id, kind, joined_at FROM members WHERE left_at IS NULL ORDER BY joined_at, member_id",
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
                .map(|m| MemberInfo { id: m.member_id, kind: m.kind, joined_at: m.joined_at })
                .collect(),
        })
    }

    pub(crate) fn rename(&self, caller: &str, title: &str, now: i64) -> Outcome {
        self.command(|| {
            let meta = self.require_member(caller)?;
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

    /// Adds a person. The answer's `listItem` is for the worker (it updates the new member's list)
    /// and is removed before the client sees the answer.
    pub(crate) fn add_member(&self, caller: &str, member: &str, now: i64) -> Outcome {
        self.command(|| {
            let meta = self.require_member(caller)?;
            let new = MemberId::user(member)?.to_string();
            let roster = self.active_roster()?;
            let existing = roster.contains_key(&new);
            if !existing {
                if roster.len() >= MAX_MEMBERS {
                    return Err(ApiError::invalid(format!("a conversation has at most {MAX_MEMBERS} members")));
                }
                self.forget_roster();
                self.exec(
                    "INSERT INTO members (member_id, kind, joined_at, left_at) VALUES (?, 'user', ?, NULL)
                     ON CONFLICT (member_id) DO UPDATE SET joined_at = excluded.joined_at, left_at = NULL",
                    &[new.as_str().into(), now.into()],
                )?;
                self.emit(Event::MemberJoined { conversation_id: meta.id.clone(), member_id: new.clone() })?;
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
            if MemberId::parse(caller).map(|m| m.is_bot()).unwrap_or(false) {
                return Err(ApiError::forbidden("the conversation's bot cannot leave it"));
            }
            let was_present =
                self.scalar("SELECT present AS v FROM watchers WHERE member_id = ?", &[caller.into()])?.unwrap_or(0)
                    != 0;
            self.forget_roster();
            self.cache.watchers.replace(None);
            self.exec("UPDATE members SET left_at = ? WHERE member_id = ?", &[now.into(), caller.into()])?;
            self.exec("DELETE FROM watchers WHERE member_id = ?", &[caller.into()])?;
            self.exec("DELETE FROM typing WHERE member_id = ?", &[caller.into()])?;
            self.emit(Event::MemberLeft { conversation_id: meta.id.clone(), member_id: caller.to_string() })?;
            if was_present {
                self.emit(Event::PresenceLeft { member_id: caller.to_string() })?;
            }
            self.pending.borrow_mut().close_member.push((
                caller.to_string(),
                close::MEMBERSHIP_ENDED,
                "left the conversation",
            ));
            self.connected.borrow_mut().gone(caller);
            Ok(Reply::no_content())
        })
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
