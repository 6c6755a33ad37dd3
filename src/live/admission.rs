//! Who may use the live channel: the conversation's answer to `Get` (a member sees it) and the
//! bot's status, asked once per publish or subscription. The rules are `switchboard_live::admission`.

use super::LiveChannelObject;
use crate::rpc::{ConversationCall, ConversationCommand, MemberCommand, CONVERSATIONS, MEMBERS};
use switchboard_core::MemberId;
use switchboard_live::admission::{self, BotSeen, ConversationSeen, Refusal};
use switchboard_worker_kit::call::{call, stub};

impl LiveChannelObject {
    /// May `member` use this conversation's live channel? Answers the sandbox id.
    pub(super) async fn admit(&self, conversation: &str, member: &str) -> Result<String, Refusal> {
        let get = ConversationCall { caller: member.to_string(), command: ConversationCommand::Get };
        let conversation_stub = stub(&self.env, CONVERSATIONS, conversation).map_err(Refusal::Fault)?;
        let seen: ConversationSeen = call(&conversation_stub, &get).await.map_err(admission::conversation_refused)?;
        let bot = MemberId::bot(&seen.sandbox_id).map_err(Refusal::Fault)?.to_string();
        let bot_stub = stub(&self.env, MEMBERS, &bot).map_err(Refusal::Fault)?;
        let status: BotSeen = call(&bot_stub, &MemberCommand::GetBotStatus).await.map_err(Refusal::Fault)?;
        admission::bot_status(status)?;
        Ok(seen.sandbox_id)
    }
}
