//! The alarm: the state machine's two halves around the list flush's calls to members' objects.

use super::ConversationObject;
use crate::platform;
use crate::rpc::{self, MemberCommand};
use futures::future::join_all;
use switchboard_conversation::alarm::{FlushBatch, FLUSH_CONCURRENCY};

/// When the alarm's own storage work failed: try again this much later.
const RETRY_MS: i64 = 5_000;

impl ConversationObject {
    pub(super) async fn run_alarm(&self) {
        let now = platform::now_ms();
        let start = match self.core.alarm_start(now) {
            Ok(s) => s,
            Err(e) => {
                worker::console_error!("alarm: {e:?}");
                self.ensure_alarm(now + RETRY_MS).await;
                return;
            }
        };
        let later = self.effect_now(start.effects);
        let outcome = match &start.flush {
            Some(batch) => Some((batch, self.flush(batch).await)),
            None => None,
        };
        match self.core.alarm_finish(platform::now_ms(), outcome) {
            Ok(Some(at)) => self.ensure_alarm(at).await,
            Ok(None) => {}
            Err(e) => {
                worker::console_error!("alarm finish: {e:?}");
                self.ensure_alarm(platform::now_ms() + RETRY_MS).await;
            }
        }
        self.effect_later(later).await;
    }

    /// Tells one batch of members' objects the conversation's title and last activity; answers
    /// whether every call succeeded.
    async fn flush(&self, batch: &FlushBatch) -> bool {
        let mut ok = true;
        for chunk in batch.members.chunks(FLUSH_CONCURRENCY) {
            let calls = chunk.iter().map(|m| {
                let touch = MemberCommand::Touch {
                    conversation_id: batch.conversation_id.clone(),
                    title: batch.title.clone(),
                    last_activity_at: batch.last_activity_at,
                };
                rpc::member(&self.env, m, touch)
            });
            for r in join_all(calls).await {
                match r {
                    Ok(resp) if resp.status_code() < 300 => {}
                    Ok(resp) => {
                        worker::console_error!("list flush answered {}", resp.status_code());
                        ok = false;
                    }
                    Err(e) => {
                        worker::console_error!("list flush: {e}");
                        ok = false;
                    }
                }
            }
        }
        ok
    }
}
