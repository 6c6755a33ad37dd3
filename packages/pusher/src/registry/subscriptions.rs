//! Subscribing and unsubscribing, with presence membership (`member_added` / `member_removed`).

use super::state::ChannelState;
use super::{subscription_error, unknown_socket, Delivery, Effect, Registry};
use crate::auth::{self, AuthError, PresenceMember, SocketId};
use crate::channel::{self, ChannelKind};
use crate::frame::ServerFrame;
use crate::limits::{MAX_CHANNELS_PER_SOCKET, MAX_PRESENCE_MEMBERS, MAX_RECORD_BYTES};
use crate::webhook::WebhookEvent;

impl Registry {
    /// `pusher:subscribe`. Verifies `auth` (and the `channel_data` signed with it) against the socket
    /// id. Presence channels need `channel_data` (the member). A private channel's auth may name
    /// the member it was signed for (`auth::verify_private`; ours always does), kept as
    /// `signed_for` so that a member's departure closes only that member's sockets. Subscribing
    /// again to a channel the socket is in answers `subscription_succeeded` again and changes nothing.
    pub fn subscribe(
        &mut self,
        socket: &SocketId,
        name: &str,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) -> Vec<Effect> {
        let Some(state) = self.sockets.get(socket) else { return unknown_socket(socket) };
        let kind = match channel::validate(name) {
            Ok(k) => k,
            Err(e) => return subscription_error(socket, name, "InvalidChannel", &format!("channel name {e}"), 400),
        };
        if kind == ChannelKind::PrivateEncrypted {
            return subscription_error(
                socket,
                name,
                "UnsupportedChannel",
                "end-to-end encrypted channels are not supported",
                400,
            );
        }
        if state.channels.contains_key(name) {
            let data = self.channels.get(name).map(ChannelState::presence_data);
            let data_json = if kind == ChannelKind::Presence { data.unwrap_or_default() } else { "{}".into() };
            return vec![Effect::Send {
                socket: socket.clone(),
                frame: ServerFrame::SubscriptionSucceeded { channel: name, data_json: &data_json }.encode(),
            }];
        }
        if state.channels.len() >= MAX_CHANNELS_PER_SOCKET {
            return subscription_error(
                socket,
                name,
                "LimitReached",
                &format!("a connection may be subscribed to at most {MAX_CHANNELS_PER_SOCKET} channels"),
                403,
            );
        }
        let verified = match kind {
            ChannelKind::Private => auth::verify_private(&self.app, auth, socket.as_str(), name, channel_data),
            ChannelKind::Presence => {
                auth::verify_channel(&self.app, auth, socket.as_str(), name, channel_data).map(|()| None)
            }
            _ => Ok(None),
        };
        let signed_for = match verified {
            Ok(m) => m,
            Err(e @ AuthError::InvalidChannelData(_)) => {
                return subscription_error(socket, name, "AuthError", &e.to_string(), 400)
            }
            Err(e) => return subscription_error(socket, name, "AuthError", &e.to_string(), 403),
        };
        let member = if kind == ChannelKind::Presence {
            let parsed = match channel_data {
                Some(cd) => auth::parse_channel_data(cd),
                None => Err(AuthError::InvalidChannelData("required for presence channels".into())),
            };
            match parsed {
                Ok(m) => Some(m),
                Err(e) => return subscription_error(socket, name, "AuthError", &e.to_string(), 400),
            }
        } else {
            None
        };
        if let Some(m) = &member {
            if let Some(ch) = self.channels.get(name) {
                if !ch.members.contains_key(&m.user_id) && ch.members.len() >= MAX_PRESENCE_MEMBERS {
                    return subscription_error(
                        socket,
                        name,
                        "LimitReached",
                        &format!("a presence channel has at most {MAX_PRESENCE_MEMBERS} members"),
                        403,
                    );
                }
            }
        }
        if self.record_len_with(socket, name, member.as_ref(), signed_for.as_deref()) > MAX_RECORD_BYTES {
            return subscription_error(
                socket,
                name,
                "LimitReached",
                "this connection's subscriptions would not fit in its record; unsubscribe from some channels",
                413,
            );
        }

        // apply
        let mut effects = Vec::new();
        let ch = self.channels.entry(name.to_string()).or_default();
        if ch.sockets.is_empty() {
            effects.push(Effect::Webhook(WebhookEvent::ChannelOccupied { channel: name.to_string() }));
        }
        let mut added_member = false;
        if let Some(m) = &member {
            let socks = ch.members.entry(m.user_id.clone()).or_default();
            added_member = socks.is_empty();
            socks.insert(socket.clone(), m.user_info.clone());
        }
        let others: Vec<SocketId> = ch.sockets.iter().cloned().collect();
        ch.sockets.insert(socket.clone());
        let data_json = if kind == ChannelKind::Presence { ch.presence_data() } else { "{}".to_string() };
        effects.push(Effect::Send {
            socket: socket.clone(),
            frame: ServerFrame::SubscriptionSucceeded { channel: name, data_json: &data_json }.encode(),
        });
        if let (true, Some(m)) = (added_member, &member) {
            if !others.is_empty() {
                effects.push(Effect::Broadcast(Delivery {
                    frame: ServerFrame::MemberAdded {
                        channel: name,
                        user_id: &m.user_id,
                        user_info: m.user_info.as_deref(),
                    }
                    .encode(),
                    sockets: others,
                }));
            }
            effects.push(Effect::Webhook(WebhookEvent::MemberAdded {
                channel: name.to_string(),
                user_id: m.user_id.clone(),
            }));
        }
        if let Some(state) = self.sockets.get_mut(socket) {
            state.channels.insert(name.to_string(), member);
            if let Some(id) = signed_for {
                state.signed_for.insert(name.to_string(), id);
            }
        }
        effects.push(Effect::SaveRecord { socket: socket.clone() });
        effects
    }

    /// `pusher:unsubscribe`. Unsubscribing from a channel the socket is not in does nothing.
    pub fn unsubscribe(&mut self, socket: &SocketId, name: &str) -> Vec<Effect> {
        let Some(state) = self.sockets.get_mut(socket) else { return unknown_socket(socket) };
        let Some(member) = state.channels.remove(name) else { return Vec::new() };
        state.signed_for.remove(name);
        let mut effects = self.leave(socket, name, member);
        effects.push(Effect::SaveRecord { socket: socket.clone() });
        effects
    }

    /// Removes the socket from the channel's state (its own map is the caller's).
    pub(super) fn leave(&mut self, socket: &SocketId, name: &str, member: Option<PresenceMember>) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(ch) = self.channels.get_mut(name) else { return effects };
        ch.sockets.remove(socket);
        if let Some(m) = member {
            let gone = match ch.members.get_mut(&m.user_id) {
                Some(socks) => {
                    socks.remove(socket);
                    socks.is_empty()
                }
                None => false,
            };
            if gone {
                ch.members.remove(&m.user_id);
                if !ch.sockets.is_empty() {
                    effects.push(Effect::Broadcast(Delivery {
                        frame: ServerFrame::MemberRemoved { channel: name, user_id: &m.user_id }.encode(),
                        sockets: ch.sockets.iter().cloned().collect(),
                    }));
                }
                effects.push(Effect::Webhook(WebhookEvent::MemberRemoved {
                    channel: name.to_string(),
                    user_id: m.user_id,
                }));
            }
        }
        if ch.sockets.is_empty() {
            self.channels.remove(name);
            effects.push(Effect::Webhook(WebhookEvent::ChannelVacated { channel: name.to_string() }));
        }
        effects
    }
}
