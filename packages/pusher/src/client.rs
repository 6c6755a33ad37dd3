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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ESTABLISHED: &str =
        r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}"#;
    const SHORT: &str =
        r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":30}"}"#;

    fn succeeded(ch: &str) -> String {
        format!(r#"{{"event":"pusher_internal:subscription_succeeded","channel":"{ch}","data":"{{}}"}}"#)
    }

    fn states(effects: &[ClientEffect]) -> Vec<ClientState> {
        effects
            .iter()
            .filter_map(|e| match e {
                ClientEffect::StateChanged { state, .. } => Some(*state),
                _ => None,
            })
            .collect()
    }

    fn sends(effects: &[ClientEffect]) -> Vec<&str> {
        effects
            .iter()
            .filter_map(|e| match e {
                ClientEffect::Send(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    fn connects(effects: &[ClientEffect]) -> Vec<u64> {
        effects
            .iter()
            .filter_map(|e| match e {
                ClientEffect::Connect { generation } => Some(*generation),
                _ => None,
            })
            .collect()
    }

    /// A client that is Live on `chatrooms.1.v2` at t = 0 (activity timeout 30 s).
    fn live() -> Client {
        let mut c = Client::new(["chatrooms.1.v2".to_string()]);
        c.start(0);
        c.handle_text(1, SHORT, 0);
        c.handle_text(1, &succeeded("chatrooms.1.v2"), 0);
        assert_eq!(c.state(), ClientState::Live);
        c
    }

    #[test]
    fn connects_subscribes_and_goes_live() {
        let mut c = Client::new(["chatrooms.1.v2".to_string(), "channel.9".to_string()]);
        assert_eq!(c.poll_timeout(), None);
        let e = c.start(1_000);
        assert_eq!(
            e,
            vec![
                ClientEffect::StateChanged { state: ClientState::Connecting, reason: "starting".into() },
                ClientEffect::Connect { generation: 1 }
            ]
        );
        assert_eq!(c.poll_timeout(), Some(1_000 + HANDSHAKE_TIMEOUT_MS));
        let e = c.handle_text(1, ESTABLISHED, 1_500);
        assert_eq!(states(&e), vec![ClientState::Connected]);
        assert_eq!(
            sends(&e),
            vec![
                r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"chatrooms.1.v2"}}"#,
                r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"channel.9"}}"#
            ]
        );
        assert_eq!(c.socket_id(), Some("1.2"));
        // activity timeout 120 s from the server
        assert_eq!(c.poll_timeout(), Some(1_500 + 120_000));
        assert!(states(&c.handle_text(1, &succeeded("chatrooms.1.v2"), 1_600)).is_empty());
        assert_eq!(states(&c.handle_text(1, &succeeded("channel.9"), 1_700)), vec![ClientState::Live]);
        let e = c.handle_text(
            1,
            r#"{"event":"App\\Events\\ChatMessageEvent","data":"{\"content\":\"hi\"}","channel":"chatrooms.1.v2"}"#,
            2_000,
        );
        assert_eq!(
            e,
            vec![ClientEffect::Event {
                channel: Some("chatrooms.1.v2".into()),
                event: r"App\Events\ChatMessageEvent".into(),
                data: r#"{"content":"hi"}"#.into()
            }]
        );
    }

    #[test]
    fn activity_timeout_is_capped_and_defaulted() {
        let mut c = Client::new(Vec::<String>::new());
        c.start(0);
        let e = c.handle_text(
            1,
            r#"{"event":"pusher:connection_established","data":{"socket_id":"1.1","activity_timeout":9999}}"#,
            0,
        );
        // no channels: live at once
        assert_eq!(states(&e), vec![ClientState::Connected, ClientState::Live]);
        assert_eq!(c.poll_timeout(), Some(MAX_CLIENT_ACTIVITY_TIMEOUT_MS));
    }

    #[test]
    fn pings_after_silence_and_pong_keeps_it_alive() {
        let mut c = live();
        // a frame at 10 s pushes the ping to 40 s
        c.handle_text(1, r#"{"event":"e","channel":"chatrooms.1.v2","data":"{}"}"#, 10_000);
        assert_eq!(c.poll_timeout(), Some(40_000));
        assert!(c.handle_timeout(39_999, 0).is_empty());
        let e = c.handle_timeout(40_000, 0);
        assert_eq!(e, vec![ClientEffect::Send(r#"{"event":"pusher:ping","data":{}}"#.into())]);
        assert_eq!(c.poll_timeout(), Some(40_000 + PONG_TIMEOUT_MS));
        assert!(c.handle_text(1, r#"{"event":"pusher:pong","data":"{}"}"#, 41_000).is_empty());
        assert_eq!(c.poll_timeout(), Some(71_000));
        assert_eq!(c.state(), ClientState::Live);
    }

    #[test]
    fn pong_timeout_reconnects_at_once_and_resubscribes() {
        let mut c = live();
        c.handle_timeout(30_000, 0);
        let e = c.handle_timeout(30_000 + PONG_TIMEOUT_MS, 0);
        assert_eq!(
            e,
            vec![
                ClientEffect::Close { code: CLIENT_CLOSE_CODE, reason: "pong not received".into() },
                ClientEffect::StateChanged {
                    state: ClientState::Connecting,
                    reason: "no answer to ping: reconnecting".into()
                },
                ClientEffect::Connect { generation: 2 }
            ]
        );
        // the old socket's late close is ignored
        assert!(c.handle_close(1, 1006, "gone", 60_001, 0).is_empty());
        assert!(c.handle_text(1, SHORT, 60_001).is_empty());
        assert_eq!(c.state(), ClientState::Connecting);
        // subscription after reconnect
        let e = c.handle_text(2, SHORT, 60_500);
        assert_eq!(sends(&e), vec![r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"chatrooms.1.v2"}}"#]);
        assert_eq!(states(&c.handle_text(2, &succeeded("chatrooms.1.v2"), 60_600)), vec![ClientState::Live]);
    }

    #[test]
    fn answers_server_ping() {
        let mut c = live();
        let e = c.handle_text(1, r#"{"event":"pusher:ping","data":"{}"}"#, 5_000);
        assert_eq!(e, vec![ClientEffect::Send(r#"{"event":"pusher:pong","data":{}}"#.into())]);
        assert_eq!(c.poll_timeout(), Some(35_000));
    }

    #[test]
    fn fatal_close_fails_for_good() {
        let mut c = live();
        let e = c.handle_close(1, 4001, "App key not in this cluster", 5_000, 0);
        assert_eq!(
            e,
            vec![ClientEffect::StateChanged {
                state: ClientState::Failed,
                reason: "closed with 4001: App key not in this cluster".into()
            }]
        );
        assert_eq!(c.failure(), Some((4001, "App key not in this cluster")));
        assert_eq!(c.poll_timeout(), None);
        assert!(c.handle_timeout(1_000_000, 0).is_empty());
        // only an explicit start tries again
        assert_eq!(connects(&c.start(2_000_000)), vec![2]);
        assert_eq!(c.failure(), None);
    }

    #[test]
    fn close_4200_reconnects_at_once_but_not_during_the_handshake() {
        let mut c = live();
        let e = c.handle_close(1, 4200, "reconnect", 5_000, 0);
        assert_eq!(connects(&e), vec![2]);
        assert_eq!(c.state(), ClientState::Connecting);
        // closed again before connection_established: back off instead
        let e = c.handle_close(2, 4201, "again", 5_100, 0);
        assert_eq!(states(&e), vec![ClientState::Waiting]);
        assert!(connects(&e).is_empty());
        assert_eq!(c.poll_timeout(), Some(5_100 + 500));
    }

    #[test]
    fn close_4100_backs_off() {
        let mut c = live();
        let e = c.handle_close(1, 4100, "over capacity", 5_000, 0);
        assert_eq!(states(&e), vec![ClientState::Waiting]);
        assert_eq!(c.poll_timeout(), Some(5_500));
        assert_eq!(connects(&c.handle_timeout(5_500, 0)), vec![2]);
    }

    #[test]
    fn abnormal_closes_back_off_growing_then_reset_after_stability() {
        let mut c = Client::new(["a".to_string()]);
        c.start(0);
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let g = c.generation();
            c.handle_close(g, 1006, "", now, 0);
            let at = c.poll_timeout().unwrap();
            waits.push(at - now);
            assert_eq!(c.state(), ClientState::Waiting);
            assert!(c.handle_timeout(at - 1, 0).is_empty());
            assert_eq!(connects(&c.handle_timeout(at, 0)), vec![g + 1]);
            now = at;
        }
        // random = 0 waits half the ceiling: 1 s, 2 s, 4 s ... capped at 60 s
        assert_eq!(waits, vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        // a connection that lasts 60 s resets the count; a shorter one does not
        let g = c.generation();
        c.handle_text(g, SHORT, now);
        c.handle_close(g, 1006, "", now + 59_000, 0);
        assert_eq!(c.poll_timeout(), Some(now + 59_000 + 30_000));
        now += 89_000;
        c.handle_timeout(now, 0);
        let g = c.generation();
        c.handle_text(g, SHORT, now);
        // keep it alive with pings and pongs for 60 s
        for t in (now..=now + 60_000).step_by(10_000) {
            c.handle_text(g, r#"{"event":"pusher:pong","data":"{}"}"#, t);
        }
        c.handle_close(g, 1006, "", now + 60_000, 0);
        assert_eq!(c.poll_timeout(), Some(now + 60_000 + 500));
        assert_eq!(c.failures(), 1);
    }

    #[test]
    fn handshake_timeout_backs_off() {
        let mut c = Client::new(["a".to_string()]);
        c.start(0);
        let e = c.handle_timeout(HANDSHAKE_TIMEOUT_MS, 0);
        assert_eq!(e[0], ClientEffect::Close { code: CLIENT_CLOSE_CODE, reason: "handshake timeout".into() });
        assert_eq!(states(&e), vec![ClientState::Waiting]);
        // the abandoned socket's events are ignored
        assert!(c.handle_text(1, SHORT, HANDSHAKE_TIMEOUT_MS + 1).is_empty());
        assert_eq!(c.poll_timeout(), Some(HANDSHAKE_TIMEOUT_MS + 500));
        assert_eq!(connects(&c.handle_timeout(HANDSHAKE_TIMEOUT_MS + 500, 0)), vec![3]);
    }

    #[test]
    fn server_errors_and_subscription_errors_are_reported() {
        let mut c = live();
        assert_eq!(
            c.handle_text(1, r#"{"event":"pusher:error","data":{"code":4301,"message":"slow"}}"#, 1),
            vec![ClientEffect::ServerError { code: Some(4301), message: "slow".into() }]
        );
        let e = c.subscribe("private-x");
        assert_eq!(sends(&e), vec![r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"private-x"}}"#]);
        assert_eq!(states(&e), vec![ClientState::Connected]);
        let e = c.handle_text(
            1,
            r#"{"event":"pusher:subscription_error","channel":"private-x","data":"{\"type\":\"AuthError\",\"status\":401}"}"#,
            2,
        );
        assert_eq!(
            e,
            vec![ClientEffect::Event {
                channel: Some("private-x".into()),
                event: "pusher:subscription_error".into(),
                data: r#"{"type":"AuthError","status":401}"#.into()
            }]
        );
        let e = c.unsubscribe("private-x");
        assert_eq!(sends(&e), vec![r#"{"event":"pusher:unsubscribe","data":{"channel":"private-x"}}"#]);
        assert_eq!(states(&e), vec![ClientState::Live]);
        let e = c.stop();
        assert_eq!(e[0], ClientEffect::Close { code: CLIENT_CLOSE_CODE, reason: "stopped".into() });
        assert_eq!(c.state(), ClientState::Idle);
        assert_eq!(c.poll_timeout(), None);
    }

    proptest! {
        /// Whatever happens, the client is never without a timer while it should be doing something,
        /// never asks for a socket without a fresh generation, and never panics.
        #[test]
        fn always_has_a_way_forward(events in proptest::collection::vec((0u8..6, 0u64..100_000, any::<u64>(), prop_oneof![Just(1000u16), Just(1006), Just(4001), Just(4100), Just(4200), Just(4301)]), 0..80)) {
            let mut c = Client::new(["a".to_string()]);
            c.start(0);
            let mut now = 0u64;
            let mut last_gen = c.generation();
            for (kind, dt, r, code) in events {
                now += dt;
                let g = c.generation();
                let e = match kind {
                    0 => c.handle_text(g, SHORT, now),
                    1 => c.handle_text(g, &succeeded("a"), now),
                    2 => c.handle_close(g, code, "x", now, r),
                    3 => c.handle_text(g, "garbage", now),
                    _ => match c.poll_timeout() { Some(t) => { now = now.max(t); c.handle_timeout(now, r) }, None => Vec::new() },
                };
                for g in connects(&e) {
                    prop_assert!(g > last_gen);
                    last_gen = g;
                }
                match c.state() {
                    ClientState::Failed | ClientState::Idle => prop_assert_eq!(c.poll_timeout(), None),
                    _ => prop_assert!(c.poll_timeout().is_some()),
                }
                if let Some(t) = c.poll_timeout() {
                    prop_assert!(t <= now + MAX_CLIENT_ACTIVITY_TIMEOUT_MS.max(BackoffPolicy::BRIDGE.cap_ms).max(HANDSHAKE_TIMEOUT_MS));
                }
            }
        }
    }
}
