//! The alarm: the state machine's two halves around its calls: the pushes it hands out (to the
//! notifications worker) and the list flush's batch (to members' objects; a reconcile's batch
//! carries the whole entry, then members who left meanwhile are told to remove it again).

use super::ConversationObject;
use crate::notifications;
use crate::platform;
use crate::rpc::{self, MemberCommand};
use futures::future::join_all;
use switchboard_conversation::alarm::{FlushBatch, FLUSH_CONCURRENCY};
use switchboard_conversation::push::{PushSettled, PUSH_CLAIM_MS};
use switchboard_member::ListRepair;
use switchboard_notify_contract::SendPushForConversation;

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
        if !start.pushes.is_empty() {
            // Stored before any push is sent: if this run is cut short (a restart, an eviction),
            // the alarm still fires when the claim ends and the pushes are handed out again.
            self.ensure_alarm(now + PUSH_CLAIM_MS).await;
        }
        self.deliver_pushes(start.pushes).await;
        let failed = match &start.flush {
            Some(batch) => {
                let failed = self.flush(batch).await;
                self.remove_left(batch).await;
                failed
            }
            None => Vec::new(),
        };
        let outcome = start.flush.as_ref().map(|batch| (batch, failed.as_slice()));
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

    /// Delivers the pushes the alarm handed out, at once, and records how each went (a failure is
    /// retried with backoff, then dead-lettered: `switchboard_conversation::push`).
    async fn deliver_pushes(&self, pushes: Vec<SendPushForConversation>) {
        let env = &self.env;
        let sends = pushes.iter().map(|request| async move {
            let answer = notifications::send_push(env, request).await;
            if let Ok(result) = &answer {
                notifications::announce_badges(env, &request.sandbox_id, &request.conversation_id, result).await;
            }
            answer
        });
        let answers = join_all(sends).await;
        for (request, answer) in pushes.iter().zip(answers) {
            let now = platform::now_ms();
            match self.core.push_settled(request, &answer, now, platform::random_u128() as u64) {
                Ok(PushSettled::Retry { at, attempts }) => {
                    worker::console_error!(
                        "push for message {} failed (attempt {attempts}); retry at {at}",
                        request.message_id
                    );
                }
                Ok(PushSettled::Held { at }) => {
                    worker::console_log!(
                        "push for message {} held by an earlier attempt; asked again at {at}",
                        request.message_id
                    );
                }
                Ok(PushSettled::Dead { attempts }) => {
                    let dead = self.core.dead_pushes().unwrap_or(-1);
                    worker::console_error!(
                        "push for message {} dead-lettered after {attempts} attempts ({dead} dead in conversation {})",
                        request.message_id,
                        request.conversation_id
                    );
                }
                Ok(_) => {}
                Err(e) => worker::console_error!("push settle: {e:?}"),
            }
        }
    }

    /// Tells one batch of members' objects the conversation's title and last activity; answers
    /// the members whose object failed (each is tried again alone; the others are done).
    async fn flush(&self, batch: &FlushBatch) -> Vec<String> {
        let mut failed = Vec::new();
        for (c, chunk) in batch.members.chunks(FLUSH_CONCURRENCY).enumerate() {
            let calls = chunk.iter().enumerate().map(|(i, m)| {
                // A reconcile tells the whole entry, so a member's object that lost it adds it back.
                let repair = batch.repair.as_ref().and_then(|r| {
                    let joined_at = *r.joined_at.get(c * FLUSH_CONCURRENCY + i)?;
                    Some(ListRepair { sandbox_id: r.sandbox_id.clone(), joined_at })
                });
                let touch = MemberCommand::Touch {
                    conversation_id: batch.conversation_id.clone(),
                    title: batch.title.clone(),
                    last_activity_at: batch.last_activity_at,
                    repair,
                };
                rpc::member(&self.env, m, touch)
            });
            for (m, r) in chunk.iter().zip(join_all(calls).await) {
                match r {
                    Ok(resp) if resp.status_code() < 300 => {}
                    Ok(resp) => {
                        worker::console_error!("list flush to {m} answered {}", resp.status_code());
                        failed.push(m.clone());
                    }
                    Err(e) => {
                        worker::console_error!("list flush to {m}: {e}");
                        failed.push(m.clone());
                    }
                }
            }
        }
        failed
    }

    /// After a reconcile batch: members who left while it was on its way are told to remove the
    /// entry again (the reconcile may have added it back after their leave removed it).
    async fn remove_left(&self, batch: &FlushBatch) {
        let left = match self.core.left_during(batch) {
            Ok(l) => l,
            Err(e) => {
                worker::console_error!("reconcile: who left: {e:?}");
                return;
            }
        };
        for m in left {
            let remove = MemberCommand::Remove { conversation_id: batch.conversation_id.clone(), removed_by: None };
            if let Err(e) = rpc::member(&self.env, &m, remove).await {
                worker::console_error!("reconcile: remove for {m}, who left: {e}");
            }
        }
    }
}
