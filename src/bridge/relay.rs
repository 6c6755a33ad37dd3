//! The conversation's side: carrying out its bridge effects (linked → `Start`, unlinked → `Stop`, a member's
//! message → `Relay`) on the bridge objects, in the background and in commit order.

use super::{object_name, BridgeCommand, BRIDGES};
use switchboard_conversation::effects::{BridgeStart, OutboundRelay};
use switchboard_worker_kit::call::{call, stub};
use worker::{Env, State};

/// Sends each bridge object its command, one after the other, in `wait_until` (a failure is logged; an object
/// that missed its `Start` is started by the next one, and a bridge never started has nothing to stop).
pub fn carry_out(
    state: &State,
    env: &Env,
    conversation_id: Option<String>,
    started: Vec<BridgeStart>,
    stopped: Vec<String>,
    relays: Vec<OutboundRelay>,
) {
    if started.is_empty() && stopped.is_empty() && relays.is_empty() {
        return;
    }
    let Some(conversation_id) = conversation_id else {
        worker::console_error!("bridge effects without a conversation id");
        return;
    };
    let mut commands: Vec<(String, BridgeCommand)> = Vec::new();
    for s in started {
        let name = object_name(&conversation_id, &s.bridge_id);
        let command =
            BridgeCommand::Start { conversation_id: conversation_id.clone(), bridge_id: s.bridge_id, link: s.link };
        commands.push((name, command));
    }
    for r in relays {
        let name = object_name(&conversation_id, &r.bridge_id);
        commands.push((name, BridgeCommand::Relay { message_id: r.message_id, sender_id: r.sender_id, text: r.text }));
    }
    for id in stopped {
        commands.push((object_name(&conversation_id, &id), BridgeCommand::Stop));
    }
    let env = env.clone();
    state.wait_until(async move {
        for (name, command) in commands {
            let result: Result<serde_json::Value, _> = match stub(&env, BRIDGES, &name) {
                Ok(s) => call(&s, &command).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                worker::console_error!("bridge {name}: {e:?}");
            }
        }
    });
}
