//! A bot's status: recorded in its member object, which tells its conversations' live channels when
//! it goes offline, and every person who shares a conversation with it (`src/member/bot.rs`).

use crate::http::{internal, json, Answer};
use crate::platform;
use crate::rpc::{self, ConversationCommand as C, MemberCommand};
use switchboard_core::ids::ConversationId;
use switchboard_core::member::MemberId;
use switchboard_core::model::ConversationDetail;
use switchboard_core::requests::*;
use switchboard_member::commands::BotStatusAnswer;
use switchboard_member::InstanceEvent;
use worker::Env;

/// Records the bot's status; when it goes offline, every live channel of its conversations closes
/// its subscribers (4002) and stops its publishes (told from the bot's object, at once).
pub(super) async fn set_bot_status(env: &Env, sandbox_id: &str, me: &str, body: SetBotStatus) -> Answer {
    let at = body.at.unwrap_or_else(platform::now_ms);
    let cmd = MemberCommand::SetBotStatus { online: body.online, at };
    let (status, answer) = rpc::read(rpc::member(env, me, cmd).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &answer));
    }
    let answer: BotStatusAnswer = serde_json::from_value(answer).map_err(|e| internal("bot status answer", e))?;
    if answer.stale {
        // Older than the stored status: nothing changed, nobody is told; the stored status is the answer.
        return json(200, &serde_json::json!({"sandboxId": sandbox_id, "online": answer.online, "at": answer.at}));
    }
    // Its conversations' live channels and the people in them are told by the bot's object, in
    // bounded steps from its alarm (`switchboard_member::bot_fanout`).
    let event = InstanceEvent::BotStatus { sandbox_id: sandbox_id.to_string(), online: body.online, at };
    json(200, &event.payload())
}

/// The bot's recorded status, `{sandboxId, online, at}` (never reported: offline, `at: null`).
pub(super) async fn bot_status(env: &Env, sandbox_id: &str) -> Answer {
    let member = MemberId::bot(sandbox_id)?.to_string();
    let (status, body) = rpc::read(rpc::member(env, &member, MemberCommand::GetBotStatus).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &body));
    }
    let status: BotStatusAnswer = serde_json::from_value(body).map_err(|e| internal("bot status answer", e))?;
    json(200, &serde_json::json!({"sandboxId": sandbox_id, "online": status.online, "at": status.at}))
}

/// `GET /v1/conversations/:id/bot-status`: the current status of the conversation's bot, for its
/// members (the conversation answers 403/404 to anyone else), not only its changes (`bot.status`).
pub(super) async fn conversation_bot_status(env: &Env, id: &ConversationId, me: &str) -> Answer {
    let (status, detail) = rpc::read(rpc::conversation(env, id, me, C::Get).await?).await?;
    if status >= 300 {
        return Err(rpc::as_error(status, &detail));
    }
    let detail: ConversationDetail = serde_json::from_value(detail).map_err(|e| internal("conversation detail", e))?;
    bot_status(env, &detail.sandbox_id).await
}
