//! A protocol-7 client as a state machine (the bridges' Kick reader runs on it).
//!
//! Sans-IO in the quinn-proto / str0m manner: the shell feeds in what happened (`start`,
//! `handle_text`, `handle_close`, `handle_timeout`), each with the current time, and carries out the
//! `ClientEffect`s that come back; `poll_timeout` says when to call `handle_timeout` next. Nothing
//! here reads a clock or draws randomness: reconnect jitter comes in as `random`.
//!
//! States: `Idle` → `Connecting` (socket asked for; `HANDSHAKE_TIMEOUT_MS` to get
//! `pusher:connection_established`) → `Connected` (subscribes every configured channel) → `Live`
//! (every channel answered `subscription_succeeded`). Liveness as pusher-js does it: after
//! `activity_timeout` (the server's, at most `MAX_CLIENT_ACTIVITY_TIMEOUT_MS`) without any frame, send
//! `pusher:ping`; when no frame at all arrives within `PONG_TIMEOUT_MS` after it, the connection is
//! dead: close it and reconnect at once. A server's `pusher:ping` is answered with `pusher:pong`.
//!
//! Closes, by Pusher's ranges: 4000-4099 are fatal (`Failed`, with the code and reason, until `start`
//! is called again: wrong app key, over quota, unauthorized — retrying cannot help); 4200-4299
//! reconnect at once — but only if the handshake had completed, so a server that closes every new
//! connection with 4200 is backed off rather than hammered; everything else (4100-4199, 1006, a
//! transport error, a handshake timeout) waits per `switchboard_core::backoff` with
//! `BackoffPolicy::BRIDGE` (jittered, 1 s doubling to 60 s, reset after 60 s up) in `Waiting`.
//!
//! Every connection has a `generation`, given in `ClientEffect::Connect`; the shell passes it back with
//! that socket's frames and close, so that a late event from a socket the client already gave up on
//! (after a pong timeout, say) is ignored instead of tearing down its successor.

use crate::frame::{ClientFrame, ServerMessage};
use crate::limits::{HANDSHAKE_TIMEOUT_MS, MAX_CLIENT_ACTIVITY_TIMEOUT_MS, MAX_CLIENT_CHANNELS, PONG_TIMEOUT_MS};
use std::collections::BTreeSet;
use switchboard_core::backoff::{Backoff, BackoffPolicy};

/// The close code our client sends when it gives up on a connection itself.
pub const CLIENT_CLOSE_CODE: u16 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Not started, or stopped.
    Idle,
    Connecting,
    /// Handshake done; subscriptions pending.
    Connected,
    /// Handshake done and every channel subscribed.
    Live,
    /// Waiting to reconnect (backoff).
    Waiting,
    /// A fatal close (4000-4099): no reconnect until `start`.
    Failed,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEffect {
    /// Open a new socket (dropping any previous one); report its frames and close with `generation`.
    Connect {
        generation: u64,
    },
    /// Send this text frame on the current socket.
    Send(String),
    /// Close the current socket.
    Close {
        code: u16,
        reason: String,
    },
    /// An application event (and `pusher:subscription_error`, passed on as an event).
    Event {
        channel: Option<String>,
        event: String,
        data: String,
    },
    /// The server sent `pusher:error`.
    ServerError {
        code: Option<u16>,
        message: String,
    },
    StateChanged {
        state: ClientState,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Handshake,
    Activity,
    Pong,
    Retry,
}

/// How a close is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAction {
    Fatal,
    ReconnectNow,
    BackOff,
}

/// Pusher's close code ranges.
pub fn close_action(code: u16) -> CloseAction {
    match code {
        4000..=4099 => CloseAction::Fatal,
        4200..=4299 => CloseAction::ReconnectNow,
        _ => CloseAction::BackOff,
    }
}

/// The client.
#[derive(Debug, Clone)]
pub struct Client {
    channels: Vec<String>,
    subscribed: BTreeSet<String>,
    state: ClientState,
    generation: u64,
    backoff: Backoff,
    timer: Option<(Timer, u64)>,
    activity_timeout_ms: u64,
    socket_id: Option<String>,
    failure: Option<(u16, String)>,
}

impl Client {
    /// A client that will keep `channels` subscribed (at most `MAX_CLIENT_CHANNELS`; duplicates are
    /// kept once).
    pub fn new(channels: impl IntoIterator<Item = String>) -> Self {
        let mut list: Vec<String> = Vec::new();
        for c in channels {
            if list.len() < MAX_CLIENT_CHANNELS && !list.contains(&c) {
                list.push(c);
            }
        }
        Client {
            channels: list,
            subscribed: BTreeSet::new(),
            state: ClientState::Idle,
            generation: 0,
            backoff: Backoff::new(BackoffPolicy::BRIDGE),
            timer: None,
            activity_timeout_ms: MAX_CLIENT_ACTIVITY_TIMEOUT_MS,
            socket_id: None,
            failure: None,
        }
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The current connection's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The socket id of the current connection, once established.
    pub fn socket_id(&self) -> Option<&str> {
        self.socket_id.as_deref()
    }

    /// The code and reason of the fatal close, in `Failed`.
    pub fn failure(&self) -> Option<(u16, &str)> {
        self.failure.as_ref().map(|(c, r)| (*c, r.as_str()))
    }

    /// Consecutive failed connections (for logs and metrics).
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timer.map(|(_, at)| at)
    }

    fn change(&mut self, state: ClientState, reason: impl Into<String>, out: &mut Vec<ClientEffect>) {
        self.state = state;
        out.push(ClientEffect::StateChanged { state, reason: reason.into() });
    }

    fn connect(&mut self, now_ms: u64, reason: &str, out: &mut Vec<ClientEffect>) {
        self.generation += 1;
        self.subscribed.clear();
        self.socket_id = None;
        self.failure = None;
        self.timer = Some((Timer::Handshake, now_ms.saturating_add(HANDSHAKE_TIMEOUT_MS)));
        self.change(ClientState::Connecting, reason, out);
        out.push(ClientEffect::Connect { generation: self.generation });
    }

    fn wait(&mut self, now_ms: u64, random: u64, reason: String, out: &mut Vec<ClientEffect>) {
        let delay = self.backoff.failed(now_ms, random);
        self.socket_id = None;
        self.timer = Some((Timer::Retry, now_ms.saturating_add(delay)));
        self.change(ClientState::Waiting, format!("{reason}; reconnecting in {delay} ms"), out);
    }

    fn online(&self) -> bool {
        matches!(self.state, ClientState::Connected | ClientState::Live)
    }

    /// Starts (or restarts after `Failed` or `stop`) connecting.
    pub fn start(&mut self, now_ms: u64) -> Vec<ClientEffect> {
        let mut out = Vec::new();
        if matches!(self.state, ClientState::Idle | ClientState::Failed) {
            self.connect(now_ms, "starting", &mut out);
        }
        out
    }

    /// Closes and goes idle.
    pub fn stop(&mut self) -> Vec<ClientEffect> {
        let mut out = Vec::new();
        if matches!(self.state, ClientState::Connecting | ClientState::Connected | ClientState::Live) {
            out.push(ClientEffect::Close { code: CLIENT_CLOSE_CODE, reason: "stopped".into() });
        }
        self.generation += 1;
        self.timer = None;
        self.socket_id = None;
        if self.state != ClientState::Idle {
            self.change(ClientState::Idle, "stopped", &mut out);
        }
        out
    }

    /// Adds a channel to keep subscribed (subscribing now when connected).
    pub fn subscribe(&mut self, channel: &str) -> Vec<ClientEffect> {
        let mut out = Vec::new();
        if self.channels.iter().any(|c| c == channel) || self.channels.len() >= MAX_CLIENT_CHANNELS {
            return out;
        }
        self.channels.push(channel.to_string());
        if self.online() {
            out.push(ClientEffect::Send(subscribe_frame(channel)));
            if self.state == ClientState::Live {
                self.change(ClientState::Connected, format!("subscribing to {channel}"), &mut out);
            }
        }
        out
    }

    /// Stops keeping a channel subscribed.
    pub fn unsubscribe(&mut self, channel: &str) -> Vec<ClientEffect> {
        let mut out = Vec::new();
        let before = self.channels.len();
        self.channels.retain(|c| c != channel);
        if self.channels.len() == before {
            return out;
        }
        self.subscribed.remove(channel);
        if self.online() {
            out.push(ClientEffect::Send(ClientFrame::Unsubscribe { channel: channel.to_string() }.encode()));
            self.check_live(&mut out);
        }
        out
    }

    fn check_live(&mut self, out: &mut Vec<ClientEffect>) {
        if self.state == ClientState::Connected && self.channels.iter().all(|c| self.subscribed.contains(c)) {
            self.change(ClientState::Live, "all channels subscribed", out);
        }
    }

    /// A text frame arrived on connection `generation` at `now_ms`.
    pub fn handle_text(&mut self, generation: u64, text: &str, now_ms: u64) -> Vec<ClientEffect> {
        let mut out = Vec::new();
        let current = matches!(self.state, ClientState::Connecting | ClientState::Connected | ClientState::Live);
        if generation != self.generation || !current {
            return out;
        }
        // any frame is a sign of life
        if self.online() {
            self.timer = Some((Timer::Activity, now_ms.saturating_add(self.activity_timeout_ms)));
        }
        let Ok(msg) = ServerMessage::parse(text) else { return out };
        match msg {
            ServerMessage::ConnectionEstablished { socket_id, activity_timeout_secs } => {
                if self.state != ClientState::Connecting {
                    return out;
                }
                self.activity_timeout_ms =
                    activity_timeout_secs.filter(|s| *s > 0).map_or(MAX_CLIENT_ACTIVITY_TIMEOUT_MS, |s| {
                        s.saturating_mul(1000).min(MAX_CLIENT_ACTIVITY_TIMEOUT_MS)
                    });
                self.socket_id = Some(socket_id.clone());
                self.backoff.connected(now_ms);
                self.timer = Some((Timer::Activity, now_ms.saturating_add(self.activity_timeout_ms)));
                self.change(ClientState::Connected, format!("connected as {socket_id}"), &mut out);
                for c in &self.channels {
                    out.push(ClientEffect::Send(subscribe_frame(c)));
                }
                self.check_live(&mut out);
            }
            ServerMessage::Ping => out.push(ClientEffect::Send(ClientFrame::Pong.encode())),
            ServerMessage::Pong => {}
            ServerMessage::Error { code, message } => out.push(ClientEffect::ServerError { code, message }),
            ServerMessage::SubscriptionSucceeded { channel, .. } => {
                if self.channels.contains(&channel) {
                    self.subscribed.insert(channel);
                    self.check_live(&mut out);
                }
            }
            ServerMessage::SubscriptionError { channel, data } => out.push(ClientEffect::Event {
                channel,
                event: crate::frame::event::SUBSCRIPTION_ERROR.to_string(),
                data,
            }),
            ServerMessage::Event { channel, event, data, .. } => out.push(ClientEffect::Event { channel, event, data }),
            // presence bookkeeping and sign-in are not used by the bridges
            ServerMessage::MemberAdded { .. }
            | ServerMessage::MemberRemoved { .. }
            | ServerMessage::SigninSuccess { .. } => {}
        }
        out
    }

    /// Connection `generation` closed (or failed) with `code` at `now_ms`; 1006 for a transport
    /// error without a close frame. `random` is any 64 random bits (backoff jitter).
    pub fn handle_close(
        &mut self,
        generation: u64,
        code: u16,
        reason: &str,
        now_ms: u64,
        random: u64,
    ) -> Vec<ClientEffect> {
        let mut out = Vec::new();
        let current = matches!(self.state, ClientState::Connecting | ClientState::Connected | ClientState::Live);
        if generation != self.generation || !current {
            return out;
        }
        let why = format!("closed with {code}: {reason}");
        match close_action(code) {
            CloseAction::Fatal => {
                self.timer = None;
                self.socket_id = None;
                self.failure = Some((code, reason.to_string()));
                self.change(ClientState::Failed, why, &mut out);
            }
            CloseAction::ReconnectNow if self.online() => self.connect(now_ms, &why, &mut out),
            _ => self.wait(now_ms, random, why, &mut out),
        }
        out
    }

    /// Time passed: call at `poll_timeout()` (calling early does nothing).
    pub fn handle_timeout(&mut self, now_ms: u64, random: u64) -> Vec<ClientEffect> {
        let mut out = Vec::new();
        let Some((timer, at)) = self.timer else { return out };
        if now_ms < at {
            return out;
        }
        match timer {
            Timer::Handshake => {
                out.push(ClientEffect::Close { code: CLIENT_CLOSE_CODE, reason: "handshake timeout".into() });
                self.generation += 1;
                self.wait(now_ms, random, "no connection_established within the handshake timeout".into(), &mut out);
            }
            Timer::Activity => {
                out.push(ClientEffect::Send(ClientFrame::Ping.encode()));
                self.timer = Some((Timer::Pong, now_ms.saturating_add(PONG_TIMEOUT_MS)));
            }
            Timer::Pong => {
                out.push(ClientEffect::Close { code: CLIENT_CLOSE_CODE, reason: "pong not received".into() });
                self.connect(now_ms, "no answer to ping: reconnecting", &mut out);
            }
            Timer::Retry => self.connect(now_ms, "reconnecting", &mut out),
        }
        out
    }
}

/// pusher-js subscribes public channels with an empty `auth`; so do we (Kick expects it).
fn subscribe_frame(channel: &str) -> String {
    ClientFrame::Subscribe { channel: channel.to_string(), auth: Some(String::new()), channel_data: None }.encode()
}

#[cfg(test)]
mod tests;
