//! The Kick reader: `switchboard_pusher`'s protocol-7 client kept subscribed to one chatroom's public channel, with
//! every event of that channel mapped by [`crate::kick`].
//!
//! Connection handling (handshake, keep-alive, Pusher's close ranges, backoff, generations) is the Pusher client's;
//! this adds only the Kick address, the channel, and the mapping. Its effects are the client's, with application
//! events replaced by bridge events: the shell commits `Event`s through the same path as Kosmi's.

use crate::event::BridgeEvent;
use crate::kick::{self, KickError};
use crate::lenient;
use crate::limits::MAX_REFUSAL_REASON_CHARS;
use switchboard_pusher::client::{Client, ClientEffect, ClientState};

/// Kick's public Pusher app key and cluster (reverse engineered, seed 000).
pub const APP_KEY: &str = "32cbd69e4b950bf97679";
pub const CLUSTER: &str = "us2";
/// The pusher-js version Kick's web client announces.
const CLIENT_VERSION: &str = "8.4.0";
/// Chatroom ids are decimal numbers; longer than this is not one.
const MAX_CHATROOM_ID_DIGITS: usize = 20;

/// `wss://ws-{cluster}.pusher.com/app/{key}?protocol=7&client=js&version=…&flash=false`.
pub fn ws_url() -> String {
    format!("wss://ws-{CLUSTER}.pusher.com/app/{APP_KEY}?protocol=7&client=js&version={CLIENT_VERSION}&flash=false")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KickReaderEffect {
    /// Open `ws_url()` and report its frames and close with this generation.
    Connect {
        generation: u64,
    },
    Send(String),
    Close {
        code: u16,
        reason: String,
    },
    /// Commit this.
    Event(Box<BridgeEvent>),
    /// An event of ours we could not map (count it).
    Skipped(KickError),
    /// Kick refused the subscription (`pusher:subscription_error`), with its data cut to `MAX_REFUSAL_REASON_CHARS`.
    SubscriptionFailed {
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
pub struct BadChatroomId;

/// The reader of one chatroom.
#[derive(Debug, Clone)]
pub struct KickReader {
    client: Client,
    chatroom_id: String,
    channel: String,
}

impl KickReader {
    /// A reader of chatroom `chatroom_id` (decimal digits).
    pub fn new(chatroom_id: &str) -> Result<Self, BadChatroomId> {
        let ok = !chatroom_id.is_empty()
            && chatroom_id.len() <= MAX_CHATROOM_ID_DIGITS
            && chatroom_id.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(BadChatroomId);
        }
        let channel = kick::channel(chatroom_id);
        Ok(KickReader { client: Client::new([channel.clone()]), chatroom_id: chatroom_id.to_string(), channel })
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    pub fn state(&self) -> ClientState {
        self.client.state()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        self.client.poll_timeout()
    }

    pub fn start(&mut self, now_ms: u64) -> Vec<KickReaderEffect> {
        let effects = self.client.start(now_ms);
        self.map(effects)
    }

    pub fn stop(&mut self) -> Vec<KickReaderEffect> {
        let effects = self.client.stop();
        self.map(effects)
    }

    pub fn handle_text(&mut self, generation: u64, text: &str, now_ms: u64) -> Vec<KickReaderEffect> {
        let effects = self.client.handle_text(generation, text, now_ms);
        self.map(effects)
    }

    pub fn handle_close(
        &mut self,
        generation: u64,
        code: u16,
        reason: &str,
        now_ms: u64,
        random: u64,
    ) -> Vec<KickReaderEffect> {
        let effects = self.client.handle_close(generation, code, reason, now_ms, random);
        self.map(effects)
    }

    pub fn handle_timeout(&mut self, now_ms: u64, random: u64) -> Vec<KickReaderEffect> {
        let effects = self.client.handle_timeout(now_ms, random);
        self.map(effects)
    }

    fn map(&self, effects: Vec<ClientEffect>) -> Vec<KickReaderEffect> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                ClientEffect::Connect { generation } => Some(KickReaderEffect::Connect { generation }),
                ClientEffect::Send(text) => Some(KickReaderEffect::Send(text)),
                ClientEffect::Close { code, reason } => Some(KickReaderEffect::Close { code, reason }),
                ClientEffect::ServerError { code, message } => Some(KickReaderEffect::ServerError { code, message }),
                ClientEffect::StateChanged { state, reason } => Some(KickReaderEffect::StateChanged { state, reason }),
                // Only our channel's events are ours.
                ClientEffect::Event { channel, .. } if channel.as_deref() != Some(self.channel.as_str()) => None,
                ClientEffect::Event { event, data, .. } if event == "pusher:subscription_error" => {
                    Some(KickReaderEffect::SubscriptionFailed { data: lenient::cut(&data, MAX_REFUSAL_REASON_CHARS) })
                }
                ClientEffect::Event { event, data, .. } => Some(match kick::parse(&self.chatroom_id, &event, &data) {
                    Ok(ev) => KickReaderEffect::Event(Box::new(ev)),
                    Err(e) => KickReaderEffect::Skipped(e),
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Platform;
    use serde_json::json;

    fn established() -> String {
        json!({"event": "pusher:connection_established",
               "data": json!({"socket_id": "123.456", "activity_timeout": 120}).to_string()})
        .to_string()
    }

    #[test]
    fn chatroom_ids_are_digits() {
        assert!(KickReader::new("2507974").is_ok());
        assert_eq!(KickReader::new("").err(), Some(BadChatroomId));
        assert_eq!(KickReader::new("12a").err(), Some(BadChatroomId));
        assert_eq!(KickReader::new(&"1".repeat(MAX_CHATROOM_ID_DIGITS + 1)).err(), Some(BadChatroomId));
        assert_eq!(
            ws_url(),
            "wss://ws-us2.pusher.com/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false"
        );
    }

    #[test]
    fn subscribes_the_chatroom_and_maps_its_events() {
        let mut r = KickReader::new("2507974").unwrap();
        let effects = r.start(0);
        assert!(effects.contains(&KickReaderEffect::Connect { generation: r.client.generation() }));
        let generation = r.client.generation();
        let effects = r.handle_text(generation, &established(), 10);
        let sends: Vec<serde_json::Value> = effects
            .iter()
            .filter_map(|e| match e {
                KickReaderEffect::Send(t) => serde_json::from_str(t).ok(),
                _ => None,
            })
            .collect();
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0]["event"], "pusher:subscribe");
        assert_eq!(sends[0]["data"]["channel"], "chatrooms.2507974.v2");

        let frame = include_str!("../tests/fixtures/kick/chat_message.json");
        let effects = r.handle_text(generation, frame, 20);
        let [KickReaderEffect::Event(ev)] = effects.as_slice() else { panic!("{effects:?}") };
        let BridgeEvent::Message(m) = &**ev else { panic!("{ev:?}") };
        assert_eq!(m.idempotency_key, "kick:0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10");
        assert_eq!(m.source.room, "2507974");

        let unknown = include_str!("../tests/fixtures/kick/subscription.json");
        assert_eq!(
            r.handle_text(generation, unknown, 30),
            vec![KickReaderEffect::Event(Box::new(BridgeEvent::Unknown {
                platform: Platform::Kick,
                event: "App\\Events\\SubscriptionEvent".into()
            }))]
        );
        let junk = json!({"event": "App\\Events\\ChatMessageEvent", "channel": "chatrooms.2507974.v2", "data": "{}"});
        assert_eq!(
            r.handle_text(generation, &junk.to_string(), 40),
            vec![KickReaderEffect::Skipped(KickError::Missing("id"))]
        );
        let other = json!({"event": "App\\Events\\ChatMessageEvent", "channel": "chatrooms.1.v2", "data": "{}"});
        assert_eq!(r.handle_text(generation, &other.to_string(), 50), vec![], "another channel's event is not ours");
    }
}
