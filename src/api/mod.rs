//! The request router: authenticate, validate what the path and body say, and forward a command to the
//! conversation's or the member's object. Objects answer with the final status and body.
//!
//! `mod.rs` is the whole HTTP surface on one screen (one `(route, method)` match) and the helpers
//! every route shares; `identity.rs` (who is calling: bearer tokens, tickets, dev tokens),
//! `conversations.rs` (the routes that need more than one object call), `bots.rs` (bot status).

mod bots;
mod conversations;
mod identity;

use crate::config;
use crate::http::{json, json_body_bytes, query, Answer};
use crate::notifications;
use crate::platform;
use crate::profiles;
use crate::pusher;
use crate::rpc::{self, ConversationCommand as C};
use bots::{bot_status, conversation_bot_status, set_bot_status};
use conversations::*;
use identity::*;
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use switchboard_core::ids::{self, ConversationId, MessageId};
use switchboard_core::requests::*;
use switchboard_core::routes::Route;
use switchboard_core::{live, replay, validate, ApiError, ErrorCode};
use worker::{Context, Env, Method, Request};

pub async fn handle(req: Request, env: Env, ctx: Context) -> Answer {
    dispatch(req, env, ctx)?.await
}

/// A route's handling, compiled as its own function: V8 compiles a wasm function when it first
/// runs, and with every route's code inlined into one future the first request of any route paid
/// for compiling all of them (one 141 KB function). Behind a `dyn Future` made out of line, each
/// route's code is compiled when that route is first asked for.
type Arm = Pin<Box<dyn Future<Output = Answer>>>;

#[inline(never)]
fn arm(f: impl Future<Output = Answer> + 'static) -> Arm {
    Box::pin(f)
}

fn dispatch(mut req: Request, env: Env, _ctx: Context) -> Result<Arm, ApiError> {
    let route = Route::parse(&req.path()).ok_or_else(|| ApiError::not_found("no such route"))?;
    let method = req.method();
    Ok(match (route, method) {
        (Route::Health, Method::Get) => arm(async move { json(200, &json!({"ok": true})) }),
        (Route::DevToken, Method::Post) => arm(async move { dev_token(&mut req, &env).await }),
        (Route::ConnectTicket, Method::Post) => arm(async move { connect_ticket(&req, &env).await }),
        (Route::Connect, Method::Get) => arm(async move {
            let who = socket_caller(&req, &env)?;
            let since = replay::parse_since(query(&req, "since")?.as_deref())?;
            let session = query(&req, "session")?;
            if session.as_deref().is_some_and(|s| !switchboard_member::hub::sessions::valid_session_id(s)) {
                return Err(ApiError::invalid("session: not a session this service gave out"));
            }
            let batch = switchboard_core::batch::opt_in(query(&req, "batch")?.as_deref())?;
            who.redeem(&env).await?;
            let protocol = req.headers().get("sec-websocket-protocol").ok().flatten();
            let opening = rpc::Opening { since, session: session.as_deref(), batch };
            rpc::member_connect(&env, &who.member, opening, protocol.as_deref(), who.accepted_until_ms).await
        }),
        (Route::ConversationPresence(id), Method::Get) => arm(async move {
            let me = caller(&req, &env)?;
            to_conversation(&env, &ConversationId::parse(&id)?, &me, C::Presence).await
        }),
        (Route::ConversationTyping(id), Method::Post) => arm(async move {
            let me = caller(&req, &env)?;
            to_conversation(&env, &ConversationId::parse(&id)?, &me, C::Typing { stop: false }).await
        }),
        (Route::ConversationTypingStop(id), Method::Post) => arm(async move {
            let me = caller(&req, &env)?;
            to_conversation(&env, &ConversationId::parse(&id)?, &me, C::Typing { stop: true }).await
        }),
        (Route::Conversations, Method::Post) => arm(async move { create_conversation(&mut req, &env).await }),
        (Route::Conversations, Method::Get) => arm(async move {
            let me = human(&req, &env)?;
            list_conversations(&req, &env, &me).await
        }),
        (Route::Conversation(id), Method::Get) => arm(async move {
            let me = caller(&req, &env)?;
            to_conversation(&env, &ConversationId::parse(&id)?, &me, C::Get).await
        }),
        (Route::Conversation(id), Method::Patch) => arm(async move {
            let me = caller(&req, &env)?;
            let body: RenameConversation = parse(&mut req).await?;
            to_conversation(&env, &ConversationId::parse(&id)?, &me, C::Rename { title: body.title }).await
        }),
        (Route::ConversationLeave(id), Method::Post) => arm(async move {
            let me = caller(&req, &env)?;
            leave(&env, &ConversationId::parse(&id)?, &me).await
        }),
        (Route::ConversationMembers(id), Method::Post) => arm(async move {
            let me = caller(&req, &env)?;
            let body: AddMember = parse(&mut req).await?;
            add_member(&env, &ConversationId::parse(&id)?, &me, &body.user_id).await
        }),
        (Route::ConversationMember(id, user_id), Method::Delete) => arm(async move {
            let me = caller(&req, &env)?;
            remove_member(&env, &ConversationId::parse(&id)?, &me, &user_id).await
        }),
        (Route::ConversationMessages(id), Method::Get) => arm(async move {
            let me = caller(&req, &env)?;
            list_messages(&req, &env, &ConversationId::parse(&id)?, &me).await
        }),
        (Route::ConversationSocket(id), Method::Get) => arm(async move { socket(&req, &env, &id).await }),
        (Route::ConversationMarkRead(id), Method::Post) => arm(async move {
            let me = caller(&req, &env)?;
            let body: MarkRead = parse(&mut req).await?;
            mark_read(&env, &ConversationId::parse(&id)?, &me, &body.last_seen_message_id).await
        }),
        (Route::ConversationBridges(id), Method::Post) => arm(async move {
            let me = caller(&req, &env)?;
            let body: serde_json::Value = parse(&mut req).await?;
            let link = switchboard_bridge::link::Link::parse(&body)?;
            to_conversation(&env, &ConversationId::parse(&id)?, &me, C::LinkBridge { link }).await
        }),
        (Route::ConversationBridges(id), Method::Get) => arm(async move {
            let me = caller(&req, &env)?;
            to_conversation(&env, &ConversationId::parse(&id)?, &me, C::ListBridges).await
        }),
        (Route::ConversationBridge(id, bridge_id), Method::Delete) => arm(async move {
            let me = caller(&req, &env)?;
            ids::parse("bridgeId", &bridge_id)?;
            to_conversation(&env, &ConversationId::parse(&id)?, &me, C::UnlinkBridge { bridge_id }).await
        }),
        (Route::Notifications, _) => arm(async move { notifications::forward(&env, req).await }),
        (Route::PusherSocket(key), Method::Get) => arm(async move { pusher::routes::socket(&req, &env, &key).await }),
        (Route::PusherApi, _) => arm(async move { pusher::routes::http_api(&mut req, &env).await }),
        (Route::PusherAuth, Method::Post) => arm(async move {
            let me = caller(&req, &env)?;
            pusher::routes::channel_auth(&mut req, &env, &me).await
        }),
        (Route::PusherUserAuth, Method::Post) => arm(async move {
            let me = caller(&req, &env)?;
            pusher::routes::user_auth(&mut req, &env, &me).await
        }),
        (Route::DevPusherReconnect, Method::Post) => arm(async move {
            if !config::local_request(&env, &req) {
                return Err(ApiError::not_found("no such route"));
            }
            pusher::routes::reconnect(&env).await
        }),
        (Route::ConversationPublish(id), Method::Post) => arm(async move {
            let content_type = req.headers().get("content-type").ok().flatten();
            if !live::accepted_content_type(content_type.as_deref()) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedContentType,
                    "publish takes application/x-ndjson (streamed lines) or application/json (one object)",
                ));
            }
            let me = caller(&req, &env)?;
            let id = ConversationId::parse(&id)?;
            let idle = config::live_idle_ms(&env).max(1);
            let max = config::live_max_publish_ms(&env).max(1);
            crate::live::live_publish(&env, &id, &me, &req, idle, max).await
        }),
        (Route::ConversationLive(id), Method::Get) => arm(async move {
            let who = socket_caller(&req, &env)?;
            let id = ConversationId::parse(&id)?;
            // A refused subscriber is accepted and closed at once (4001) by the channel, without
            // spending its ticket; an admitted one spends it first.
            match validate_before_redeem(&env, &id, &who).await {
                Err(e) if e.status() != 403 && e.status() != 404 => return Err(e),
                _ => {}
            }
            rpc::live_subscribe(&env, &id, &who.member, who.accepted_until_ms).await
        }),
        (Route::BotStatus(sb), Method::Post) => arm(async move {
            let me = bot(&req, &env, &sb)?;
            let body: SetBotStatus = parse(&mut req).await?;
            set_bot_status(&env, &sb, &me, body).await
        }),
        (Route::BotStatus(sb), Method::Get) => arm(async move {
            bot(&req, &env, &sb)?;
            bot_status(&env, &sb).await
        }),
        (Route::ConversationBotStatus(id), Method::Get) => arm(async move {
            let me = caller(&req, &env)?;
            conversation_bot_status(&env, &ConversationId::parse(&id)?, &me).await
        }),
        (Route::Messages, Method::Post) => arm(async move {
            let me = caller(&req, &env)?;
            let body: CreateMessage = parse(&mut req).await?;
            let cmd = C::SendMessage {
                content: body.content,
                in_reply_to_message_id: body.in_reply_to_message_id,
                client_id: body.client_id,
            };
            to_conversation(&env, &ConversationId::parse(&body.conversation_id)?, &me, cmd).await
        }),
        (Route::Message(mid), Method::Patch) => arm(async move {
            let me = caller(&req, &env)?;
            let body: EditMessage = parse(&mut req).await?;
            let mid = MessageId::parse(&mid)?.into_string();
            let cmd = C::EditMessage { message_id: mid, content: body.content, timestamp: body.timestamp };
            to_conversation(&env, &ConversationId::parse(&body.conversation_id)?, &me, cmd).await
        }),
        (Route::Message(mid), Method::Delete) => arm(async move {
            let me = caller(&req, &env)?;
            let mid = MessageId::parse(&mid)?.into_string();
            let conv = required_query(&req, "conversationId")?;
            to_conversation(&env, &ConversationId::parse(&conv)?, &me, C::DeleteMessage { message_id: mid }).await
        }),
        (Route::MessageReactions(mid), Method::Post) => arm(async move {
            let me = caller(&req, &env)?;
            let body: AddReaction = parse(&mut req).await?;
            let mid = MessageId::parse(&mid)?.into_string();
            to_conversation(
                &env,
                &ConversationId::parse(&body.conversation_id)?,
                &me,
                C::AddReaction { message_id: mid, emoji: body.emoji },
            )
            .await
        }),
        (Route::MessageReactions(mid), Method::Delete) => arm(async move {
            let me = caller(&req, &env)?;
            let mid = MessageId::parse(&mid)?.into_string();
            let conv = required_query(&req, "conversationId")?;
            let emoji = required_query(&req, "emoji")?;
            to_conversation(&env, &ConversationId::parse(&conv)?, &me, C::RemoveReaction { message_id: mid, emoji })
                .await
        }),
        (Route::BotConversations(sb), Method::Get) => arm(async move {
            let me = bot(&req, &env, &sb)?;
            list_conversations(&req, &env, &me).await
        }),
        (Route::BotConversation(sb, id), Method::Get) => arm(async move {
            let me = bot(&req, &env, &sb)?;
            to_conversation(&env, &ConversationId::parse(&id)?, &me, C::Get).await
        }),
        (Route::BotMessages(sb, id), Method::Get) => arm(async move {
            let me = bot(&req, &env, &sb)?;
            list_messages(&req, &env, &ConversationId::parse(&id)?, &me).await
        }),
        (Route::BotMessages(sb, id), Method::Post) => arm(async move {
            let me = bot(&req, &env, &sb)?;
            let body: BotCreateMessage = parse(&mut req).await?;
            let cmd = C::SendMessage {
                content: body.content,
                in_reply_to_message_id: body.in_reply_to_message_id,
                client_id: body.client_id,
            };
            to_conversation(&env, &ConversationId::parse(&id)?, &me, cmd).await
        }),
        (Route::BotMessage(sb, id, mid), Method::Patch) => arm(async move {
            let me = bot(&req, &env, &sb)?;
            let body: BotEditMessage = parse(&mut req).await?;
            let mid = MessageId::parse(&mid)?.into_string();
            to_conversation(
                &env,
                &ConversationId::parse(&id)?,
                &me,
                C::EditMessage { message_id: mid, content: body.content, timestamp: body.timestamp },
            )
            .await
        }),
        (Route::BotMessage(sb, id, mid), Method::Delete) => arm(async move {
            let me = bot(&req, &env, &sb)?;
            let mid = MessageId::parse(&mid)?.into_string();
            to_conversation(&env, &ConversationId::parse(&id)?, &me, C::DeleteMessage { message_id: mid }).await
        }),
        (Route::BotSandboxUsers(sb), Method::Put) => arm(async move {
            bot(&req, &env, &sb)?;
            let body: SetSandboxUsers = parse(&mut req).await?;
            set_sandbox_users(&env, &sb, body.users).await
        }),
        (Route::OperatorSandboxUsers(sb), Method::Put) => arm(async move {
            operator(&req, &env)?;
            validate::sandbox_id(&sb)?;
            let body: SetSandboxUsers = parse(&mut req).await?;
            set_sandbox_users(&env, &sb, body.users).await
        }),
        (Route::BotProfile(sb), Method::Get) => arm(async move {
            bot(&req, &env, &sb)?;
            json(200, &json!({"sandboxId": sb, "label": profiles::label(&env, &sb).await?}))
        }),
        (Route::BotProfile(sb), Method::Put) => arm(async move {
            bot(&req, &env, &sb)?;
            let body: SetProfile = parse(&mut req).await?;
            let label = validate::sandbox_label(&body.label)?;
            profiles::set_label(&env, &sb, &label, platform::now_ms()).await?;
            json(200, &json!({"sandboxId": sb, "label": label}))
        }),
        (_, _) => return Err(ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this path")),
    })
}

// --------------------------------------------------------------------------------------------------
// Helpers
// --------------------------------------------------------------------------------------------------

pub(super) async fn parse<T: serde::de::DeserializeOwned>(req: &mut Request) -> Result<T, ApiError> {
    let bytes = json_body_bytes(req).await?;
    parse_body(&bytes)
}

pub(super) fn required_query(req: &Request, name: &str) -> Result<String, ApiError> {
    query(req, name)?.ok_or_else(|| ApiError::invalid(format!("{name}: query parameter is required")))
}

/// Forwards the command to the conversation (its id parsed at the edge); the object's answer is
/// the answer.
pub(super) async fn to_conversation(env: &Env, id: &ConversationId, me: &str, cmd: C) -> Answer {
    rpc::conversation(env, id, me, cmd).await
}
