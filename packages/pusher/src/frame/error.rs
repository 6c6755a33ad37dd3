//! `FrameError`: why a frame could not be used, and how a server answers it.

use super::ServerFrame;
use crate::limits;
use std::fmt;

/// Why a frame could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Longer than the limit for its direction.
    TooLarge { bytes: usize, max: usize },
    /// Not a JSON object, or a field of the wrong type.
    Malformed(String),
    /// No string `event`.
    MissingEvent,
    /// A required field is missing or not a string.
    MissingField { event: String, field: &'static str },
    /// A client sent an event that is neither a known `pusher:*` one nor a `client-*` one.
    UnknownEvent(String),
}

impl FrameError {
    /// The `code` of the `pusher:error` answer: always `null` (see the module comment).
    pub fn code(&self) -> Option<u16> {
        None
    }

    /// The close code a server uses instead of answering: only for frames over the size limit.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            FrameError::TooLarge { .. } => Some(limits::close::MESSAGE_TOO_BIG),
            _ => None,
        }
    }

    /// The `pusher:error` frame answering this error.
    pub fn to_error_frame(&self) -> String {
        ServerFrame::Error { code: self.code(), message: &self.to_string() }.encode()
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { bytes, max } => write!(f, "frame of {bytes} bytes is over the limit of {max}"),
            FrameError::Malformed(why) => write!(f, "malformed frame: {why}"),
            FrameError::MissingEvent => f.write_str("malformed frame: `event` must be a string"),
            FrameError::MissingField { event, field } => write!(f, "{event}: `{field}` is required"),
            FrameError::UnknownEvent(e) => {
                write!(f, "unknown event `{}`: clients may send pusher:* events and client-* events", clip(e, 64))
            }
        }
    }
}

impl std::error::Error for FrameError {}

fn clip(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
