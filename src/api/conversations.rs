//! Conversation routes that take more than one object call: creation (the conversation, then every
//! member's list), listing, leaving, adding a member, marking read (and the badge), messages, and
//! the conversation socket.

use super::identity::{human, socket_caller, SocketCaller};
use super::{parse, to_conversation};
use crate::config;
use crate::http::{internal, json, query, Answer};
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
use switchboard_core::{replay, validate, ApiError, MemberId};
use switchboard_notify_contract::badge_bucket;
use worker::{Env, Request};

pub(super) async fn create_conversation(req: &mut Request, env: &Env) -> Answer {
    let me = MemberId::parse(&human(req, env)?)?;
    let body: CreateConversation = parse(req).await?;
    validate::sandbox_id(&body.sandbox_id)?;
    may_use_sandbox(env, &body.sandbox_id, &me.to_string()).await?;
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
    rpc::allow(env, &me.to_string(), switchboard_member::limits::Limited::CreateConversation).await?;
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
                added_by: (m != &me.to_string()).then(|| me.to_string()),
            },
        )
    });
    // One that fails (an error or an answer other than 2xx) is added by the conversation's
    // reconcile, due a period after creation.
    for r in join_all(upserts).await {
        match r {
            Ok(resp) if resp.status_code() < 300 => {}
            Ok(resp) => worker::console_error!("conversation {id}: list upsert answered {}", resp.status_code()),
            Err(e) => worker::console_error!("conversation {id}: list upsert failed: {e}"),
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

/// May `user` create a conversation with `sandbox_id`'s bot? The sandbox's bot object keeps the
/// list (`switchboard_member::sandbox_users`); a sandbox without one is open in local mode only.
async fn may_use_sandbox(env: &Env, sandbox_id: &str, user: &str) -> Result<(), ApiError> {
    let bot = MemberId::bot(sandbox_id)?.to_string();
    let cmd = MemberCommand::SandboxAccess {
        sandbox_id: sandbox_id.to_string(),
        user: user.to_string(),
        open_unlisted: config::local_mode(env),
    };
    let (status, body) = rpc::read(rpc::member(env, &bot, cmd).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &body));
    }
    Ok(())
}

/// `PUT .../sandboxes/:sandboxId/users` (the bot's or the operator's): replaces the list.
pub(super) async fn set_sandbox_users(env: &Env, sandbox_id: &str, users: Vec<String>) -> Answer {
    let bot = MemberId::bot(sandbox_id)?.to_string();
    let (status, body) = rpc::read(rpc::member(env, &bot, MemberCommand::SetSandboxUsers { users }).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &body));
    }
    json(200, &json!({"sandboxId": sandbox_id, "users": body["users"]}))
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
        membership_ended(env, id, me, None).await?;
    }
    Ok(resp)
}

/// `DELETE /v1/conversations/:id/members/:userId`: the owner removes a member, or a member themself.
pub(super) async fn remove_member(env: &Env, id: &ConversationId, me: &str, user_id: &str) -> Answer {
    let cmd = C::RemoveMember { member: user_id.to_string() };
    let resp = to_conversation(env, id, me, cmd).await?;
    if resp.status_code() == 204 {
        let removed_by = (user_id != me).then(|| me.to_string());
        membership_ended(env, id, user_id, removed_by).await?;
    }
    Ok(resp)
}

/// After the conversation recorded that `member` is out (and closed their sockets on it): every
/// other channel ends at once. Their list entry goes (`conversation.left` on their hub, whose
/// sessions drop the conversation's contexts), their live subscriptions close with 4003, and their
/// Pusher sockets leave the conversation's channels.
async fn membership_ended(
    env: &Env,
    id: &ConversationId,
    member: &str,
    removed_by: Option<String>,
) -> Result<(), ApiError> {
    let remove = MemberCommand::Remove { conversation_id: id.to_string(), removed_by };
    let (status, body) = rpc::read(rpc::member(env, member, remove).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &body));
    }
    let live = rpc::live_call_as(env, id, "/membership-ended", member).await?;
    if live.status_code() >= 300 {
        worker::console_error!("conversation {id}: live channel did not drop {member}: {}", live.status_code());
    }
    crate::pusher::routes::membership_ended(env, id, member).await;
    Ok(())
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
            added_by: Some(me.to_string()),
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

/// `GET /v1/conversations/:id/ws`: 426 unless an upgrade, 401 without auth, then the object decides
/// (a ticket is spent only once the ids, `since` and membership are known good).
pub(super) async fn socket(req: &Request, env: &Env, id: &str) -> Answer {
    let who = socket_caller(req, env)?;
    let id = ConversationId::parse(id)?;
    let since = replay::parse_since(query(req, "since")?.as_deref())?;
    let batch = switchboard_core::batch::opt_in(query(req, "batch")?.as_deref())?;
    validate_before_redeem(env, &id, &who).await?;
    rpc::conversation_socket(env, &id, &who.member, since, batch, who.accepted_until_ms).await
}

/// A socket opened with a ticket: the conversation must exist and the caller be a member before the
/// ticket is spent (a refused upgrade keeps its ticket). A bearer token: the object checks.
pub(super) async fn validate_before_redeem(env: &Env, id: &ConversationId, who: &SocketCaller) -> Result<(), ApiError> {
    if !who.by_ticket() {
        return Ok(());
    }
    let (status, body) = rpc::read(rpc::conversation(env, id, &who.member, C::Get).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &body));
    }
    who.redeem(env).await
}
