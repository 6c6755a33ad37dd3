//! The live channel's rules: what a late subscriber is owed, and which line commits a message.
//!
//! A publish streams NDJSON lines to subscribers as they arrive (see `ndjson`). Each publish in
//! progress keeps its most recent lines in a bounded `PublishBuffer`, so a subscriber that joins
//! mid-stream first gets what it missed. A line `{"final": true, "content": [...], "clientId"?}` is
//! delivered like any other and then committed to the conversation as a normal message.
//!
//! Subscribers acknowledge what they have read (`{"type":"ack","received":N}`), and a
//! `SubscriberWindow` per subscriber bounds what was sent but not yet acknowledged: the runtime gives
//! no view of a socket's send buffer, so the subscriber's own count is the only measure of a stall.

use crate::error::{ApiError, ErrorCode};
use serde_json::Value;
use std::collections::VecDeque;

/// Lines longer than this are skipped.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// What a publish in progress keeps for late subscribers.
pub const BUFFER_LINES: usize = 512;
pub const BUFFER_BYTES: usize = 1024 * 1024;
/// A publish body that sends nothing for this long is ended.
pub const DEFAULT_IDLE_TIMEOUT_MS: i64 = 30_000;
/// Publishes in progress on one conversation's live channel; one more is refused (409
/// `too_many_publishes`) until one ends.
pub const MAX_CONCURRENT_PUBLISHES: usize = 4;
/// The longest a publish may run (`LIVE_MAX_PUBLISH_MS` overrides it): then the service ends its
/// body itself and answers with `"ended": "max_duration"` (10 minutes).
pub const DEFAULT_MAX_PUBLISH_MS: i64 = 10 * 60 * 1000;

/// The frame a subscriber gets for one published line: who published it, and the line's JSON value
/// as the publisher wrote it. `line` must be one valid JSON text (the splitter's `Line::Json`).
pub fn line_frame(from: &str, line: &str) -> String {
    let from = serde_json::to_string(from).unwrap_or_else(|_| "\"\"".to_string());
    format!(r#"{{"type":"line","from":{from},"line":{line}}}"#)
}

/// WebSocket close codes of the live channel.
pub mod close {
    /// Unknown conversation, or one the caller cannot see.
    pub const UNKNOWN_CONVERSATION: u16 = 4001;
    /// The conversation's bot is not online.
    pub const BOT_OFFLINE: u16 = 4002;
    /// The subscriber left more than a window of frames unacknowledged.
    pub const TOO_SLOW: u16 = 4008;
}

/// At most this many bytes of frames sent to a subscriber may be unacknowledged...
pub const WINDOW_BYTES: usize = 4 * 1024 * 1024;
/// ...and at most this many frames.
pub const WINDOW_FRAMES: usize = 4096;
/// When a line does not fit in some subscriber's window, the publish waits this long for that
/// subscriber's acks to make room; a subscriber still full then is closed (4008) and the line goes on.
/// So a stalled subscriber holds the others up once, for at most this long.
pub const STALL_GRACE_MS: i64 = 2_000;

/// What the service sent one subscriber and the subscriber has not yet acknowledged. Every text
/// frame the object sends on the socket counts (publish lines, lines replayed to a late joiner, error
/// frames); the runtime's `pong` does not.
#[derive(Debug)]
pub struct SubscriberWindow {
    /// Sizes of the unacknowledged frames, oldest first.
    unacked: VecDeque<u32>,
    unacked_bytes: usize,
    sent: u64,
    max_bytes: usize,
    max_frames: usize,
}

impl Default for SubscriberWindow {
    fn default() -> Self {
        Self::new(WINDOW_BYTES, WINDOW_FRAMES)
    }
}

/// What a subscriber's window says after a frame went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    Open,
    /// More than the window is unacknowledged: close the subscriber with `close::TOO_SLOW`.
    Overrun,
}

impl SubscriberWindow {
    pub fn new(max_bytes: usize, max_frames: usize) -> Self {
        SubscriberWindow { unacked: VecDeque::new(), unacked_bytes: 0, sent: 0, max_bytes, max_frames }
    }

    /// Whether a frame of `bytes` can be sent without leaving more than the window unacknowledged.
    pub fn has_room(&self, bytes: usize) -> bool {
        self.unacked_bytes + bytes <= self.max_bytes && self.unacked.len() < self.max_frames
    }

    /// A frame of `bytes` was sent.
    pub fn sent(&mut self, bytes: usize) -> WindowState {
        self.sent += 1;
        self.unacked.push_back(bytes.min(u32::MAX as usize) as u32);
        self.unacked_bytes += bytes;
        if self.unacked_bytes > self.max_bytes || self.unacked.len() > self.max_frames {
            WindowState::Overrun
        } else {
            WindowState::Open
        }
    }

    /// Whether an ack of `received` frames would acknowledge frames not acknowledged before.
    pub fn releases(&self, received: u64) -> bool {
        received <= self.sent && received > self.sent - self.unacked.len() as u64
    }

    /// The subscriber has read `received` frames in all. A count below an earlier one changes
    /// nothing; one above what was sent is an error (and changes nothing).
    pub fn ack(&mut self, received: u64) -> Result<(), ApiError> {
        if received > self.sent {
            return Err(ApiError::invalid(format!("ack: received {received} but {} frames were sent", self.sent)));
        }
        let acked = self.sent - self.unacked.len() as u64;
        for _ in acked..received {
            if let Some(b) = self.unacked.pop_front() {
                self.unacked_bytes -= b as usize;
            }
        }
        Ok(())
    }

    /// Frames sent so far.
    pub fn total_sent(&self) -> u64 {
        self.sent
    }

    pub fn unacked_frames(&self) -> usize {
        self.unacked.len()
    }

    pub fn unacked_bytes(&self) -> usize {
        self.unacked_bytes
    }
}

/// The one frame a subscriber sends: `{"type":"ack","received":N}`. Answers `N`.
pub fn parse_subscriber_frame(text: &str) -> Result<u64, ApiError> {
    let v: Value = serde_json::from_str(text).map_err(|_| ApiError::invalid_json("frames must be JSON objects"))?;
    match v.get("type").and_then(Value::as_str) {
        Some("ack") => v
            .get("received")
            .and_then(Value::as_u64)
            .ok_or_else(|| ApiError::invalid("ack: `received` must be a non-negative integer (frames read so far)")),
        _ => Err(ApiError::new(
            ErrorCode::UnknownFrameType,
            "the live channel takes only `ack` frames; publish over HTTP",
        )),
    }
}

#[derive(Debug)]
pub struct PublishBuffer {
    lines: VecDeque<String>,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
}

impl Default for PublishBuffer {
    fn default() -> Self {
        Self::new(BUFFER_LINES, BUFFER_BYTES)
    }
}

impl PublishBuffer {
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        PublishBuffer { lines: VecDeque::new(), bytes: 0, max_lines, max_bytes }
    }

    /// Keeps `line`, dropping the oldest lines past the bounds.
    pub fn push(&mut self, line: &str) {
        self.lines.push_back(line.to_string());
        self.bytes += line.len();
        while self.lines.len() > self.max_lines || (self.bytes > self.max_bytes && self.lines.len() > 1) {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// A line that asks to be committed as a message: its `content` and optional `clientId`.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalLine {
    pub content: Value,
    pub client_id: Option<String>,
}

/// `Some` when the (valid JSON) line is an object with `"final": true`.
pub fn final_line(line: &str) -> Option<FinalLine> {
    let v: Value = serde_json::from_str(line).ok()?;
    let o = v.as_object()?;
    if o.get("final") != Some(&Value::Bool(true)) {
        return None;
    }
    Some(FinalLine {
        content: o.get("content").cloned().unwrap_or(Value::Null),
        client_id: o.get("clientId").and_then(Value::as_str).map(String::from),
    })
}

/// Whether a publish's content type is accepted: NDJSON (streamed) or JSON (one object).
pub fn accepted_content_type(header: Option<&str>) -> bool {
    let Some(h) = header else { return false };
    let media = h.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(media.as_str(), "application/x-ndjson" | "application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_frame_names_its_publisher_and_keeps_the_line() {
        let f = line_frame("bot:kiloclaw:sb1", r#"{"delta":"hi","from":"forged"}"#);
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["type"], "line");
        assert_eq!(v["from"], "bot:kiloclaw:sb1");
        assert_eq!(v["line"], serde_json::json!({"delta": "hi", "from": "forged"}));
        let v: serde_json::Value = serde_json::from_str(&line_frame("a\"b", "[1,2]")).unwrap();
        assert_eq!((v["from"].as_str(), &v["line"]), (Some("a\"b"), &serde_json::json!([1, 2])));
    }

    #[test]
    fn buffer_keeps_the_most_recent_within_bounds() {
        let mut b = PublishBuffer::new(3, 1000);
        for i in 0..5 {
            b.push(&format!("{{\"i\":{i}}}"));
        }
        assert_eq!(b.lines().collect::<Vec<_>>(), vec!["{\"i\":2}", "{\"i\":3}", "{\"i\":4}"]);
        let mut b = PublishBuffer::new(100, 10);
        b.push("123456");
        b.push("789012");
        assert_eq!(b.len(), 1);
        // A single line larger than the byte bound is still kept (it was delivered live).
        let mut b = PublishBuffer::new(100, 2);
        b.push("12345");
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn final_lines() {
        let f = final_line(r#"{"final":true,"content":[{"type":"text","text":"done"}],"clientId":"k"}"#).unwrap();
        assert_eq!(f.client_id.as_deref(), Some("k"));
        assert!(f.content.is_array());
        assert!(final_line(r#"{"final":false}"#).is_none());
        assert!(final_line(r#"{"delta":"x"}"#).is_none());
        assert!(final_line("[1]").is_none());
    }

    #[test]
    fn window_counts_unacknowledged_frames_and_bytes() {
        let mut w = SubscriberWindow::new(100, 3);
        assert_eq!(w.sent(40), WindowState::Open);
        assert_eq!(w.sent(40), WindowState::Open);
        assert_eq!(w.unacked_bytes(), 80);
        w.ack(1).unwrap();
        assert_eq!((w.unacked_frames(), w.unacked_bytes()), (1, 40));
        assert!(w.has_room(60) && !w.has_room(61));
        assert_eq!(w.sent(60), WindowState::Open, "exactly the byte bound is allowed");
        assert!(!w.has_room(1));
        assert_eq!(w.sent(1), WindowState::Overrun, "101 bytes unacknowledged");
        w.ack(4).unwrap();
        assert_eq!((w.unacked_frames(), w.unacked_bytes()), (0, 0));
        assert_eq!(w.total_sent(), 4);
    }

    #[test]
    fn window_frame_bound_and_bad_acks() {
        let mut w = SubscriberWindow::new(1 << 20, 2);
        w.sent(1);
        assert!(w.has_room(1));
        w.sent(1);
        assert!(!w.has_room(1), "two frames are the window");
        assert_eq!(w.sent(1), WindowState::Overrun);
        assert!(w.ack(4).is_err(), "more than was sent");
        assert_eq!(w.unacked_frames(), 3, "a bad ack changes nothing");
        w.ack(2).unwrap();
        w.ack(1).unwrap(); // stale: nothing changes
        assert_eq!(w.unacked_frames(), 1);
        w.ack(3).unwrap();
        assert_eq!(w.unacked_frames(), 0);
    }

    #[test]
    fn a_subscriber_that_keeps_acking_is_never_overrun() {
        let mut w = SubscriberWindow::default();
        let line = 60_000;
        for i in 1..=10_000u64 {
            assert_eq!(w.sent(line), WindowState::Open, "frame {i}");
            if i % 10 == 0 {
                w.ack(i - 5).unwrap();
            }
        }
        // One that never acks is overrun after the window.
        let mut stalled = SubscriberWindow::default();
        let overrun_at = (1..).find(|_| stalled.sent(line) == WindowState::Overrun).unwrap();
        assert_eq!(overrun_at, WINDOW_BYTES / line + 1);
    }

    #[test]
    fn subscriber_frames() {
        assert_eq!(parse_subscriber_frame(r#"{"type":"ack","received":12}"#).unwrap(), 12);
        assert_eq!(
            parse_subscriber_frame(r#"{"type":"ack","received":-1}"#).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(parse_subscriber_frame(r#"{"type":"ack"}"#).unwrap_err().code, ErrorCode::InvalidRequest);
        assert_eq!(parse_subscriber_frame(r#"{"type":"hello"}"#).unwrap_err().code, ErrorCode::UnknownFrameType);
        assert_eq!(parse_subscriber_frame("nope").unwrap_err().code, ErrorCode::InvalidJson);
    }

    #[test]
    fn content_types() {
        assert!(accepted_content_type(Some("application/x-ndjson")));
        assert!(accepted_content_type(Some("application/json; charset=utf-8")));
        assert!(!accepted_content_type(Some("text/plain")));
        assert!(!accepted_content_type(None));
    }
}
