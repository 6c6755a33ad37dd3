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
//! **Whose subscription.** A private channel's auth may name the member it was signed for
//! (`auth::verify_private`): kept per socket and channel, with presence membership and sign-in it
//! answers whose sockets a member's departure closes (`subscribers_for`); a subscription that
//! names nobody is closed with them, since it cannot be told apart.
//!
//! **Client events** (`client-*`) go only to private and presence channels the sender is subscribed
//! to, never back to the sender, and carry the sender's presence `user_id` on presence channels. A
//! token bucket per socket in virtual time allows `CLIENT_EVENTS_PER_SEC` (burst
//! `CLIENT_EVENT_BURST`); an event over it is dropped and answered with `pusher:error` 4301. A socket
//! refused `MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS` times in a row is flooding: it is closed with 4100
//! (pusher-js backs off, then reconnects). Other refused client events are answered with a
//! `pusher:error` whose code is `null`.
//!
//! **Frames** of every kind count against a per-socket bucket (`LIMIT_SOCKET_FRAMES`, default 20 per
//! second in bursts of 60): a frame over it is dropped and answered with `pusher:error` 4301; a
//! socket refused `LIMIT_FLOOD_STRIKES` times without pausing long enough to refill its bucket is
//! closed with 4100 (pusher-js backs off, then reconnects).
//!
//! **Rebuilding.** A hibernating Durable Object keeps nothing in memory; each socket keeps its own
//! `SocketRecord` in its attachment (at most `MAX_RECORD_BYTES` as JSON: a subscription that would
//! grow it past that is refused with 413). `Registry::from_records` rebuilds exactly the state that
//! the operations built (property-tested), with no effects: nothing changed. Rate-limit buckets are
//! not recorded and start full, which is only more lenient.
//!
//! Files: `records` (`SocketRecord` and rebuilding), `state` (what is kept per socket and channel),
//! `sockets` (connect, frames, sign-in, disconnect), `subscriptions` (subscribe, unsubscribe,
//! presence membership), `client_events` (relay and rate limit), `queries` (HTTP API publish and counts).

mod client_events;
mod queries;
mod records;
mod sockets;
mod state;
mod subscriptions;
#[cfg(test)]
mod tests;

pub use records::{RecordChannel, SocketRecord};

use crate::auth::{App, SignedInUser, SocketId};
use crate::frame::ServerFrame;
use crate::limits::close;
use crate::webhook::WebhookEvent;
use state::{ChannelState, SocketState};
use std::collections::BTreeMap;
use switchboard_core::rate::Rate;

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

/// The channel registry of one app shard.
#[derive(Debug, Clone)]
pub struct Registry {
    app: App,
    sockets: BTreeMap<SocketId, SocketState>,
    channels: BTreeMap<String, ChannelState>,
    /// Frames per socket (every frame the object sees: pusher-js's `ping` text is answered by the
    /// runtime and never counted) and refusals before a flooding socket is closed.
    frame_rate: Rate,
    flood_strikes: u32,
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
        Registry {
            app,
            sockets: BTreeMap::new(),
            channels: BTreeMap::new(),
            frame_rate: switchboard_core::limits::DEFAULT_SOCKET_FRAMES,
            flood_strikes: switchboard_core::limits::DEFAULT_FLOOD_STRIKES,
        }
    }

    /// The frame rate limit of every socket (`LIMIT_SOCKET_FRAMES`, `LIMIT_FLOOD_STRIKES`).
    pub fn with_frame_limit(mut self, rate: Rate, flood_strikes: u32) -> Self {
        self.frame_rate = rate;
        self.flood_strikes = flood_strikes;
        self
    }

    pub fn app(&self) -> &App {
        &self.app
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
}
