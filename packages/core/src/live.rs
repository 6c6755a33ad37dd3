//! The live channel's rules: what a late subscriber is owed, and which line commits a message.
//!
//! A publish streams NDJSON lines to subscribers as they arrive (see `ndjson`). Each publish in
//! progress keeps its most recent lines in a bounded `PublishBuffer`, so a subscriber that joins
//! mid-stream first gets what it missed. A line `{"final": true, "content": [...], "clientId"?}` is
//! delivered like any other and then committed to the conversation as a normal message.

use serde_json::Value;
use std::collections::VecDeque;

/// Lines longer than this are skipped.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// What a publish in progress keeps for late subscribers.
pub const BUFFER_LINES: usize = 512;
pub const BUFFER_BYTES: usize = 1024 * 1024;
/// A publish body that sends nothing for this long is ended.
pub const DEFAULT_IDLE_TIMEOUT_MS: i64 = 30_000;

/// WebSocket close codes of the live channel.
pub mod close {
    /// Unknown conversation, or one the caller cannot see.
    pub const UNKNOWN_CONVERSATION: u16 = 4001;
    /// The conversation's bot is not online.
    pub const BOT_OFFLINE: u16 = 4002;
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
    fn content_types() {
        assert!(accepted_content_type(Some("application/x-ndjson")));
        assert!(accepted_content_type(Some("application/json; charset=utf-8")));
        assert!(!accepted_content_type(Some("text/plain")));
        assert!(!accepted_content_type(None));
    }
}
