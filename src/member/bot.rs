//! A bot's status fan-out, one bounded step per alarm run (`switchboard_member::bot_fanout` decides):
//! a step of conversations tells their live channels that the bot went offline and reads who is in
//! them; a step of people tells each `bot.status` on their instance context.

use super::MemberObject;
use crate::platform;
use crate::rpc::{self, ConversationCommand};
use futures::future::join_all;
use switchboard_core::member::MemberId;
use switchboard_core::model::ConversationDetail;
use switchboard_member::bot_fanout::FanoutStep;
use switchboard_member::InstanceEvent;

impl MemberObject {
    /// The next step of a bot status fan-out in progress, if any; the next one is the alarm's.
    pub(super) async fn bot_fanout_step(&self) {
        let step = match self.core.bot_fanout_next() {
            Ok(Some(step)) => step,
            Ok(None) => return,
            Err(e) => return worker::console_error!("bot status fan-out: {e:?}"),
        };
        let (r, effects) = match step {
            FanoutStep::Conversations { sandbox_id, online, at, ids } => {
                let people = self.tell_conversations(&sandbox_id, online, &ids).await;
                self.core.bot_fanout_read(at, &ids, &people, platform::now_ms())
            }
            FanoutStep::People { sandbox_id, online, at, ids } => {
                let event = InstanceEvent::BotStatus { sandbox_id: sandbox_id.clone(), online, at };
                let calls = ids.iter().map(|p| rpc::member(&self.env, p, event.deliver(&sandbox_id)));
                for (p, r) in ids.iter().zip(join_all(calls).await) {
                    if let Err(e) = r {
                        worker::console_error!("bot.status to {p}: {e}");
                    }
                }
                self.core.bot_fanout_told(at, &ids, platform::now_ms())
            }
        };
        if let Err(e) = r {
            worker::console_error!("bot status fan-out: {e:?}");
        }
        if let Some(at) = effects.alarm_at {
            self.alarm.ensure(&self.state.storage(), at).await;
        }
    }

    /// Tells these conversations' live channels when the bot went offline; answers the people in
    /// them (a conversation that cannot be read is logged and skipped).
    async fn tell_conversations(&self, sandbox_id: &str, online: bool, ids: &[String]) -> Vec<String> {
        if !online {
            let calls = ids.iter().map(|c| rpc::live_call(&self.env, c, "/bot-offline"));
            for (c, r) in ids.iter().zip(join_all(calls).await) {
                if let Err(e) = r {
                    worker::console_error!("bot offline to the live channel of {c}: {e}");
                }
            }
        }
        let Ok(bot) = MemberId::bot(sandbox_id).map(|b| b.to_string()) else { return Vec::new() };
        let reads = ids.iter().map(|c| rpc::conversation(&self.env, c, &bot, ConversationCommand::Get));
        let mut people = Vec::new();
        for (c, r) in ids.iter().zip(join_all(reads).await) {
            let detail = match r {
                Ok(resp) => rpc::read(resp).await,
                Err(e) => Err(e),
            };
            match detail.map(|(status, body)| (status, serde_json::from_value::<ConversationDetail>(body))) {
                Ok((200, Ok(d))) => people.extend(d.members.into_iter().filter(|m| m.kind == "user").map(|m| m.id)),
                Ok((status, _)) => worker::console_error!("bot status: conversation {c} answered {status}"),
                Err(e) => worker::console_error!("bot status: conversation {c}: {e}"),
            }
        }
        people
    }
}
