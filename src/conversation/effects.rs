//! Carrying out what the conversation's state machine answered: the synchronous part at once
//! (broadcasts, closes, the push in the background, queueing hub deliveries) and the rest after
//! (the alarm, the hub pump).

use super::ConversationObject;
use crate::platform;
use crate::rpc::{self, MemberCommand};
use futures::future::join_all;
use std::cell::Cell;
use std::rc::Rc;
use switchboard_conversation::hub_retry::Failed;
use switchboard_conversation::Effects;
use worker::Stub;

/// What is left of the effects after the synchronous part: the latest time the alarm may fire.
pub(super) struct Later {
    alarm_at: Option<i64>,
}

/// Clears the pumping flag however the pump ends.
struct PumpGuard<'a>(&'a Cell<bool>);

impl Drop for PumpGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl ConversationObject {
    /// Sends every frame to every socket, closes what must close, and queues the hubs' events.
    pub(super) fn effect_now(&self, effects: Effects) -> Later {
        if let Some(tick) = self.batcher.broadcast(effects.broadcast) {
            self.state.wait_until(tick);
        }
        if !effects.close_member.is_empty() {
            // A closed socket still gets the events committed before its close.
            self.batcher.flush();
        }
        for (member, code, reason) in &effects.close_member {
            platform::close_sockets_of(&self.raw_state, member, *code, reason);
        }
        if let Some(member) = &effects.unwatched {
            self.stubs.borrow_mut().remove(member);
        }
        // `effects.push` was recorded in the push outbox with its message: the alarm delivers it.
        if !effects.to_hubs.is_empty() {
            let mut outbox = self.outbox.borrow_mut();
            let replaced = outbox.replaced;
            for d in effects.to_hubs {
                outbox.push(d);
            }
            if outbox.replaced > replaced {
                worker::console_error!(
                    "hub outbox full ({} queued): {} event(s) replaced by context.resync ({} in all; {} typing/presence dropped)",
                    outbox.len(),
                    outbox.replaced - replaced,
                    outbox.replaced,
                    outbox.dropped
                );
            }
        }
        let (started, stopped, relays) = (effects.bridges_started, effects.bridges_stopped, effects.to_bridges);
        if !(started.is_empty() && stopped.is_empty() && relays.is_empty()) {
            let id = self.core.meta().ok().flatten().map(|m| m.id);
            crate::bridge::relay::carry_out(&self.state, &self.env, id, started, stopped, relays);
        }
        Later { alarm_at: effects.alarm_at }
    }

    pub(super) async fn effect_later(&self, later: Later) {
        if let Some(at) = later.alarm_at {
            self.ensure_alarm(at).await;
        }
        self.pump().await;
    }

    /// Moves the alarm earlier to `wanted` (never later).
    pub(super) async fn ensure_alarm(&self, wanted: i64) {
        self.alarm.ensure(&self.state.storage(), wanted).await;
    }

    /// Drains the outbox to the hubs that watched each event: what queued up meanwhile goes in one
    /// call per watcher (`deliver_all`, `HubOutbox::take_calls`), one round at a time so each hub
    /// sees this conversation's events in order. A pump already running picks up what we queued.
    /// A hub a call fails to reach is owed a `context.resync` (`hub_retry`): it is sent nothing
    /// else until the notice is taken, which the alarm tries again with backoff.
    pub(super) async fn pump(&self) {
        let now = platform::now_ms();
        if self.pumping.get() || (self.outbox.borrow().is_empty() && !self.hub_retry.borrow().has_due(now)) {
            return;
        }
        self.pumping.set(true);
        let _guard = PumpGuard(&self.pumping);
        self.send_owed_notices().await;
        loop {
            let calls = self.outbox.borrow_mut().take_calls();
            if calls.is_empty() {
                break;
            }
            let mut sends = Vec::new();
            for call in calls {
                let contexts: Vec<String> = call.events.iter().map(|d| d.context.clone()).collect();
                let body = match serde_json::to_string(&MemberCommand::DeliverAll { events: call.events }) {
                    Ok(b) => b,
                    Err(_) => continue,
                };
                for w in call.watchers {
                    if self.hub_retry.borrow().is_owed(&w) {
                        continue; // what it misses is what its notice covers
                    }
                    let Some(s) = self.stub_for(&w) else { continue };
                    let (body, contexts) = (body.clone(), contexts.clone());
                    sends.push(async move { (w, contexts, delivered(rpc::post_to(&s, body).await)) });
                }
            }
            for (watcher, contexts, ok) in join_all(sends).await {
                if let Err(e) = ok {
                    self.hub_failed(&watcher, contexts, &e);
                }
            }
        }
        let retry_at = self.hub_retry.borrow().next_at();
        if let Some(at) = retry_at {
            self.alarm.ensure(&self.state.storage(), at).await;
        }
    }

    /// The `context.resync` notices owed to hubs and due now.
    async fn send_owed_notices(&self) {
        let due = self.hub_retry.borrow().due(platform::now_ms());
        let mut sends = Vec::new();
        for (watcher, notices) in due {
            let contexts: Vec<String> = notices.iter().map(|d| d.context.clone()).collect();
            let Ok(body) = serde_json::to_string(&MemberCommand::DeliverAll { events: notices }) else { continue };
            let Some(s) = self.stub_for(&watcher) else { continue };
            sends.push(async move { (watcher, contexts, delivered(rpc::post_to(&s, body).await)) });
        }
        for (watcher, contexts, ok) in join_all(sends).await {
            match ok {
                Ok(()) => self.hub_retry.borrow_mut().delivered(&watcher),
                Err(e) => self.hub_failed(&watcher, contexts, &e),
            }
        }
    }

    fn hub_failed(&self, watcher: &str, contexts: Vec<String>, error: &str) {
        let (failed, evicted) = self.hub_retry.borrow_mut().failed(watcher, contexts, platform::now_ms());
        match failed {
            Failed::Owed { retry_at } => {
                worker::console_error!("deliver to hub {watcher}: {error}; a context.resync is owed (at {retry_at})")
            }
            Failed::GivenUp => {
                worker::console_error!("deliver to hub {watcher}: {error}; given up: it lost events without a notice")
            }
        }
        for w in evicted {
            worker::console_error!("hub {w}: too many hubs owed a notice; given up: it lost events without a notice");
        }
    }

    fn stub_for(&self, member: &str) -> Option<Rc<Stub>> {
        if let Some(s) = self.stubs.borrow().get(member) {
            return Some(s.clone());
        }
        // A relay watcher (the Pusher endpoint's object) takes the same `deliver` command.
        let stub = match crate::pusher::relay_stub(&self.env, member) {
            Some(relay) => Rc::new(relay.ok()?),
            None => Rc::new(rpc::member_stub(&self.env, member).ok()?),
        };
        self.stubs.borrow_mut().insert(member.to_string(), stub.clone());
        Some(stub)
    }
}

/// Whether a hub took a call: an answer other than 2xx is a failure too.
fn delivered(r: Result<worker::Response, switchboard_core::ApiError>) -> Result<(), String> {
    match r {
        Ok(resp) if resp.status_code() < 300 => Ok(()),
        Ok(resp) => Err(format!("answered {}", resp.status_code())),
        Err(e) => Err(e.to_string()),
    }
}
