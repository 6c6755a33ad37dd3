//! What a committed command asks the Durable Object to do. The shell carries these out in order
//! after the transaction committed; a failed command has none.

use serde_json::Value;
use std::rc::Rc;
use switchboard_notify_contract::SendPushForConversation;

#[derive(Debug, Default)]
pub struct Effects {
    /// Frames for every socket of the conversation, in commit order; each encoded once.
    pub broadcast: Vec<String>,
    /// Events for the hubs of the members who watched when the event committed, in order.
    pub to_hubs: Vec<HubDelivery>,
    /// The push this command recorded for the members who are not looking (in `push_outbox`, in
    /// the same transaction; the alarm delivers it, so the shell does nothing with it).
    pub push: Option<SendPushForConversation>,
    /// Close every socket of this member with this code and reason.
    pub close_member: Vec<(String, u16, &'static str)>,
    /// A hub stopped watching: the shell may forget its cached stub.
    pub unwatched: Option<String>,
    /// The alarm must fire no later than this (epoch ms).
    pub alarm_at: Option<i64>,
    /// Bridges to start (linked) and stop (unlinked).
    pub bridges_started: Vec<BridgeStart>,
    pub bridges_stopped: Vec<String>,
    /// A member's message for the bridges that relay outbound.
    pub to_bridges: Vec<OutboundRelay>,
}

/// A bridge just linked: the shell starts its object.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeStart {
    pub bridge_id: String,
    pub link: switchboard_bridge::link::Link,
}

/// A member's message, for one bridge that relays outbound.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRelay {
    pub bridge_id: String,
    pub message_id: String,
    pub sender_id: String,
    pub text: String,
}

impl Effects {
    /// Asks for the alarm no later than `at`.
    pub fn alarm_by(&mut self, at: i64) {
        self.alarm_at = Some(self.alarm_at.map_or(at, |t| t.min(at)));
    }
}

/// One event for the hubs of watching members (`MemberCommand::Deliver` for each watcher).
#[derive(Debug, Clone)]
pub struct HubDelivery {
    /// The hub context (`switchboard_core::hub::contexts::conversation`).
    pub context: String,
    pub event: &'static str,
    pub payload: Value,
    pub ephemeral: bool,
    /// The members whose hubs watched when the event committed.
    pub watchers: Rc<Vec<String>>,
}
