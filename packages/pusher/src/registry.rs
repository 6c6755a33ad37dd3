//! The server's channel state for one app shard: which socket is in which channel, who is present,
//! and what each operation must send.
//!
//! Every operation returns `Effect`s for the shell to carry out in order: send a frame to one socket,
//! send one frame to many (`Delivery`: encoded once, like every broadcast of the service), close a
//! socket, store a socket's record, queue a webhook. Nothing here does I/O.
//!
//! **Who verifies auth.** The registry holds the app's credentials and verifies every `auth`
//! itself (`subscribe`, `signin`): a shell cannot forget to, and the socket id that a signature
//! must name is the registry's own.
//!
//! **Presence.** A presence channel's members are user ids, each with the set of that user's sockets
//! in the channel (a user may have many tabs). `pusher_internal:member_added` goes out only when a
//! user's first socket joins and `member_removed` only when the last one leaves, so two tabs never
//! show as two members; a member's `user_info` is that of their socket with the smallest id (so it
//! does not depend on the order sockets joined, and a rebuilt registry shows the same). At most
//! `MAX_PRESENCE_MEMBERS` users per channel; more are refused (`subscription_error`, 403).
//!
//! **Client events** (`client-*`) go only to private and presence channels the sender is subscribed
//! to, never back to the sender, and carry the sender's presence `user_id` on presence channels. A
//! token bucket per socket in virtual time allows `CLIENT_EVENTS_PER_SEC` (burst
//! `CLIENT_EVENT_BURST`); an event over it is dropped and answered with `pusher:error` 4301. A socket
//! refused `MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS` times in a row is flooding: it is closed with 4100
//! (pusher-js backs off, then reconnects). Other refused client events are answered with a
//! `pusher:error` whose code is `null`.
//!
//! **Rebuilding.** A hibernating Durable Object keeps nothing in memory; each socket keeps its own
//! `SocketRecord` in its attachment (at most `MAX_RECORD_BYTES` as JSON: a subscription that would
//! grow it past that is refused with 413). `Registry::from_records` rebuilds exactly the state that
//! the operations built (property-tested), with no effects: nothing changed. Rate-limit buckets are
//! not recorded and start full, which is only more lenient.

use crate::auth::{self, App, AuthError, PresenceMember, SignedInUser, SocketId};
use crate::channel::{self, ChannelKind};
use crate::frame::{self, ClientFrame, FrameError, ServerFrame};
use crate::http_api::ChannelInfo;
use crate::limits::{
    close, error_code, ACTIVITY_TIMEOUT_SECS, CLIENT_EVENTS_PER_SEC, CLIENT_EVENT_BURST, MAX_CHANNELS_PER_SOCKET,
    MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS, MAX_EVENT_DATA_BYTES, MAX_PRESENCE_MEMBERS, MAX_RECORD_BYTES,
    MAX_SOCKETS_PER_REGISTRY,
};
use crate::webhook::WebhookEvent;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One frame for many sockets, encoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub frame: String,
    pub sockets: Vec<SocketId>,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send {
        socket: SocketId,
        frame: String,
    },
    Broadcast(Delivery),
    /// Close the socket with this code; the registry has already forgotten it.
    Close {
        socket: SocketId,
        code: u16,
        reason: String,
    },
    /// The socket's record changed: store `registry.record(&socket)` in its attachment.
    SaveRecord {
        socket: SocketId,
    },
    Webhook(WebhookEvent),
}

/// One channel of a socket's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChannel {
    pub name: String,
    /// Presence channels: the member this socket is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<PresenceMember>,
}

/// What a socket keeps in its attachment so that the registry can be rebuilt after hibernation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketRecord {
    pub socket_id: SocketId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<SignedInUser>,
    #[serde(default)]
    pub channels: Vec<RecordChannel>,
}

impl SocketRecord {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Option<SocketRecord> {
        if text.len() > MAX_RECORD_BYTES {
            return None;
        }
        serde_json::from_str(text).ok()
    }
}

/// Virtual-time token bucket, in thousandths of a token.
#[derive(Debug, Clone, Copy)]
struct TokenBucket {
    milli_tokens: u64,
    last_ms: u64,
}

impl TokenBucket {
    fn full() -> Self {
        TokenBucket { milli_tokens: CLIENT_EVENT_BURST * 1000, last_ms: 0 }
    }

    fn take(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        // CLIENT_EVENTS_PER_SEC tokens per 1000 ms = CLIENT_EVENTS_PER_SEC milli-tokens per ms
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(CLIENT_EVENTS_PER_SEC))
            .min(CLIENT_EVENT_BURST * 1000);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone)]
struct SocketState {
    user: Option<SignedInUser>,
    /// Channel → the presence member this socket is there (presence channels).
    channels: BTreeMap<String, Option<PresenceMember>>,
    bucket: TokenBucket,
    refused_in_a_row: u32,
}

impl SocketState {
    fn new(user: Option<SignedInUser>) -> Self {
        SocketState { user, channels: BTreeMap::new(), bucket: TokenBucket::full(), refused_in_a_row: 0 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ChannelState {
    sockets: BTreeSet<SocketId>,
    /// Presence channels: user id → that user's sockets here, each with its `user_info`.
    members: BTreeMap<String, BTreeMap<SocketId, Option<String>>>,
}

impl ChannelState {
    fn presence_data(&self) -> String {
        frame::presence_data(
            self.members.iter().map(|(id, socks)| (id.as_str(), socks.values().next().and_then(|i| i.as_deref()))),
        )
    }
}

/// The channel registry of one app shard.
#[derive(Debug, Clone)]
pub struct Registry {
    app: App,
    sockets: BTreeMap<SocketId, SocketState>,
    channels: BTreeMap<String, ChannelState>,
}

fn subscription_error(socket: &SocketId, channel: &str, kind: &str, error: &str, status: u16) -> Vec<Effect> {
    vec![Effect::Send {
        socket: socket.clone(),
        frame: ServerFrame::SubscriptionError { channel, kind, error, status }.encode(),
    }]
}

fn error_frame(socket: &SocketId, code: Option<u16>, message: &str) -> Effect {
    Effect::Send { socket: socket.clone(), frame: ServerFrame::Error { code, message }.encode() }
}

fn unknown_socket(socket: &SocketId) -> Vec<Effect> {
    vec![Effect::Close { socket: socket.clone(), code: close::RECONNECT, reason: "unknown socket: reconnect".into() }]
}

impl Registry {
    pub fn new(app: App) -> Self {
        Registry { app, sockets: BTreeMap::new(), channels: BTreeMap::new() }
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Rebuilds the state the records describe (each socket's attachment). Invalid entries (bad
    /// channel names, encrypted channels, presence channels without a member, beyond the limits,
    /// repeated socket ids) are skipped. No effects: nothing changed.
    pub fn from_records(app: App, records: impl IntoIterator<Item = SocketRecord>) -> Self {
        let mut reg = Registry::new(app);
        for rec in records {
            if reg.sockets.len() >= MAX_SOCKETS_PER_REGISTRY || reg.sockets.contains_key(&rec.socket_id) {
                continue;
            }
            let socket = rec.socket_id;
            let mut state = SocketState::new(rec.user);
            for ch in rec.channels {
                if state.channels.len() >= MAX_CHANNELS_PER_SOCKET || state.channels.contains_key(&ch.name) {
                    continue;
                }
                let member = match (channel::validate(&ch.name), ch.member) {
                    (Ok(ChannelKind::Public | ChannelKind::Private), _) => None,
                    (Ok(ChannelKind::Presence), Some(m)) => Some(m),
                    _ => continue,
                };
                let entry = reg.channels.entry(ch.name.clone()).or_default();
                if let Some(m) = &member {
                    if !entry.members.contains_key(&m.user_id) && entry.members.len() >= MAX_PRESENCE_MEMBERS {
                        if entry.sockets.is_empty() {
                            reg.channels.remove(&ch.name);
                        }
                        continue;
                    }
                    entry.members.entry(m.user_id.clone()).or_default().insert(socket.clone(), m.user_info.clone());
                }
                entry.sockets.insert(socket.clone());
                state.channels.insert(ch.name, member);
            }
            reg.sockets.insert(socket, state);
        }
        reg
    }

    /// The record of a socket, for its attachment.
    pub fn record(&self, socket: &SocketId) -> Option<SocketRecord> {
        let s = self.sockets.get(socket)?;
        Some(SocketRecord {
            socket_id: socket.clone(),
            user: s.user.clone(),
            channels: s
                .channels
                .iter()
                .map(|(name, member)| RecordChannel { name: name.clone(), member: member.clone() })
                .collect(),
        })
    }

    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    pub fn contains(&self, socket: &SocketId) -> bool {
        self.sockets.contains_key(socket)
    }

    /// The user a socket signed in as.
    pub fn user(&self, socket: &SocketId) -> Option<&SignedInUser> {
        self.sockets.get(socket)?.user.as_ref()
    }

    // ---- operations ----------------------------------------------------------------------------------

    /// A socket opened: answers `pusher:connection_established` (or a 4100 close when full).
    pub fn connect(&mut self, socket: SocketId) -> Vec<Effect> {
        if !self.sockets.contains_key(&socket) {
            if self.sockets.len() >= MAX_SOCKETS_PER_REGISTRY {
                return vec![Effect::Close {
                    socket,
                    code: close::OVER_CAPACITY,
                    reason: "over capacity: try again later".into(),
                }];
            }
            self.sockets.insert(socket.clone(), SocketState::new(None));
        }
        vec![
            Effect::Send {
                socket: socket.clone(),
                frame: ServerFrame::ConnectionEstablished {
                    socket_id: socket.as_str(),
                    activity_timeout_secs: ACTIVITY_TIMEOUT_SECS,
                }
                .encode(),
            },
            Effect::SaveRecord { socket },
        ]
    }

    /// A text frame arrived from a socket at `now_ms`.
    pub fn handle_frame(&mut self, socket: &SocketId, text: &str, now_ms: u64) -> Vec<Effect> {
        if !self.sockets.contains_key(socket) {
            return unknown_socket(socket);
        }
        match ClientFrame::parse(text) {
            Err(e @ FrameError::TooLarge { .. }) => {
                let mut effects = self.disconnect(socket);
                effects.insert(
                    0,
                    Effect::Close {
                        socket: socket.clone(),
                        code: e.close_code().unwrap_or(close::MESSAGE_TOO_BIG),
                        reason: e.to_string(),
                    },
                );
                effects
            }
            Err(e) => vec![Effect::Send { socket: socket.clone(), frame: e.to_error_frame() }],
            Ok(ClientFrame::Ping) => vec![Effect::Send { socket: socket.clone(), frame: ServerFrame::Pong.encode() }],
            Ok(ClientFrame::Pong) => Vec::new(),
            Ok(ClientFrame::Subscribe { channel, auth, channel_data }) => {
                self.subscribe(socket, &channel, auth.as_deref(), channel_data.as_deref())
            }
            Ok(ClientFrame::Unsubscribe { channel }) => self.unsubscribe(socket, &channel),
            Ok(ClientFrame::Signin { auth, user_data }) => self.signin(socket, &auth, &user_data),
            Ok(ClientFrame::ClientEvent { event, channel, data }) => {
                self.client_event(socket, &channel, &event, &data, now_ms)
            }
        }
    }

    /// `pusher:subscribe`. Verifies `auth` (and presence `channel_data`) against the socket id.
    /// Subscribing again to a channel the socket is in answers `subscription_succeeded` again and
    /// changes nothing.
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
        let signed_data = if kind == ChannelKind::Presence { channel_data } else { None };
        if kind.needs_auth() {
            if let Err(e) = auth::verify_channel(&self.app, auth, socket.as_str(), name, signed_data) {
                return subscription_error(socket, name, "AuthError", &e.to_string(), 401);
            }
        }
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
        if self.record_len_with(socket, name, member.as_ref()) > MAX_RECORD_BYTES {
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
        }
        effects.push(Effect::SaveRecord { socket: socket.clone() });
        effects
    }

    /// The JSON length of the socket's record with one more channel.
    fn record_len_with(&self, socket: &SocketId, name: &str, member: Option<&PresenceMember>) -> usize {
        match self.record(socket) {
            Some(mut rec) => {
                rec.channels.push(RecordChannel { name: name.to_string(), member: member.cloned() });
                serde_json::to_string(&rec).map(|s| s.len()).unwrap_or(usize::MAX)
            }
            None => usize::MAX,
        }
    }

    /// `pusher:unsubscribe`. Unsubscribing from a channel the socket is not in does nothing.
    pub fn unsubscribe(&mut self, socket: &SocketId, name: &str) -> Vec<Effect> {
        let Some(state) = self.sockets.get_mut(socket) else { return unknown_socket(socket) };
        let Some(member) = state.channels.remove(name) else { return Vec::new() };
        let mut effects = self.leave(socket, name, member);
        effects.push(Effect::SaveRecord { socket: socket.clone() });
        effects
    }

    /// Removes the socket from the channel's state (its own map is the caller's).
    fn leave(&mut self, socket: &SocketId, name: &str, member: Option<PresenceMember>) -> Vec<Effect> {
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

    /// The socket closed (or was closed): leaves every channel. No record to save.
    pub fn disconnect(&mut self, socket: &SocketId) -> Vec<Effect> {
        let Some(state) = self.sockets.remove(socket) else { return Vec::new() };
        let mut effects = Vec::new();
        for (name, member) in state.channels {
            effects.extend(self.leave(socket, &name, member));
        }
        effects
    }

    /// `pusher:signin`. A failed sign-in is answered with `pusher:error` 4009 and the socket is closed
    /// with 4009 (pusher-js does not reconnect on 4000-4099).
    pub fn signin(&mut self, socket: &SocketId, auth: &str, user_data: &str) -> Vec<Effect> {
        if !self.sockets.contains_key(socket) {
            return unknown_socket(socket);
        }
        let refuse = |this: &mut Registry, message: String| {
            let mut effects = vec![
                error_frame(socket, Some(close::UNAUTHORIZED), &message),
                Effect::Close { socket: socket.clone(), code: close::UNAUTHORIZED, reason: message },
            ];
            effects.extend(this.disconnect(socket));
            effects
        };
        let user = match auth::verify_user(&self.app, auth, socket.as_str(), user_data) {
            Ok(u) => u,
            Err(e) => return refuse(self, format!("sign-in refused: {e}")),
        };
        let fits = self.record(socket).is_some_and(|mut rec| {
            rec.user = Some(user.clone());
            serde_json::to_string(&rec).is_ok_and(|s| s.len() <= MAX_RECORD_BYTES)
        });
        if !fits {
            return refuse(self, "sign-in refused: user_data does not fit in the connection's record".into());
        }
        if let Some(s) = self.sockets.get_mut(socket) {
            s.user = Some(user);
        }
        vec![
            Effect::Send { socket: socket.clone(), frame: ServerFrame::SigninSuccess { user_data }.encode() },
            Effect::SaveRecord { socket: socket.clone() },
        ]
    }

    /// A `client-*` event from a socket at `now_ms` (see the module comment for the rules).
    pub fn client_event(&mut self, socket: &SocketId, name: &str, event: &str, data: &str, now_ms: u64) -> Vec<Effect> {
        let Some(state) = self.sockets.get_mut(socket) else { return unknown_socket(socket) };
        if !state.bucket.take(now_ms) {
            state.refused_in_a_row = state.refused_in_a_row.saturating_add(1);
            if state.refused_in_a_row >= MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS {
                let mut effects = vec![Effect::Close {
                    socket: socket.clone(),
                    code: close::OVER_CAPACITY,
                    reason: "too many client events".into(),
                }];
                effects.extend(self.disconnect(socket));
                return effects;
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

    /// An event published through the HTTP API: the one frame and who gets it (every subscriber
    /// but `except`). `None` when nobody does.
    pub fn publish(&self, name: &str, event: &str, data: &str, except: Option<&SocketId>) -> Option<Delivery> {
        let ch = self.channels.get(name)?;
        let sockets: Vec<SocketId> = ch.sockets.iter().filter(|s| Some(*s) != except).cloned().collect();
        if sockets.is_empty() {
            return None;
        }
        Some(Delivery { frame: ServerFrame::Event { channel: name, event, data, user_id: None }.encode(), sockets })
    }

    // ---- queries (the HTTP API) ----------------------------------------------------------------------

    /// One channel's counts (zero when nobody is in it).
    pub fn channel_info(&self, name: &str) -> ChannelInfo {
        let ch = self.channels.get(name);
        ChannelInfo {
            subscription_count: ch.map_or(0, |c| c.sockets.len()),
            user_count: (channel::kind(name) == ChannelKind::Presence).then(|| ch.map_or(0, |c| c.members.len())),
        }
    }

    /// Occupied channels whose names start with `prefix`, in name order.
    pub fn channels(&self, prefix: Option<&str>) -> Vec<(&str, ChannelInfo)> {
        let prefix = prefix.unwrap_or("");
        self.channels
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, _)| (name.as_str(), self.channel_info(name)))
            .collect()
    }

    /// The user ids present in a presence channel, in order.
    pub fn presence_users(&self, name: &str) -> Vec<&str> {
        self.channels.get(name).map(|c| c.members.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    /// The sockets subscribed to a channel.
    pub fn subscribers(&self, name: &str) -> Vec<&SocketId> {
        self.channels.get(name).map(|c| c.sockets.iter().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn app() -> App {
        App::new("1", "key", "secret")
    }

    fn sid(n: u64) -> SocketId {
        SocketId::from_random(n, n)
    }

    fn connected(n: u64) -> (Registry, SocketId) {
        let mut r = Registry::new(app());
        let s = sid(n);
        r.connect(s.clone());
        (r, s)
    }

    fn sub_private(r: &mut Registry, s: &SocketId, ch: &str) -> Vec<Effect> {
        let auth = auth::sign_channel(&app(), s.as_str(), ch, None);
        r.subscribe(s, ch, Some(&auth), None)
    }

    fn sub_presence(r: &mut Registry, s: &SocketId, ch: &str, user: &str, info: Option<&str>) -> Vec<Effect> {
        let cd = match info {
            Some(i) => format!(r#"{{"user_id":"{user}","user_info":{i}}}"#),
            None => format!(r#"{{"user_id":"{user}"}}"#),
        };
        let auth = auth::sign_channel(&app(), s.as_str(), ch, Some(&cd));
        r.subscribe(s, ch, Some(&auth), Some(&cd))
    }

    fn sends_to(effects: &[Effect], socket: &SocketId) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { socket: s, frame } if s == socket => Some(frame.clone()),
                Effect::Broadcast(d) if d.sockets.contains(socket) => Some(d.frame.clone()),
                _ => None,
            })
            .collect()
    }

    fn webhooks(effects: &[Effect]) -> Vec<WebhookEvent> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Webhook(w) => Some(w.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn connect_answers_the_handshake() {
        let mut r = Registry::new(app());
        let s = SocketId::parse("123.456").unwrap();
        assert_eq!(
            r.connect(s.clone()),
            vec![
                Effect::Send {
                    socket: s.clone(),
                    frame: r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":30}"}"#.into()
                },
                Effect::SaveRecord { socket: s.clone() }
            ]
        );
        assert_eq!(
            r.handle_frame(&s, r#"{"event":"pusher:ping","data":{}}"#, 0),
            vec![Effect::Send { socket: s.clone(), frame: r#"{"event":"pusher:pong","data":"{}"}"#.into() }]
        );
        // a stranger is told to reconnect
        assert!(matches!(r.handle_frame(&sid(9), "{}", 0)[..], [Effect::Close { code: 4200, .. }]));
    }

    #[test]
    fn public_subscribe_and_publish() {
        let (mut r, a) = connected(1);
        let b = sid(2);
        r.connect(b.clone());
        let e = r.handle_frame(&a, r#"{"event":"pusher:subscribe","data":{"channel":"news"}}"#, 0);
        assert_eq!(
            e,
            vec![
                Effect::Webhook(WebhookEvent::ChannelOccupied { channel: "news".into() }),
                Effect::Send {
                    socket: a.clone(),
                    frame: r#"{"event":"pusher_internal:subscription_succeeded","channel":"news","data":"{}"}"#.into()
                },
                Effect::SaveRecord { socket: a.clone() },
            ]
        );
        let e = r.subscribe(&b, "news", None, None);
        assert!(webhooks(&e).is_empty());
        let d = r.publish("news", "update", r#"{"x":1}"#, Some(&a)).unwrap();
        assert_eq!(d.sockets, vec![b.clone()]);
        assert_eq!(d.frame, r#"{"event":"update","channel":"news","data":"{\"x\":1}"}"#);
        assert_eq!(r.publish("news", "update", "d", None).unwrap().sockets.len(), 2);
        assert_eq!(r.publish("empty", "update", "d", None), None);
        assert_eq!(r.channel_info("news"), ChannelInfo { subscription_count: 2, user_count: None });
        // leaving
        assert!(webhooks(&r.unsubscribe(&a, "news")).is_empty());
        assert_eq!(webhooks(&r.disconnect(&b)), vec![WebhookEvent::ChannelVacated { channel: "news".into() }]);
        assert_eq!(r.channels(None), vec![]);
        assert_eq!(r.unsubscribe(&a, "news"), vec![]);
    }

    #[test]
    fn private_channels_need_a_valid_auth() {
        let (mut r, a) = connected(1);
        let e = r.subscribe(&a, "private-x", None, None);
        assert_eq!(
            e,
            vec![Effect::Send {
                socket: a.clone(),
                frame: r#"{"event":"pusher:subscription_error","channel":"private-x","data":"{\"type\":\"AuthError\",\"error\":\"auth is required for this channel\",\"status\":401}"}"#.into()
            }]
        );
        // signed for another socket
        let other = auth::sign_channel(&app(), "9.9", "private-x", None);
        assert!(sends_to(&r.subscribe(&a, "private-x", Some(&other), None), &a)[0].contains("invalid signature"));
        assert!(sends_to(&sub_private(&mut r, &a, "private-x"), &a)[0].contains("subscription_succeeded"));
        // encrypted and invalid names are refused
        let auth = auth::sign_channel(&app(), a.as_str(), "private-encrypted-x", None);
        assert!(
            sends_to(&r.subscribe(&a, "private-encrypted-x", Some(&auth), None), &a)[0].contains("UnsupportedChannel")
        );
        assert!(sends_to(&r.subscribe(&a, "bad name", None, None), &a)[0].contains(r#"\"status\":400"#));
    }

    #[test]
    fn presence_two_tabs_are_one_member() {
        let mut r = Registry::new(app());
        let (a1, a2, b) = (sid(1), sid(2), sid(3));
        for s in [&a1, &a2, &b] {
            r.connect(s.clone());
        }
        let ch = "presence-room";
        let e = sub_presence(&mut r, &b, ch, "bob", Some(r#"{"name":"Bob"}"#));
        assert_eq!(
            sends_to(&e, &b),
            vec![r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-room","data":"{\"presence\":{\"ids\":[\"bob\"],\"hash\":{\"bob\":{\"name\":\"Bob\"}},\"count\":1}}"}"#.to_string()]
        );
        assert_eq!(
            webhooks(&e),
            vec![
                WebhookEvent::ChannelOccupied { channel: ch.into() },
                WebhookEvent::MemberAdded { channel: ch.into(), user_id: "bob".into() }
            ]
        );
        // alice's first tab: bob hears member_added once
        let e = sub_presence(&mut r, &a1, ch, "alice", Some(r#"{"name":"Alice"}"#));
        assert_eq!(
            sends_to(&e, &b),
            vec![r#"{"event":"pusher_internal:member_added","channel":"presence-room","data":"{\"user_id\":\"alice\",\"user_info\":{\"name\":\"Alice\"}}"}"#.to_string()]
        );
        assert!(sends_to(&e, &a1)[0].contains(r#"\"count\":2"#));
        // her second tab: nobody hears anything, no webhook
        let e = sub_presence(&mut r, &a2, ch, "alice", Some(r#"{"name":"Alice"}"#));
        assert!(sends_to(&e, &b).is_empty());
        assert!(sends_to(&e, &a1).is_empty());
        assert!(webhooks(&e).is_empty());
        assert!(sends_to(&e, &a2)[0].contains(r#"\"count\":2"#));
        assert_eq!(r.channel_info(ch), ChannelInfo { subscription_count: 3, user_count: Some(2) });
        assert_eq!(r.presence_users(ch), vec!["alice", "bob"]);
        // closing one tab: nothing; the last: member_removed to bob only
        let e = r.disconnect(&a1);
        assert!(e.is_empty(), "{e:?}");
        let e = r.unsubscribe(&a2, ch);
        assert_eq!(
            sends_to(&e, &b),
            vec![r#"{"event":"pusher_internal:member_removed","channel":"presence-room","data":"{\"user_id\":\"alice\"}"}"#.to_string()]
        );
        assert_eq!(webhooks(&e), vec![WebhookEvent::MemberRemoved { channel: ch.into(), user_id: "alice".into() }]);
        let e = r.disconnect(&b);
        assert_eq!(
            webhooks(&e),
            vec![
                WebhookEvent::MemberRemoved { channel: ch.into(), user_id: "bob".into() },
                WebhookEvent::ChannelVacated { channel: ch.into() }
            ]
        );
    }

    #[test]
    fn presence_needs_signed_channel_data_and_has_a_member_limit() {
        let (mut r, a) = connected(1);
        let auth = auth::sign_channel(&app(), a.as_str(), "presence-x", None);
        assert!(sends_to(&r.subscribe(&a, "presence-x", Some(&auth), None), &a)[0].contains("AuthError"));
        // channel_data changed after signing
        let cd = r#"{"user_id":"1"}"#;
        let auth = auth::sign_channel(&app(), a.as_str(), "presence-x", Some(cd));
        assert!(sends_to(&r.subscribe(&a, "presence-x", Some(&auth), Some(r#"{"user_id":"2"}"#)), &a)[0]
            .contains("invalid signature"));
        for i in 0..MAX_PRESENCE_MEMBERS as u64 {
            let s = sid(100 + i);
            r.connect(s.clone());
            assert!(
                sends_to(&sub_presence(&mut r, &s, "presence-x", &format!("u{i}"), None), &s)[0].contains("succeeded")
            );
        }
        let s = sid(99);
        r.connect(s.clone());
        assert!(sends_to(&sub_presence(&mut r, &s, "presence-x", "late", None), &s)[0].contains("LimitReached"));
        // an existing member's new tab still gets in
        assert!(sends_to(&sub_presence(&mut r, &s, "presence-x", "u0", None), &s)[0].contains("succeeded"));
    }

    #[test]
    fn client_events() {
        let mut r = Registry::new(app());
        let (a, b, c) = (sid(1), sid(2), sid(3));
        for s in [&a, &b, &c] {
            r.connect(s.clone());
        }
        sub_presence(&mut r, &a, "presence-p", "alice", None);
        sub_presence(&mut r, &b, "presence-p", "bob", None);
        sub_private(&mut r, &c, "private-q");
        let e = r.handle_frame(&a, r#"{"event":"client-typing","channel":"presence-p","data":{"on":true}}"#, 0);
        assert_eq!(
            e,
            vec![
                Effect::Broadcast(Delivery {
                    frame:
                        r#"{"event":"client-typing","channel":"presence-p","data":"{\"on\":true}","user_id":"alice"}"#
                            .into(),
                    sockets: vec![b.clone()]
                }),
                Effect::Webhook(WebhookEvent::ClientEvent {
                    channel: "presence-p".into(),
                    event: "client-typing".into(),
                    data: r#"{"on":true}"#.into(),
                    socket_id: a.to_string(),
                    user_id: Some("alice".into())
                })
            ]
        );
        // alone on a private channel: no frame, no user_id, the webhook still fires
        let e = r.client_event(&c, "private-q", "client-x", "d", 0);
        assert_eq!(
            e,
            vec![Effect::Webhook(WebhookEvent::ClientEvent {
                channel: "private-q".into(),
                event: "client-x".into(),
                data: "d".into(),
                socket_id: c.to_string(),
                user_id: None
            })]
        );
        let refused = |e: Vec<Effect>| match &e[..] {
            [Effect::Send { frame, .. }] => frame.contains(r#"\"code\":null"#) && frame.contains("rejected"),
            _ => false,
        };
        assert!(refused(r.client_event(&c, "presence-p", "client-x", "d", 0)), "not subscribed");
        assert!(refused(r.client_event(&c, "private-q", "typing", "d", 0)), "not a client- name");
        r.subscribe(&c, "open", None, None);
        assert!(refused(r.client_event(&c, "open", "client-x", "d", 0)), "public channel");
        let big = "x".repeat(MAX_EVENT_DATA_BYTES + 1);
        assert!(refused(r.client_event(&c, "private-q", "client-x", &big, 0)), "too big");
    }

    #[test]
    fn client_event_rate_limit_in_virtual_time() {
        let (mut r, a) = connected(1);
        sub_private(&mut r, &a, "private-q");
        let ok = |e: &[Effect]| matches!(e, [Effect::Webhook(_)]);
        // a burst of 10 at t=0 passes, the 11th is refused with 4301
        for _ in 0..CLIENT_EVENT_BURST {
            assert!(ok(&r.client_event(&a, "private-q", "client-x", "d", 1_000)));
        }
        let e = r.client_event(&a, "private-q", "client-x", "d", 1_000);
        assert_eq!(
            e,
            vec![Effect::Send {
                socket: a.clone(),
                frame: r#"{"event":"pusher:error","data":"{\"code\":4301,\"message\":\"client event rejected: more than 10 per second\"}"}"#.into()
            }]
        );
        // 99 ms later: still empty; 100 ms: one token
        assert!(!ok(&r.client_event(&a, "private-q", "client-x", "d", 1_099)));
        assert!(ok(&r.client_event(&a, "private-q", "client-x", "d", 1_100)));
        assert!(!ok(&r.client_event(&a, "private-q", "client-x", "d", 1_100)));
        // a steady 10/s is fine forever
        for i in 1..=100u64 {
            assert!(ok(&r.client_event(&a, "private-q", "client-x", "d", 1_100 + i * 100)));
        }
        // flooding: closed with 4100 after the limit of refusals in a row, and forgotten
        let t = 1_100 + 100 * 100;
        let mut closed = None;
        for i in 0..(MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS + CLIENT_EVENT_BURST as u32 + 1) {
            let e = r.client_event(&a, "private-q", "client-x", "d", t);
            if let Some(Effect::Close { code, .. }) = e.first() {
                closed = Some((i, *code));
                break;
            }
        }
        assert_eq!(closed, Some((MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS - 1, close::OVER_CAPACITY)));
        assert!(!r.contains(&a));
        assert_eq!(r.channel_info("private-q").subscription_count, 0);
    }

    #[test]
    fn signin() {
        let (mut r, a) = connected(1);
        let ud = r#"{"id":"u1","name":"A"}"#;
        let auth = auth::sign_user(&app(), a.as_str(), ud);
        let e = r.signin(&a, &auth, ud);
        assert_eq!(
            e,
            vec![
                Effect::Send {
                    socket: a.clone(),
                    frame: r#"{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"u1\\\",\\\"name\\\":\\\"A\\\"}\"}"}"#.into()
                },
                Effect::SaveRecord { socket: a.clone() }
            ]
        );
        assert_eq!(r.user(&a).map(|u| u.id.as_str()), Some("u1"));
        let (mut r, b) = connected(2);
        let e = r.signin(&b, &auth, ud);
        assert!(matches!(&e[..], [Effect::Send { .. }, Effect::Close { code: 4009, .. }]));
        assert!(!r.contains(&b));
    }

    #[test]
    fn record_limits() {
        let (mut r, a) = connected(1);
        for i in 0..MAX_CHANNELS_PER_SOCKET {
            let e = r.subscribe(&a, &format!("c{i}"), None, None);
            assert!(sends_to(&e, &a)[0].contains("succeeded"));
        }
        assert!(sends_to(&r.subscribe(&a, "one-more", None, None), &a)[0].contains(r#"\"status\":403"#));
        let rec = r.record(&a).unwrap().to_json();
        assert!(rec.len() <= MAX_RECORD_BYTES);
        // large presence infos fill the record first
        let (mut r, b) = connected(2);
        let info = format!(r#""{}""#, "i".repeat(1000));
        let mut refused_at = None;
        for i in 0..MAX_CHANNELS_PER_SOCKET {
            let e = sub_presence(&mut r, &b, &format!("presence-{i}"), "u", Some(&info));
            if sends_to(&e, &b)[0].contains(r#"\"status\":413"#) {
                refused_at = Some(i);
                break;
            }
        }
        assert!(refused_at.is_some_and(|i| i > 5), "{refused_at:?}");
        assert!(r.record(&b).unwrap().to_json().len() <= MAX_RECORD_BYTES);
    }

    #[test]
    fn queries() {
        let mut r = Registry::new(app());
        let (a, b) = (sid(1), sid(2));
        r.connect(a.clone());
        r.connect(b.clone());
        sub_presence(&mut r, &a, "presence-a", "u1", None);
        sub_presence(&mut r, &b, "presence-a", "u1", None);
        sub_presence(&mut r, &b, "presence-b", "u2", None);
        r.subscribe(&a, "public", None, None);
        r.subscribe(&a, "presencex", None, None);
        assert_eq!(
            r.channels(Some("presence-")),
            vec![
                ("presence-a", ChannelInfo { subscription_count: 2, user_count: Some(1) }),
                ("presence-b", ChannelInfo { subscription_count: 1, user_count: Some(1) })
            ]
        );
        assert_eq!(r.channels(None).len(), 4);
        assert_eq!(r.channels(Some("zzz")), vec![]);
        assert_eq!(r.channel_info("presence-c"), ChannelInfo { subscription_count: 0, user_count: Some(0) });
    }

    #[test]
    fn records_round_trip_as_json() {
        let (mut r, a) = connected(1);
        sub_presence(&mut r, &a, "presence-a", "u1", Some(r#"{"n":1}"#));
        r.subscribe(&a, "pub", None, None);
        let rec = r.record(&a).unwrap();
        let json = rec.to_json();
        assert_eq!(
            json,
            format!(
                r#"{{"socket_id":"{a}","channels":[{{"name":"presence-a","member":{{"user_id":"u1","user_info":"{{\"n\":1}}"}}}},{{"name":"pub"}}]}}"#
            )
        );
        assert_eq!(SocketRecord::from_json(&json), Some(rec));
        assert_eq!(SocketRecord::from_json("nope"), None);
    }

    // ---- rebuilt == incrementally built --------------------------------------------------------------

    #[derive(Debug, Clone)]
    enum Op {
        Connect(u64),
        Subscribe(u64, usize, usize, usize),
        Unsubscribe(u64, usize),
        Disconnect(u64),
        Signin(u64, usize),
        ClientEvent(u64, usize),
    }

    const CHANNELS: [&str; 5] = ["public-a", "private-b", "presence-c", "presence-d", "private-encrypted-e"];
    const USERS: [&str; 3] = ["u1", "u2", "u3"];
    const INFOS: [Option<&str>; 3] = [None, Some(r#"{"n":1}"#), Some(r#""x""#)];

    fn arb_op() -> impl Strategy<Value = Op> {
        let s = 1u64..6;
        prop_oneof![
            s.clone().prop_map(Op::Connect),
            (s.clone(), 0..CHANNELS.len(), 0..USERS.len(), 0..INFOS.len())
                .prop_map(|(a, b, c, d)| Op::Subscribe(a, b, c, d)),
            (s.clone(), 0..CHANNELS.len()).prop_map(|(a, b)| Op::Unsubscribe(a, b)),
            s.clone().prop_map(Op::Disconnect),
            (s.clone(), 0..USERS.len()).prop_map(|(a, b)| Op::Signin(a, b)),
            (s, 0..CHANNELS.len()).prop_map(|(a, b)| Op::ClientEvent(a, b)),
        ]
    }

    fn apply(r: &mut Registry, op: &Op, t: u64) -> Vec<Effect> {
        match *op {
            Op::Connect(n) => r.connect(sid(n)),
            Op::Subscribe(n, c, u, i) => {
                let ch = CHANNELS[c];
                if channel::kind(ch) == ChannelKind::Presence {
                    sub_presence(r, &sid(n), ch, USERS[u], INFOS[i])
                } else if channel::kind(ch) == ChannelKind::Public {
                    r.subscribe(&sid(n), ch, None, None)
                } else {
                    sub_private(r, &sid(n), ch)
                }
            }
            Op::Unsubscribe(n, c) => r.unsubscribe(&sid(n), CHANNELS[c]),
            Op::Disconnect(n) => r.disconnect(&sid(n)),
            Op::Signin(n, u) => {
                let ud = format!(r#"{{"id":"{}"}}"#, USERS[u]);
                let auth = auth::sign_user(&app(), sid(n).as_str(), &ud);
                r.signin(&sid(n), &auth, &ud)
            }
            Op::ClientEvent(n, c) => r.client_event(&sid(n), CHANNELS[c], "client-x", "{}", t),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn rebuilt_equals_incremental(ops in proptest::collection::vec(arb_op(), 0..60)) {
            let mut r = Registry::new(app());
            // per channel: occupied - vacated, per (channel, user): added - removed
            let mut occupancy: BTreeMap<String, i64> = BTreeMap::new();
            let mut membership: BTreeMap<(String, String), i64> = BTreeMap::new();
            for (t, op) in ops.iter().enumerate() {
                for e in apply(&mut r, op, t as u64 * 10) {
                    match e {
                        Effect::Webhook(WebhookEvent::ChannelOccupied { channel }) => *occupancy.entry(channel).or_default() += 1,
                        Effect::Webhook(WebhookEvent::ChannelVacated { channel }) => *occupancy.entry(channel).or_default() -= 1,
                        Effect::Webhook(WebhookEvent::MemberAdded { channel, user_id }) => *membership.entry((channel, user_id)).or_default() += 1,
                        Effect::Webhook(WebhookEvent::MemberRemoved { channel, user_id }) => *membership.entry((channel, user_id)).or_default() -= 1,
                        Effect::Broadcast(d) => prop_assert!(!d.sockets.is_empty()),
                        _ => {}
                    }
                }
                // webhooks mirror the state at every step
                for (ch, n) in &occupancy {
                    prop_assert_eq!(*n, i64::from(r.channel_info(ch).occupied()), "{}", ch);
                }
                for ((ch, user), n) in &membership {
                    prop_assert_eq!(*n, i64::from(r.presence_users(ch).contains(&user.as_str())));
                }
            }
            // every socket in a channel has it in its map, and the other way round
            for (name, ch) in &r.channels {
                prop_assert!(!ch.sockets.is_empty());
                for s in &ch.sockets {
                    prop_assert!(r.sockets.get(s).is_some_and(|st| st.channels.contains_key(name)));
                }
                let member_sockets: usize = ch.members.values().map(|m| m.len()).sum();
                if channel::kind(name) == ChannelKind::Presence {
                    prop_assert_eq!(member_sockets, ch.sockets.len());
                }
            }
            // rebuild from JSON records, in reverse order
            let records: Vec<SocketRecord> = r
                .sockets
                .keys()
                .rev()
                .filter_map(|s| r.record(s))
                .filter_map(|rec| SocketRecord::from_json(&rec.to_json()))
                .collect();
            let rebuilt = Registry::from_records(app(), records);
            prop_assert_eq!(&rebuilt.channels, &r.channels);
            let a: Vec<_> = r.sockets.keys().filter_map(|s| r.record(s)).collect();
            let b: Vec<_> = rebuilt.sockets.keys().filter_map(|s| rebuilt.record(s)).collect();
            prop_assert_eq!(a, b);
            for (name, _) in r.channels(None) {
                let d1 = r.channels.get(name).map(ChannelState::presence_data);
                let d2 = rebuilt.channels.get(name).map(ChannelState::presence_data);
                prop_assert_eq!(d1, d2);
            }
        }

        #[test]
        fn frames_from_anyone_never_panic(texts in proptest::collection::vec(".{0,80}", 0..20)) {
            let (mut r, a) = connected(1);
            for t in texts {
                let _ = r.handle_frame(&a, &t, 0);
            }
        }
    }
}
