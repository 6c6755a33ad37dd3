//! Subscribers: joining (with what the publishes in progress sent so far), acks, what a
//! subscriber's window says after each frame, leaving, and the bot going offline.

use crate::{Ctx, Effect, LiveChannel, SUBSCRIBER_TAG_PREFIX};
use switchboard_core::limits::close::RATE_LIMITED;
use switchboard_core::live::{self, close, SubscriberWindow, WindowState};
use switchboard_core::rate::FrameVerdict;
use switchboard_core::{ApiError, ErrorCode};

/// The close reason of a subscriber that left more than a window unacknowledged.
pub const TOO_SLOW_REASON: &str = "too many frames unacknowledged";
/// The close reason of a subscriber that kept sending frames over its rate limit.
pub const RATE_LIMITED_REASON: &str = "rate limited";
/// The close reason of every socket when the bot goes offline.
pub const BOT_OFFLINE_REASON: &str = "bot is not online";

/// An admitted subscriber: accept its socket with `tag`, send it `replay` (what the publishes in
/// progress have sent so far), then carry out `effects`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    pub tag: String,
    pub replay: Vec<String>,
    pub effects: Vec<Effect>,
}

/// A frame a subscriber sent.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    Text(&'a str),
    Binary,
}

impl LiveChannel {
    /// Admits a subscriber whose tag ends in `nonce`.
    pub fn subscribe(&self, nonce: &str, ctx: &Ctx) -> Subscribed {
        let tag = format!("{SUBSCRIBER_TAG_PREFIX}{nonce}");
        // The windows are built (from the existing sockets) before this one is added, so the new
        // subscriber is counted exactly once.
        self.with_windows(ctx, |w| w.insert(tag.clone(), SubscriberWindow::default()));
        let replay: Vec<String> = self
            .publishes
            .borrow()
            .values()
            .flat_map(|p| p.buffer.lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
        let mut effects = Vec::new();
        for line in &replay {
            self.count_sent(std::slice::from_ref(&tag), line.len(), ctx, &mut effects);
        }
        Subscribed { tag, replay, effects }
    }

    /// A frame from the subscriber tagged `tag` (`None`: a socket that is not a subscriber).
    /// Subscribers only acknowledge; anything else gets an error frame, which counts as sent.
    /// Over the connection's frame rate a frame is answered `rate_limited` and dropped; a
    /// subscriber that keeps flooding is closed with 4029. An ack of new frames is never counted.
    pub fn message(&self, tag: Option<&str>, frame: Incoming, ctx: &Ctx) -> Vec<Effect> {
        let parsed = match frame {
            Incoming::Text(text) => live::parse_subscriber_frame(text),
            Incoming::Binary => Err(ApiError::new(ErrorCode::BinaryNotSupported, "binary frames are not supported")),
        };
        // An ack of frames not acknowledged before is the flow control the channel asks for: it
        // does not count against the frame rate (at most one per frame sent, so it cannot flood).
        let releases = match (&parsed, tag) {
            (Ok(received), Some(t)) => self.with_windows(ctx, |w| w.get(t).is_some_and(|w| w.releases(*received))),
            _ => false,
        };
        let limited = tag.filter(|_| !releases).and_then(|t| {
            let rate = self.limits.socket_frames;
            match self.frames.borrow_mut().frame(t, rate, self.limits.flood_strikes, ctx.now_ms) {
                FrameVerdict::Pass => None,
                FrameVerdict::Refuse(retry) => {
                    Some(Err(ApiError::rate_limited(format!("frames: {rate} per connection"), retry)))
                }
                FrameVerdict::Close => Some(Ok(())),
            }
        });
        if let (Some(Ok(())), Some(tag)) = (&limited, tag) {
            self.forget(tag, ctx);
            return vec![Effect::Close { tag: tag.to_string(), code: RATE_LIMITED, reason: RATE_LIMITED_REASON }];
        }
        let outcome = match limited {
            Some(Err(e)) => Err(e),
            _ => parsed,
        };
        let error = match (outcome, tag) {
            (Ok(received), Some(tag)) => self.with_windows(ctx, |w| match w.get_mut(tag) {
                Some(window) => window.ack(received).err(),
                None => None,
            }),
            (Ok(_), None) => None,
            (Err(e), _) => Some(e),
        };
        let mut effects = Vec::new();
        if let Some(e) = error {
            let frame = e.to_frame(None);
            let bytes = frame.len();
            effects.push(Effect::Reply(frame));
            if let Some(tag) = tag {
                self.count_sent(&[tag.to_string()], bytes, ctx, &mut effects);
            }
        }
        effects
    }

    /// The subscriber's socket closed or failed.
    pub fn forget(&self, tag: &str, ctx: &Ctx) {
        self.with_windows(ctx, |w| w.remove(tag));
        self.frames.borrow_mut().forget(tag);
    }

    /// The bot went offline: every socket is closed with 4002, and the publishes in progress stop
    /// (each answers 409 when its body ends).
    pub fn bot_offline(&self, ctx: &Ctx) -> Vec<Effect> {
        self.offline_epoch.set(self.offline_epoch.get() + 1);
        self.with_windows(ctx, |w| w.clear());
        vec![Effect::CloseAll { code: close::BOT_OFFLINE, reason: BOT_OFFLINE_REASON }]
    }

    /// Counts one frame of `bytes` sent to each of `tags`, closing any it overruns.
    pub(crate) fn count_sent(&self, tags: &[String], bytes: usize, ctx: &Ctx, effects: &mut Vec<Effect>) {
        let overrun: Vec<String> = self.with_windows(ctx, |w| {
            tags.iter()
                .filter(|tag| w.get_mut(tag.as_str()).is_some_and(|win| win.sent(bytes) == WindowState::Overrun))
                .cloned()
                .collect()
        });
        for tag in overrun {
            self.close_too_slow(tag, ctx, effects);
        }
    }

    /// A frame of `bytes` went to every socket: counts it against every window, closing overruns.
    pub(crate) fn count_broadcast(&self, bytes: usize, ctx: &Ctx, effects: &mut Vec<Effect>) {
        let overrun: Vec<String> = self.with_windows(ctx, |w| {
            w.iter_mut().filter_map(|(t, win)| (win.sent(bytes) == WindowState::Overrun).then(|| t.clone())).collect()
        });
        for tag in overrun {
            self.close_too_slow(tag, ctx, effects);
        }
    }

    /// The subscribers whose window has no room for a frame of `bytes`.
    pub(crate) fn full(&self, bytes: usize, ctx: &Ctx) -> Vec<String> {
        let mut full: Vec<String> = self
            .with_windows(ctx, |w| w.iter().filter(|(_, win)| !win.has_room(bytes)).map(|(t, _)| t.clone()).collect());
        full.sort();
        full
    }

    pub(crate) fn close_too_slow(&self, tag: String, ctx: &Ctx, effects: &mut Vec<Effect>) {
        self.with_windows(ctx, |w| w.remove(&tag));
        effects.push(Effect::Close { tag, code: close::TOO_SLOW, reason: TOO_SLOW_REASON });
    }
}
