//! `client-*` events: the relay to the other subscribers and the per-socket rate limit.

use super::{error_frame, unknown_socket, Delivery, Effect, Registry};
use crate::auth::SocketId;
use crate::channel;
use crate::frame::ServerFrame;
use crate::limits::{
    error_code, CLIENT_EVENTS_PER_SEC, CLIENT_EVENT_BURST, MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS, MAX_EVENT_DATA_BYTES,
};
use crate::webhook::WebhookEvent;
use switchboard_core::rate::{Bucket, Rate};

/// The client events' rate: `CLIENT_EVENTS_PER_SEC`, bursts of `CLIENT_EVENT_BURST`.
const CLIENT_EVENTS: Rate = Rate::per_sec(CLIENT_EVENTS_PER_SEC, CLIENT_EVENT_BURST);

impl Registry {
    /// A `client-*` event from a socket at `now_ms` (see the module comment for the rules).
    pub fn client_event(&mut self, socket: &SocketId, name: &str, event: &str, data: &str, now_ms: u64) -> Vec<Effect> {
        let Some(state) = self.sockets.get_mut(socket) else { return unknown_socket(socket) };
        let now = now_ms.min(i64::MAX as u64) as i64;
        let bucket = state.bucket.get_or_insert_with(|| Bucket::full(CLIENT_EVENTS, now));
        if bucket.take(CLIENT_EVENTS, now).is_err() {
            state.refused_in_a_row = state.refused_in_a_row.saturating_add(1);
            if state.refused_in_a_row >= MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS {
                return self.close_flooding(socket, "too many client events");
            }
            return vec![error_frame(
                socket,
                Some(error_code::CLIENT_EVENT_RATE_LIMIT),
                &format!("client event rejected: more than {CLIENT_EVENTS_PER_SEC} per second"),
            )];
        }
        state.refused_in_a_row = 0;
        let refuse = |m: String| vec![error_frame(socket, None, &format!("client event rejected: {m}"))];
        if let Err(e) = channel::validate_client_event_name(event) {
            return refuse(format!("event name {e}"));
        }
        if !channel::kind(name).allows_client_events() {
            return refuse(format!("client events are only allowed on private and presence channels, not `{name}`"));
        }
        let member = match state.channels.get(name) {
            Some(m) => m.clone(),
            None => return refuse(format!("not subscribed to `{name}`")),
        };
        if data.len() > MAX_EVENT_DATA_BYTES {
            return refuse(format!("data is larger than {MAX_EVENT_DATA_BYTES} bytes"));
        }
        let user_id = member.map(|m| m.user_id);
        let mut effects = Vec::new();
        let recipients: Vec<SocketId> = self
            .channels
            .get(name)
            .map(|ch| ch.sockets.iter().filter(|s| *s != socket).cloned().collect())
            .unwrap_or_default();
        if !recipients.is_empty() {
            effects.push(Effect::Broadcast(Delivery {
                frame: ServerFrame::Event { channel: name, event, data, user_id: user_id.as_deref() }.encode(),
                sockets: recipients,
            }));
        }
        effects.push(Effect::Webhook(WebhookEvent::ClientEvent {
            channel: name.to_string(),
            event: event.to_string(),
            data: data.to_string(),
            socket_id: socket.to_string(),
            user_id,
        }));
        effects
    }
}
