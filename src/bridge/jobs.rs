//! The slow work of a bridge object, done in order by its one pump: committing the room's events to the
//! conversation (`BridgeIngest`), reporting its state (`BridgeStatus`), Kosmi's login, Kick's HTTP sends.

use super::{clock, kick, kosmi, Inner, Job};
use crate::rpc::{ConversationCall, ConversationCommand, CONVERSATIONS};
use serde_json::Value;
use std::rc::Rc;
use switchboard_bridge::event::BridgeEvent;
use switchboard_conversation::commands::{BridgeStatus, Ingest};
use switchboard_core::backoff::{Backoff, BackoffPolicy};
use switchboard_core::{ApiError, ErrorCode};
use switchboard_worker_kit::call::{call, stub};

/// An ingest or a report that failed for a reason other than the bridge being gone is tried this many times...
const CONVERSATION_ATTEMPTS: u32 = 6;
/// ...waiting between tries (jittered, `CONVERSATION_BACKOFF`): a conversation object being reset by a deploy or
/// overloaded is given about half a minute, the room's later events waiting behind (order is kept).
const CONVERSATION_BACKOFF: BackoffPolicy = BackoffPolicy { initial_ms: 500, cap_ms: 10_000, stable_ms: 0 };

impl Inner {
    pub(crate) async fn run_job(self: &Rc<Self>, job: Job) {
        match job {
            Job::Ingest(event) => {
                let Some(item) = ingest_item(event) else { return };
                let Some(bridge_id) = self.bridge_id() else { return };
                self.to_conversation(ConversationCommand::BridgeIngest { bridge_id, item }).await;
            }
            Job::Status => self.report().await,
            Job::Login => {
                let token = kosmi::login(&self.env).await;
                match &token {
                    Ok(t) => self.save_token(Some(t)),
                    Err(e) => {
                        worker::console_warn!("kosmi login: {e}");
                        self.reason.replace(Some(format!("login failed: {e}")));
                    }
                }
                let (now, random) = clock();
                self.step(|m| m.login(token.ok(), now, random));
            }
            Job::KickPost { message_id, sender_id, text } => {
                let changed = kick::post(self, &message_id, &sender_id, &text).await;
                if changed {
                    self.report().await;
                }
            }
        }
    }

    fn bridge_id(&self) -> Option<String> {
        self.config.borrow().as_ref().map(|c| c.bridge_id.clone())
    }

    /// Reports the state, reason and counters if the state or reason changed since the last report.
    async fn report(self: &Rc<Self>) {
        let status = {
            let machine_state = match self.current_state() {
                Some(s) => s,
                None => return,
            };
            let reason = match (self.reason.borrow().clone(), self.outbound_note.borrow().clone()) {
                (Some(r), Some(n)) => Some(format!("{r}; {n}")),
                (r, n) => r.or(n),
            };
            if self.reported.borrow().as_ref() == Some(&(machine_state.to_string(), reason.clone())) {
                return;
            }
            let config = self.config.borrow();
            let Some(c) = config.as_ref() else { return };
            BridgeStatus {
                state: machine_state.to_string(),
                reason,
                last_event_at: c.last_event_at,
                received: c.received,
                relayed: c.relayed,
            }
        };
        let Some(bridge_id) = self.bridge_id() else { return };
        let reported = (status.state.clone(), status.reason.clone());
        if self.to_conversation(ConversationCommand::BridgeStatus { bridge_id, status }).await {
            self.reported.replace(Some(reported));
        }
    }

    /// Sends a command to the conversation as the platform; true when it was taken. A conversation that does not
    /// know this bridge any more (unlinked, or gone) stops it for good.
    async fn to_conversation(self: &Rc<Self>, command: ConversationCommand) -> bool {
        let Some(conversation_id) = self.config.borrow().as_ref().map(|c| c.conversation_id.clone()) else {
            return false;
        };
        let call_body = ConversationCall { caller: self.platform(), command };
        let mut backoff = Backoff::new(CONVERSATION_BACKOFF);
        for attempt in 1..=CONVERSATION_ATTEMPTS {
            let result: Result<Value, ApiError> = match stub(&self.env, CONVERSATIONS, &conversation_id) {
                Ok(s) => call(&s, &call_body).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => return true,
                Err(e) if e.code == ErrorCode::NotFound => {
                    worker::console_warn!("bridge: the conversation does not know it ({}); stopping", e.message);
                    self.halt().await;
                    return false;
                }
                Err(e) if e.code == ErrorCode::InvalidRequest => {
                    worker::console_error!("bridge: the conversation refused: {}", e.message);
                    return false;
                }
                Err(e) => {
                    worker::console_error!("bridge: call to the conversation failed (attempt {attempt}): {e:?}");
                    if self.halted.get() || attempt == CONVERSATION_ATTEMPTS {
                        return false;
                    }
                    let (now, random) = clock();
                    switchboard_worker_kit::platform::sleep_ms(backoff.failed(now, random)).await;
                    if self.halted.get() {
                        return false;
                    }
                }
            }
        }
        false
    }
}

/// What the conversation is given for an event (`Unknown` is only counted).
fn ingest_item(event: BridgeEvent) -> Option<Ingest> {
    match event {
        BridgeEvent::Message(m) => {
            let source = m.source_json();
            let reply_to_key = m.reply_to_key();
            Some(Ingest::Message {
                idempotency_key: m.idempotency_key,
                sender_id: m.sender_id,
                text: m.text,
                source,
                reply_to_key,
            })
        }
        BridgeEvent::Delete { idempotency_key, .. } => Some(Ingest::Delete { idempotency_key }),
        BridgeEvent::Notice(n) => Some(Ingest::Notice { name: n.event_type().to_string(), payload: n.payload() }),
        BridgeEvent::Unknown { .. } => None,
    }
}
