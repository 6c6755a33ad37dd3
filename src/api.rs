//! The request router: authenticate, validate what the path and body say, and forward a command to the
//! conversation's or the member's object. Objects answer with the final status and body.

use crate::config;
use crate::http::{self, body_bytes, internal, json, query, Answer};
use crate::notifications;
use crate::platform;
use crate::profiles;
use crate::pusher;
use crate::rpc::{self, ConversationCommand as C, MemberCommand};
use futures::future::join_all;
use serde_json::json;
use switchboard_auth::iso8601;
use switchboard_core::ids::{self, MonotonicUlids};
use switchboard_core::limits::{MAX_ADDITIONAL_MEMBERS, MAX_TOKEN_LIFETIME_SECS};
use switchboard_core::model::ConversationListItem;
use switchboard_core::requests::*;
use switchboard_core::routes::Route;
use switchboard_core::{live, replay, validate, ApiError, ErrorCode, MemberId};
use switchboard_notify_contract::badge_bucket;
use worker::{Context, Env, Method, Request};

pub async fn handle(mut req: Request, env: Env, _ctx: Context) -> Answer {
    let route = Route::parse(&req.path()).ok_or_else(|| ApiError::not_found("no such route"))?;
    let method = req.method();
    match (route, method) {
        (Route::Health, Method::Get) => json(200, &json!({"ok": true})),
        (Route::DevToken, Method::Post) => dev_token(&mut req, &env).await,
        (Route::ConnectTicket, Method::Post) => connect_ticket(&req, &env).await,
        (Route::Connect, Method::Get) => {
            let member = socket_member(&req, &env).await?;
            let since = replay::parse_since(query(&req, "since")?.as_deref())?;
            let session = query(&req, "session")?;
            let protocol = req.headers().get("sec-websocket-protocol").ok().flatten();
            Ok(rpc::member_connect(&env, &member, since, session.as_deref(), protocol.as_deref()).await?)
        }
        (Route::ConversationPresence(id), Method::Get) => {
            let me = caller(&req, &env)?;
            to_conversation(&env, &id, &me, C::Presence).await
        }
        (Route::ConversationTyping(id), Method::Post) => {
            let me = caller(&req, &env)?;
            to_conversation(&env, &id, &me, C::Typing { stop: false }).await
        }
        (Route::ConversationTypingStop(id), Method::Post) => {
            let me = caller(&req, &env)?;
            to_conversation(&env, &id, &me, C::Typing { stop: true }).await
        }
        (Route::Conversations, Method::Post) => create_conversation(&mut req, &env).await,
        (Route::Conversations, Method::Get) => {
            let me = human(&req, &env)?;
            list_conversations(&req, &env, &me).await
        }
        (Route::Conversation(id), Method::Get) => {
            let me = caller(&req, &env)?;
            to_conversation(&env, &id, &me, C::Get).await
        }
        (Route::Conversation(id), Method::Patch) => {
            let me = caller(&req, &env)?;
            let body: RenameConversation = parse(&mut req).await?;
            to_conversation(&env, &id, &me, C::Rename { title: body.title }).await
        }
        (Route::ConversationLeave(id), Method::Post) => {
            let me = caller(&req, &env)?;
            leave(&env, &id, &me).await
        }
        (Route::ConversationMembers(id), Method::Post) => {
            let me = caller(&req, &env)?;
            let body: AddMember = parse(&mut req).await?;
            add_member(&env, &id, &me, &body.user_id).await
        }
        (Route::ConversationMessages(id), Method::Get) => {
            let me = caller(&req, &env)?;
            list_messages(&req, &env, &id, &me).await
        }
        (Route::ConversationSocket(id), Method::Get) => socket(&req, &env, &id).await,
        (Route::ConversationMarkRead(id), Method::Post) => {
            let me = caller(&req, &env)?;
            let body: MarkRead = parse(&mut req).await?;
            mark_read(&env, &id, &me, &body.last_seen_message_id).await
        }
        (Route::ConversationBridges(id), Method::Post) => {
            let me = caller(&req, &env)?;
            let body: serde_json::Value = parse(&mut req).await?;
            let link = switchboard_bridge::link::Link::parse(&body)?;
            to_conversation(&env, &id, &me, C::LinkBridge { link }).await
        }
        (Route::ConversationBridges(id), Method::Get) => {
            let me = caller(&req, &env)?;
            to_conversation(&env, &id, &me, C::ListBridges).await
        }
        (Route::ConversationBridge(id, bridge_id), Method::Delete) => {
            let me = caller(&req, &env)?;
            ids::parse("bridgeId", &bridge_id)?;
            to_conversation(&env, &id, &me, C::UnlinkBridge { bridge_id }).await
        }
        (Route::Notifications, _) => notifications::forward(&env, req).await,
        (Route::PusherSocket(key), Method::Get) => pusher::routes::socket(&req, &env, &key).await,
        (Route::PusherApi, _) => pusher::routes::http_api(&mut req, &env).await,
        (Route::PusherAuth, Method::Post) => {
            let me = caller(&req, &env)?;
            pusher::routes::channel_auth(&mut req, &env, &me).await
        }
        (Route::PusherUserAuth, Method::Post) => {
            let me = caller(&req, &env)?;
            pusher::routes::user_auth(&mut req, &env, &me).await
        }
        (Route::DevPusherReconnect, Method::Post) => {
            if !config::local_mode(&env) {
                return Err(ApiError::not_found("no such route"));
            }
            pusher::routes::reconnect(&env).await
        }
        (Route::ConversationPublish(id), Method::Post) => {
            let content_type = req.headers().get("content-type").ok().flatten();
            if !live::accepted_content_type(content_type.as_deref()) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedContentType,
                    "publish takes application/x-ndjson (streamed lines) or application/json (one object)",
                ));
            }
            let me = caller(&req, &env)?;
            conversation_id(&id)?;
            let idle = config::live_idle_ms(&env).max(1) as u64;
            crate::live::live_publish(&env, &id, &me, &req, idle).await
        }
        (Route::ConversationLive(id), Method::Get) => {
            let member = socket_member(&req, &env).await?;
            conversation_id(&id)?;
            Ok(rpc::live_call(&env, &id, "/live", Some(&member)).await?)
        }
        (Route::BotStatus(sb), Method::Post) => {
            let me = bot(&req, &env, &sb)?;
            let body: SetBotStatus = parse(&mut req).await?;
            set_bot_status(&env, &sb, &me, body).await
        }
        (Route::BotStatus(sb), Method::Get) => {
            let me = bot(&req, &env, &sb)?;
            let (status, body) = rpc::read(rpc::member(&env, &me, MemberCommand::GetBotStatus).await?).await?;
            if status >= 300 {
                return Err(rpc::as_error(status, &body));
            }
            json(200, &json!({"sandboxId": sb, "online": body["online"], "at": body["at"]}))
        }
        (Route::Messages, Method::Post) => {
            let me = caller(&req, &env)?;
            let body: CreateMessage = parse(&mut req).await?;
            let cmd = C::SendMessage {
                content: body.content,
                in_reply_to_message_id: body.in_reply_to_message_id,
                client_id: body.client_id,
            };
            to_conversation(&env, &body.conversation_id, &me, cmd).await
        }
        (Route::Message(mid), Method::Patch) => {
            let me = caller(&req, &env)?;
            let body: EditMessage = parse(&mut req).await?;
            message_id(&mid)?;
            let cmd = C::EditMessage { message_id: mid, content: body.content, timestamp: body.timestamp };
            to_conversation(&env, &body.conversation_id, &me, cmd).await
        }
        (Route::Message(mid), Method::Delete) => {
            let me = caller(&req, &env)?;
            message_id(&mid)?;
            let conv = required_query(&req, "conversationId")?;
            to_conversation(&env, &conv, &me, C::DeleteMessage { message_id: mid }).await
        }
        (Route::MessageReactions(mid), Method::Post) => {
            let me = caller(&req, &env)?;
            let body: AddReaction = parse(&mut req).await?;
            message_id(&mid)?;
            to_conversation(&env, &body.conversation_id, &me, C::AddReaction { message_id: mid, emoji: body.emoji })
                .await
        }
        (Route::MessageReactions(mid), Method::Delete) => {
            let me = caller(&req, &env)?;
            message_id(&mid)?;
            let conv = required_query(&req, "conversationId")?;
            let emoji = required_query(&req, "emoji")?;
            to_conversation(&env, &conv, &me, C::RemoveReaction { message_id: mid, emoji }).await
        }
        (Route::BotConversations(sb), Method::Get) => {
            let me = bot(&req, &env, &sb)?;
            list_conversations(&req, &env, &me).await
        }
        (Route::BotConversation(sb, id), Method::Get) => {
            let me = bot(&req, &env, &sb)?;
            to_conversation(&env, &id, &me, C::Get).await
        }
        (Route::BotMessages(sb, id), Method::Get) => {
            let me = bot(&req, &env, &sb)?;
            list_messages(&req, &env, &id, &me).await
        }
        (Route::BotMessages(sb, id), Method::Post) => {
            let me = bot(&req, &env, &sb)?;
            let body: BotCreateMessage = parse(&mut req).await?;
            let cmd = C::SendMessage {
                content: body.content,
                in_reply_to_message_id: body.in_reply_to_message_id,
                client_id: body.client_id,
            };
            to_conversation(&env, &id, &me, cmd).await
        }
        (Route::BotMessage(sb, id, mid), Method::Patch) => {
            let me = bot(&req, &env, &sb)?;
            let body: BotEditMessage = parse(&mut req).await?;
            message_id(&mid)?;
            to_conversation(
                &env,
                &id,
                &me,
                C::EditMessage { message_id: mid, content: body.content, timestamp: body.timestamp },
            )
            .await
        }
        (Route::BotMessage(sb, id, mid), Method::Delete) => {
            let me = bot(&req, &env, &sb)?;
            message_id(&mid)?;
            to_conversation(&env, &id, &me, C::DeleteMessage { message_id: mid }).await
        }
        (Route::BotProfile(sb), Method::Get) => {
            bot(&req, &env, &sb)?;
            json(200, &json!({"sandboxId": sb, "label": profiles::label(&env, &sb).await?}))
        }
        (Route::BotProfile(sb), Method::Put) => {
            bot(&req, &env, &sb)?;
            let body: SetProfile = parse(&mut req).await?;
            let label = validate::sandbox_label(&body.label)?;
            profiles::set_label(&env, &sb, &label, platform::now_ms()).await?;
            json(200, &json!({"sandboxId": sb, "label": label}))
        }
        (_, _) => Err(ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this path")),
    }
}

// --------------------------------------------------------------------------------------------------
// Identity
// --------------------------------------------------------------------------------------------------

/// The authenticated member (human or bot) behind the bearer token.
fn caller(req: &Request, env: &Env) -> Result<String, ApiError> {
    let auth = config::auth(env)?;
    let header = req.headers().get("authorization").ok().flatten();
    Ok(auth.verify_bearer(header.as_deref(), platform::now_secs())?.to_string())
}

/// A person; a bot's token is refused (bots use `/bot/v1/...`).
fn human(req: &Request, env: &Env) -> Result<String, ApiError> {
    let me = caller(req, env)?;
    if me.starts_with("bot:") {
        return Err(ApiError::forbidden("this route is for people; bots use /bot/v1/sandboxes/:sandboxId/..."));
    }
    Ok(me)
}

/// The bot of `sandbox_id`; any other caller is refused.
fn bot(req: &Request, env: &Env, sandbox_id: &str) -> Result<String, ApiError> {
    let auth = config::auth(env)?;
    let header = req.headers().get("authorization").ok().flatten();
    let member = auth.verify_bearer(header.as_deref(), platform::now_secs())?;
    match &member {
        MemberId::Bot(s) if s == sandbox_id => Ok(member.to_string()),
        MemberId::Bot(_) => Err(ApiError::forbidden("this token is for another sandbox")),
        MemberId::User(_) => Err(ApiError::forbidden("bot routes need the sandbox's bot token")),
    }
}

async fn dev_token(req: &mut Request, env: &Env) -> Answer {
    if !config::local_mode(env) {
        return Err(ApiError::not_found("no such route"));
    }
    let body: DevTokenRequest = parse(req).await?;
    let member = match (body.user_id, body.sandbox_id) {
        (Some(u), None) => MemberId::user(&u)?,
        (None, Some(s)) => MemberId::bot(&s)?,
        _ => return Err(ApiError::invalid("give exactly one of userId, sandboxId")),
    };
    let issued = config::auth(env)?.issue_token(&member, "dev", platform::now_secs(), MAX_TOKEN_LIFETIME_SECS)?;
    json(200, &json!({"token": issued.token, "expiresAt": iso8601(issued.expires_at), "userId": member.to_string()}))
}

async fn connect_ticket(req: &Request, env: &Env) -> Answer {
    let auth = config::auth(env)?;
    let header = req.headers().get("authorization").ok().flatten();
    let member = auth.verify_bearer(header.as_deref(), platform::now_secs())?;
    let issued = auth.issue_ticket(&member, &platform::nonce(), platform::now_secs())?;
    json(200, &json!({"ticket": issued.token, "expiresAt": iso8601(issued.expires_at)}))
}

// --------------------------------------------------------------------------------------------------
// Conversations
// --------------------------------------------------------------------------------------------------

async fn create_conversation(req: &mut Request, env: &Env) -> Answer {
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

async fn list_conversations(req: &Request, env: &Env, me: &str) -> Answer {
    let sandbox_id = query(req, "sandboxId")?;
    if let Some(s) = &sandbox_id {
        validate::sandbox_id(s)?;
    }
    let limit = validate::page_limit(query(req, "limit")?.as_deref())?;
    let cursor = query(req, "cursor")?;
    if let Some(c) = &cursor {
        switchboard_core::cursor::ListCursor::decode(c)?;
    }
    Ok(rpc::member(env, me, MemberCommand::List { sandbox_id, limit, cursor }).await?)
}

async fn leave(env: &Env, id: &str, me: &str) -> Answer {
    let resp = to_conversation(env, id, me, C::Leave).await?;
    if resp.status_code() == 204 {
        let (status, body) =
            rpc::read(rpc::member(env, me, MemberCommand::Remove { conversation_id: id.to_string() }).await?).await?;
        if status >= 300 {
            return Err(rpc::as_error(status, &body));
        }
    }
    Ok(resp)
}

async fn add_member(env: &Env, id: &str, me: &str, user_id: &str) -> Answer {
    conversation_id(id)?;
    let (status, mut body) =
        rpc::read(rpc::conversation(env, id, me, C::AddMember { member: user_id.to_string() }).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &body));
    }
    let item: ConversationListItem =
        serde_json::from_value(body["listItem"].take()).map_err(|e| internal("add member answer", e))?;
    if status == 201 {
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
    if let Some(o) = body.as_object_mut() {
        o.remove("listItem");
    }
    json(status, &body)
}

/// Moves the read position forward in the conversation and the member's list; when the reader is
/// caught up, clears the conversation's badge bucket (its answer is the remaining `badgeCount`).
async fn mark_read(env: &Env, id: &str, me: &str, message: &str) -> Answer {
    conversation_id(id)?;
    ids::parse("lastSeenMessageId", message)?;
    let (status, body) =
        rpc::read(rpc::conversation(env, id, me, C::MarkRead { message_id: message.to_string() }).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &body));
    }
    let last_read_at = body["lastReadAt"].as_i64().unwrap_or_else(platform::now_ms);
    let (s, b) = rpc::read(
        rpc::member(
            env,
            me,
            MemberCommand::MarkRead { conversation_id: id.to_string(), member_id: me.to_string(), last_read_at },
        )
        .await?,
    )
    .await?;
    if s >= 300 {
        return Err(rpc::as_error(s, &b));
    }
    let mut badge_count = serde_json::Value::Null;
    if body["caughtUp"].as_bool() == Some(true) && !MemberId::parse(me)?.is_bot() {
        let bucket = badge_bucket(body["sandboxId"].as_str().unwrap_or_default(), id);
        match notifications::clear_badge_bucket(env, me, &bucket).await {
            Ok(n) => {
                badge_count = json!(n);
                let sandbox = body["sandboxId"].as_str().unwrap_or_default();
                notifications::announce_badge(env, me, sandbox, id, n).await;
            }
            Err(e) => worker::console_error!("clear badge bucket {bucket}: {e}"),
        }
    }
    json(200, &json!({"conversationId": id, "lastReadAt": last_read_at, "badgeCount": badge_count}))
}

async fn list_messages(req: &Request, env: &Env, id: &str, me: &str) -> Answer {
    let before = query(req, "before")?;
    if let Some(b) = &before {
        ids::parse("before", b)?;
    }
    let limit = validate::page_limit(query(req, "limit")?.as_deref())?;
    to_conversation(env, id, me, C::ListMessages { before, limit }).await
}

/// `GET /v1/conversations/:id/ws`: 426 unless an upgrade, 401 without auth, then the object decides.
async fn socket(req: &Request, env: &Env, id: &str) -> Answer {
    if !http::is_websocket_upgrade(req) {
        return Err(ApiError::new(ErrorCode::UpgradeRequired, "this path takes a WebSocket upgrade"));
    }
    let member = socket_member(req, env).await?;
    conversation_id(id)?;
    let since = replay::parse_since(query(req, "since")?.as_deref())?;
    Ok(rpc::conversation_socket(env, id, &member, since).await?)
}

/// Who opens a socket: 426 unless an upgrade; a `?ticket=` (redeemed once) or the bearer token.
async fn socket_member(req: &Request, env: &Env) -> Result<String, ApiError> {
    if !http::is_websocket_upgrade(req) {
        return Err(ApiError::new(ErrorCode::UpgradeRequired, "this path takes a WebSocket upgrade"));
    }
    match query(req, "ticket")? {
        Some(ticket) => {
            let t = config::auth(env)?.verify_ticket(&ticket, platform::now_secs())?;
            let member = t.member.to_string();
            let redeem = MemberCommand::RedeemTicket { nonce: t.nonce, expires_at_ms: (t.expires_at as i64) * 1000 };
            let (status, body) = rpc::read(rpc::member(env, &member, redeem).await?).await?;
            if status >= 300 {
                return Err(rpc::as_error(status, &body));
            }
            Ok(member)
        }
        None => caller(req, env),
    }
}

/// Records the bot's status; when it goes offline, every live channel of its conversations closes
/// its subscribers (4002) and stops its publishes.
async fn set_bot_status(env: &Env, sandbox_id: &str, me: &str, body: SetBotStatus) -> Answer {
    let at = body.at.unwrap_or_else(platform::now_ms);
    let cmd = MemberCommand::SetBotStatus { online: body.online, at };
    let (status, answer) = rpc::read(rpc::member(env, me, cmd).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &answer));
    }
    let ids: Vec<String> = answer["conversations"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if !body.online {
        for chunk in ids.chunks(50) {
            for r in join_all(chunk.iter().map(|c| rpc::live_call(env, c, "/bot-offline", None))).await {
                if let Err(e) = r {
                    worker::console_error!("bot offline: {e}");
                }
            }
        }
    }
    // `bot.status` on the instance context of every person who shares a conversation with the bot.
    let mut people: Vec<String> = Vec::new();
    for chunk in ids.chunks(50) {
        for r in join_all(chunk.iter().map(|c| rpc::conversation(env, c, me, C::Get))).await {
            let Ok(resp) = r else { continue };
            let Ok((200, detail)) = rpc::read(resp).await else { continue };
            for m in detail["members"].as_array().into_iter().flatten() {
                if m["kind"] == "user" {
                    if let Some(id) = m["id"].as_str() {
                        people.push(id.to_string());
                    }
                }
            }
        }
    }
    people.sort();
    people.dedup();
    let payload = json!({"sandboxId": sandbox_id, "online": body.online, "at": at});
    let context = switchboard_core::hub::contexts::instance(sandbox_id);
    for chunk in people.chunks(50) {
        let calls = chunk.iter().map(|p| {
            let cmd = MemberCommand::Deliver {
                context: context.clone(),
                event: "bot.status".into(),
                payload: payload.clone(),
                ephemeral: false,
            };
            rpc::member(env, p, cmd)
        });
        for r in join_all(calls).await {
            if let Err(e) = r {
                worker::console_error!("bot.status delivery: {e}");
            }
        }
    }
    json(200, &payload)
}

// --------------------------------------------------------------------------------------------------
// Helpers
// --------------------------------------------------------------------------------------------------

async fn parse<T: serde::de::DeserializeOwned>(req: &mut Request) -> Result<T, ApiError> {
    let bytes = body_bytes(req).await?;
    parse_body(&bytes)
}

fn conversation_id(id: &str) -> Result<(), ApiError> {
    ids::parse("conversationId", id).map(|_| ())
}

fn message_id(id: &str) -> Result<(), ApiError> {
    ids::parse("messageId", id).map(|_| ())
}

fn required_query(req: &Request, name: &str) -> Result<String, ApiError> {
    query(req, name)?.ok_or_else(|| ApiError::invalid(format!("{name}: query parameter is required")))
}

/// Validates the conversation id and forwards the command; the object's answer is the answer.
async fn to_conversation(env: &Env, id: &str, me: &str, cmd: C) -> Answer {
    conversation_id(id)?;
    Ok(rpc::conversation(env, id, me, cmd).await?)
}
