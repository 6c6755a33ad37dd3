//! Conversation routes that take more than one object call: creation (the conversation, then every
//! member's list), listing, leaving, adding a member, marking read (and the badge), messages, and
//! the conversation socket.

use super::identity::{human, socket_member};
use super::{parse, to_conversation};
use crate::http::{self, internal, json, query, Answer};
use crate::notifications;
use crate::platform;
use crate::rpc::{self, ConversationCommand as C, MemberCommand};
use futures::future::join_all;
use serde_json::json;
use switchboard_conversation::commands::{AddMemberAnswer, MarkReadAnswer};
use switchboard_core::ids::{self, ConversationId, MonotonicUlids};
use switchboard_core::limits::MAX_ADDITIONAL_MEMBERS;
use switchboard_core::model::ConversationListItem;
use switchboard_core::requests::*;
use switchboard_core::{replay, validate, ApiError, ErrorCode, MemberId};
use switchboard_notify_contract::badge_bucket;
use worker::{Env, Request};

pub(super) async fn create_conversation(req: &mut Request, env: &Env) -> Answer {
    let me = MemberId::parse(&human(req, env)?)?;
    let body: CreateConversation = parse(req).await?;
    validate::sandbox_id(&body.sandbox_id)?;
    let title = body.title.as_deref().map(validate::title).transpose()?;
    let extra = body.additional_members.unwrap_or_default();
    if extra.len() > MAX_ADDITIONAL_MEMBERS {
        return Err(ApiError::invalid(format!("additionalMembers: at most {MAX_ADDITIONAL_MEMBERS}")));
    }
    let mut humans = vec![me.to_string()];
    for u in extra {
        let m = MemberId::user(&u)
            .map_err(|_| ApiError::invalid(format!("additionalMembers: {u:?} is not a valid user id")))?;
        let m = m.to_string();
        if !humans.contains(&m) {
            humans.push(m);
        }
    }
    let id = MonotonicUlids::default().next(platform::now_ms().max(0) as u64, platform::random_u128()).to_string();
    let cmd = C::Create {
        conversation_id: id.clone(),
        sandbox_id: body.sandbox_id.clone(),
        title: title.clone(),
        members: humans.clone(),
    };
    let (status, answer) = rpc::read(rpc::conversation(env, &id, &me.to_string(), cmd).await?).await?;
    if status != 201 {
        return Err(rpc::as_error(status, &answer));
    }
    let created_at = answer["createdAt"].as_i64().unwrap_or_else(platform::now_ms);
    let bot = MemberId::bot(&body.sandbox_id)?.to_string();
    let everyone = humans.iter().chain(std::iter::once(&bot));
    let upserts = everyone.map(|m| {
        rpc::member(
            env,
            m,
            MemberCommand::Upsert {
                conversation_id: id.clone(),
                sandbox_id: body.sandbox_id.clone(),
                title: title.clone(),
                joined_at: created_at,
                last_activity_at: None,
            },
        )
    });
    for r in join_all(upserts).await {
        if let Err(e) = r {
            worker::console_error!("conversation {id}: list upsert failed: {e}");
        }
    }
    let item = ConversationListItem {
        conversation_id: id.clone(),
        title,
        sandbox_id: body.sandbox_id,
        last_activity_at: None,
        last_read_at: None,
        joined_at: created_at,
    };
    json(201, &json!({"conversationId": id, "conversationListItem": item}))
}

pub(super) async fn list_conversations(req: &Request, env: &Env, me: &str) -> Answer {
    let sandbox_id = query(req, "sandboxId")?;
    if let Some(s) = &sandbox_id {
        validate::sandbox_id(s)?;
    }
    let limit = validate::page_limit(query(req, "limit")?.as_deref())?;
    let cursor = query(req, "cursor")?;
    if let Some(c) = &cursor {
        switchboard_core::cursor::ListCursor::decode(c)?;
    }
    rpc::member(env, me, MemberCommand::List { sandbox_id, limit, cursor }).await
}

/// Leaves the conversation, then removes it from the caller's list. The removal is idempotent and
/// also made when the conversation answers that a person is not (or no longer) a member: a leave
/// retried after its removal failed converges (the list entry goes), answering as the
/// conversation does.
pub(super) async fn leave(env: &Env, id: &ConversationId, me: &str) -> Answer {
    let resp = to_conversation(env, id, me, C::Leave).await?;
    // (The bot is refused 403 as a member: its entry stays.)
    let not_member = matches!(resp.status_code(), 403 | 404) && !MemberId::parse(me)?.is_bot();
    if resp.status_code() == 204 || not_member {
        let (status, body) =
            rpc::read(rpc::member(env, me, MemberCommand::Remove { conversation_id: id.to_string() }).await?).await?;
        if status >= 300 {
            return Err(rpc::as_error(status, &body));
        }
    }
    Ok(resp)
}

pub(super) async fn add_member(env: &Env, id: &ConversationId, me: &str, user_id: &str) -> Answer {
    let (status, body) =
        rpc::read(rpc::conversation(env, id, me, C::AddMember { member: user_id.to_string() }).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &body));
    }
    let answer: AddMemberAnswer = serde_json::from_value(body).map_err(|e| internal("add member answer", e))?;
    // Written for a member already there too (200): an add retried after this write failed
    // converges (the upsert is idempotent and carries the conversation's current entry).
    if status == 201 || status == 200 {
        let item = &answer.list_item;
        let cmd = MemberCommand::Upsert {
            conversation_id: item.conversation_id.clone(),
            sandbox_id: item.sandbox_id.clone(),
            title: item.title.clone(),
            joined_at: item.joined_at,
            last_activity_at: item.last_activity_at,
        };
        let (s, b) = rpc::read(rpc::member(env, user_id, cmd).await?).await?;
        if s >= 300 {
            return Err(rpc::as_error(s, &b));
        }
    }
    // The list entry was for us; the client sees the roster.
    json(status, &json!({"members": answer.members}))
}

/// Moves the read position forward in the conversation and the member's list; when the reader is
/// caught up, clears the conversation's badge bucket (its answer is the remaining `badgeCount`).
pub(super) async fn mark_read(env: &Env, id: &ConversationId, me: &str, message: &str) -> Answer {
    ids::parse("lastSeenMessageId", message)?;
    let (status, body) =
        rpc::read(rpc::conversation(env, id, me, C::MarkRead { message_id: message.to_string() }).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &body));
    }
    let read: MarkReadAnswer = serde_json::from_value(body).map_err(|e| internal("mark read answer", e))?;
    let cmd = MemberCommand::MarkRead {
        conversation_id: id.to_string(),
        member_id: me.to_string(),
        last_read_at: read.last_read_at,
    };
    let (s, b) = rpc::read(rpc::member(env, me, cmd).await?).await?;
    if s >= 300 {
        return Err(rpc::as_error(s, &b));
    }
    let mut badge_count = serde_json::Value::Null;
    if read.caught_up && !MemberId::parse(me)?.is_bot() {
        let bucket = badge_bucket(&read.sandbox_id, id);
        match notifications::clear_badge_bucket(env, me, &bucket).await {
            Ok(n) => {
                badge_count = json!(n);
                notifications::announce_badge(env, me, &read.sandbox_id, id, n).await;
            }
            Err(e) => worker::console_error!("clear badge bucket {bucket}: {e}"),
        }
    }
    json(200, &json!({"conversationId": id.as_str(), "lastReadAt": read.last_read_at, "badgeCount": badge_count}))
}

pub(super) async fn list_messages(req: &Request, env: &Env, id: &ConversationId, me: &str) -> Answer {
    let before = query(req, "before")?;
    if let Some(b) = &before {
        ids::parse("before", b)?;
    }
    let limit = validate::page_limit(query(req, "limit")?.as_deref())?;
    to_conversation(env, id, me, C::ListMessages { before, limit }).await
}

/// `GET /v1/conversations/:id/ws`: 426 unless an upgrade, 401 without auth, then the object decides.
pub(super) async fn socket(req: &Request, env: &Env, id: &str) -> Answer {
    if !http::is_websocket_upgrade(req) {
        return Err(ApiError::new(ErrorCode::UpgradeRequired, "this path takes a WebSocket upgrade"));
    }
    let member = socket_member(req, env).await?;
    let id = ConversationId::parse(id)?;
    let since = replay::parse_since(query(req, "since")?.as_deref())?;
    let batch = switchboard_core::batch::opt_in(query(req, "batch")?.as_deref())?;
    rpc::conversation_socket(env, &id, &member, since, batch).await
}
