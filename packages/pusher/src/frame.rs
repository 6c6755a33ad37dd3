//! The wire codec of Pusher Channels protocol 7: text frames of JSON `{event, channel?, data?, user_id?}`.
//!
//! Both directions, both roles:
//! - a server parses what clients send (`ClientFrame::parse`) and writes what servers send
//!   (`ServerFrame::encode`);
//! - a client (our bridges) parses what servers send (`ServerMessage::parse`) and writes what clients
//!   send (`ClientFrame::encode`).
//!
//! Why `data` is so irregular: a server sends `data` as a JSON *string* holding JSON (double-encoded)
//! for every event, `pusher:*` ones included — pusher-js `JSON.parse`s a string `data` and keeps
//! anything else as is, and its handshake reads `data.activity_timeout` from the parsed value. A
//! client sends `pusher:subscribe`, `pusher:signin`, `pusher:ping` with `data` as an object, and
//! `client-*` events with whatever value the application passed. We write exactly what pusher-js
//! and Pusher write, and read leniently: an object or a string holding one, unknown fields ignored,
//! optional fields may be missing.
//!
//! Errors: a frame we cannot use is a `FrameError`. The server answers it with `pusher:error` whose
//! `code` is `null` and keeps the socket open (`FrameError::code`): Pusher's numbered codes are close
//! instructions (4000-4099 "do not reconnect", 4100-4199 "back off", 4200-4299 "reconnect"), and
//! pusher-js acts on them when they arrive during the handshake, so a bad frame must not carry one.
//! Only a frame over the size limit closes the socket, with 1009 (`FrameError::close_code`).
//!
//! The encoders write JSON by hand (`push_json_string`, checked against serde_json by a property
//! test) so that the text is exactly what the tests pin, key order included, and nothing can fail.

use crate::limits::{self, MAX_CLIENT_FRAME_BYTES, MAX_SERVER_FRAME_BYTES};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// Event names of the protocol.
pub mod event {
    pub const CONNECTION_ESTABLISHED: &str = "pusher:connection_established";
    pub const ERROR: &str = "pusher:error";
    pub const PING: &str = "pusher:ping";
    pub const PONG: &str = "pusher:pong";
    pub const SUBSCRIBE: &str = "pusher:subscribe";
    pub const UNSUBSCRIBE: &str = "pusher:unsubscribe";
    pub const SIGNIN: &str = "pusher:signin";
    pub const SIGNIN_SUCCESS: &str = "pusher:signin_success";
    pub const SUBSCRIPTION_ERROR: &str = "pusher:subscription_error";
    pub const SUBSCRIPTION_SUCCEEDED: &str = "pusher_internal:subscription_succeeded";
    pub const MEMBER_ADDED: &str = "pusher_internal:member_added";
    pub const MEMBER_REMOVED: &str = "pusher_internal:member_removed";
    /// Events a client may send to other clients start with this.
    pub const CLIENT_PREFIX: &str = "client-";
}

// ---- errors ---------------------------------------------------------------------------------------

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

// ---- reading ----------------------------------------------------------------------------------------

/// The envelope of any frame. Types are checked by hand so that errors say which field.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    event: Option<Value>,
    #[serde(default)]
    channel: Option<Value>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    user_id: Option<Value>,
}

fn envelope(text: &str, max: usize) -> Result<(String, Envelope<'_>), FrameError> {
    if text.len() > max {
        return Err(FrameError::TooLarge { bytes: text.len(), max });
    }
    if !text.trim_start().starts_with('{') {
        return Err(FrameError::Malformed("a frame is a JSON object".into()));
    }
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let event = match &env.event {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(FrameError::MissingEvent),
    };
    Ok((event, env))
}

/// A field that must be a string, when present.
fn opt_string(v: Option<&Value>, field: &str) -> Result<Option<String>, FrameError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FrameError::Malformed(format!("`{field}` must be a string"))),
    }
}

/// A user id: a string, or a number (written as its JSON text).
fn id_string(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// `data` as text: the contents when it is a JSON string, else its raw JSON text; `None` when absent
/// or `null`.
pub fn data_text(raw: Option<&RawValue>) -> Option<String> {
    let text = raw?.get().trim();
    if text == "null" {
        return None;
    }
    if text.starts_with('"') {
        if let Ok(s) = serde_json::from_str::<String>(text) {
            return Some(s);
        }
    }
    Some(text.to_string())
}

/// `data` as an object: an object, or a string holding one. Absent or `null` is an empty object.
fn data_object(raw: Option<&RawValue>) -> Result<Map<String, Value>, FrameError> {
    let text = match raw {
        None => return Ok(Map::new()),
        Some(r) => r.get().trim(),
    };
    let inner: Value = serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))?;
    match inner {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m),
        Value::String(s) if s.trim().is_empty() => Ok(Map::new()),
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(FrameError::Malformed("`data` must be an object or a string holding one".into())),
        },
        _ => Err(FrameError::Malformed("`data` must be an object or a string holding one".into())),
    }
}

fn required(map: &Map<String, Value>, event: &str, field: &'static str) -> Result<String, FrameError> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(FrameError::MissingField { event: event.to_string(), field }),
    }
}

/// A string field of `data`, or (lenient) an object/array written back as JSON text.
fn json_text_field(map: &Map<String, Value>, field: &str) -> Option<String> {
    match map.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    Ping,
    Pong,
    /// `auth` for private and presence channels; `channel_data` (JSON text, signed as is) for presence.
    Subscribe {
        channel: String,
        auth: Option<String>,
        channel_data: Option<String>,
    },
    Unsubscribe {
        channel: String,
    },
    /// User authentication: `user_data` is JSON text, signed as is.
    Signin {
        auth: String,
        user_data: String,
    },
    /// A `client-*` event. `data` is the contents when the client sent a JSON string, else the raw
    /// JSON text it sent (`{}` when absent).
    ClientEvent {
        event: String,
        channel: String,
        data: String,
    },
}

impl ClientFrame {
    /// Parses a frame a client sent (at most `MAX_CLIENT_FRAME_BYTES`).
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        let (event, env) = envelope(text, MAX_CLIENT_FRAME_BYTES)?;
        match event.as_str() {
            event::PING => Ok(ClientFrame::Ping),
            event::PONG => Ok(ClientFrame::Pong),
            event::SUBSCRIBE => {
                let d = data_object(env.data)?;
                Ok(ClientFrame::Subscribe {
                    channel: required(&d, &event, "channel")?,
                    auth: json_text_field(&d, "auth"),
                    channel_data: json_text_field(&d, "channel_data"),
                })
            }
            event::UNSUBSCRIBE => {
                let d = data_object(env.data)?;
                Ok(ClientFrame::Unsubscribe { channel: required(&d, &event, "channel")? })
            }
            event::SIGNIN => {
                let d = data_object(env.data)?;
                Ok(ClientFrame::Signin {
                    auth: required(&d, &event, "auth")?,
                    user_data: json_text_field(&d, "user_data")
                        .ok_or(FrameError::MissingField { event: event.clone(), field: "user_data" })?,
                })
            }
            e if e.starts_with(event::CLIENT_PREFIX) => {
                let channel = opt_string(env.channel.as_ref(), "channel")?
                    .ok_or(FrameError::MissingField { event: event.clone(), field: "channel" })?;
                Ok(ClientFrame::ClientEvent {
                    event,
                    channel,
                    data: data_text(env.data).unwrap_or_else(|| "{}".into()),
                })
            }
            _ => Err(FrameError::UnknownEvent(event)),
        }
    }

    /// The text a client (pusher-js style) sends for this frame.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64);
        match self {
            ClientFrame::Ping => out.push_str(r#"{"event":"pusher:ping","data":{}}"#),
            ClientFrame::Pong => out.push_str(r#"{"event":"pusher:pong","data":{}}"#),
            ClientFrame::Subscribe { channel, auth, channel_data } => {
                out.push_str(r#"{"event":"pusher:subscribe","data":{"#);
                if let Some(a) = auth {
                    out.push_str(r#""auth":"#);
                    push_json_string(&mut out, a);
                    out.push(',');
                }
                if let Some(cd) = channel_data {
                    out.push_str(r#""channel_data":"#);
                    push_json_string(&mut out, cd);
                    out.push(',');
                }
                out.push_str(r#""channel":"#);
                push_json_string(&mut out, channel);
                out.push_str("}}");
            }
            ClientFrame::Unsubscribe { channel } => {
                out.push_str(r#"{"event":"pusher:unsubscribe","data":{"channel":"#);
                push_json_string(&mut out, channel);
                out.push_str("}}");
            }
            ClientFrame::Signin { auth, user_data } => {
                out.push_str(r#"{"event":"pusher:signin","data":{"auth":"#);
                push_json_string(&mut out, auth);
                out.push_str(r#","user_data":"#);
                push_json_string(&mut out, user_data);
                out.push_str("}}");
            }
            ClientFrame::ClientEvent { event, channel, data } => {
                out.push_str(r#"{"event":"#);
                push_json_string(&mut out, event);
                out.push_str(r#","channel":"#);
                push_json_string(&mut out, channel);
                out.push_str(r#","data":"#);
                push_json_string(&mut out, data);
                out.push('}');
            }
        }
        out
    }
}

/// What a server sends, as our client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// `activity_timeout` in seconds, when the server gave a number.
    ConnectionEstablished {
        socket_id: String,
        activity_timeout_secs: Option<u64>,
    },
    Ping,
    Pong,
    Error {
        code: Option<u16>,
        message: String,
    },
    /// `data` is the inner JSON text (`{}` for public and private channels, the presence list for presence).
    SubscriptionSucceeded {
        channel: String,
        data: String,
    },
    /// `data` is the inner JSON text (`{type, error, status}` from Pusher; anything from others).
    SubscriptionError {
        channel: Option<String>,
        data: String,
    },
    MemberAdded {
        channel: String,
        user_id: String,
        user_info: Option<String>,
    },
    MemberRemoved {
        channel: String,
        user_id: String,
    },
    SigninSuccess {
        user_data: String,
    },
    /// Any other event: `data` unwrapped from its JSON string when it is one, else its raw JSON text
    /// (empty when absent).
    Event {
        channel: Option<String>,
        event: String,
        data: String,
        user_id: Option<String>,
    },
}

impl ServerMessage {
    /// Parses a frame a server sent (at most `MAX_SERVER_FRAME_BYTES`).
    pub fn parse(text: &str) -> Result<ServerMessage, FrameError> {
        let (event, env) = envelope(text, MAX_SERVER_FRAME_BYTES)?;
        let channel = opt_string(env.channel.as_ref(), "channel")?;
        let need_channel = |channel: Option<String>| {
            channel.ok_or(FrameError::MissingField { event: event.clone(), field: "channel" })
        };
        match event.as_str() {
            event::CONNECTION_ESTABLISHED => {
                let d = data_object(env.data)?;
                let socket_id = required(&d, &event, "socket_id")?;
                let activity_timeout_secs = d
                    .get("activity_timeout")
                    .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())));
                Ok(ServerMessage::ConnectionEstablished { socket_id, activity_timeout_secs })
            }
            event::PING => Ok(ServerMessage::Ping),
            event::PONG => Ok(ServerMessage::Pong),
            event::ERROR => {
                let d = data_object(env.data).unwrap_or_default();
                let code = d.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
                let message = d.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
                Ok(ServerMessage::Error { code, message })
            }
            event::SUBSCRIPTION_SUCCEEDED => Ok(ServerMessage::SubscriptionSucceeded {
                channel: need_channel(channel)?,
                data: data_text(env.data).unwrap_or_else(|| "{}".into()),
            }),
            event::SUBSCRIPTION_ERROR => {
                Ok(ServerMessage::SubscriptionError { channel, data: data_text(env.data).unwrap_or_default() })
            }
            event::MEMBER_ADDED => {
                let channel = need_channel(channel)?;
                let d = data_object(env.data)?;
                let user_id =
                    id_string(d.get("user_id")).ok_or(FrameError::MissingField { event, field: "user_id" })?;
                let user_info = d.get("user_info").filter(|v| !v.is_null()).map(Value::to_string);
                Ok(ServerMessage::MemberAdded { channel, user_id, user_info })
            }
            event::MEMBER_REMOVED => {
                let channel = need_channel(channel)?;
                let d = data_object(env.data)?;
                let user_id =
                    id_string(d.get("user_id")).ok_or(FrameError::MissingField { event, field: "user_id" })?;
                Ok(ServerMessage::MemberRemoved { channel, user_id })
            }
            event::SIGNIN_SUCCESS => {
                let d = data_object(env.data)?;
                Ok(ServerMessage::SigninSuccess { user_data: json_text_field(&d, "user_data").unwrap_or_default() })
            }
            _ => Ok(ServerMessage::Event {
                channel,
                data: data_text(env.data).unwrap_or_default(),
                user_id: id_string(env.user_id.as_ref()),
                event,
            }),
        }
    }
}

// ---- writing (server) ---------------------------------------------------------------------------------

/// What a server sends, borrowed, ready to encode. Every `data` is written as a JSON string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFrame<'a> {
    ConnectionEstablished {
        socket_id: &'a str,
        activity_timeout_secs: u32,
    },
    Ping,
    Pong,
    /// `code: None` is written as `null`.
    Error {
        code: Option<u16>,
        message: &'a str,
    },
    /// `data_json` is the inner JSON text: `{}` for public and private channels, `presence_data(..)`
    /// for presence channels.
    SubscriptionSucceeded {
        channel: &'a str,
        data_json: &'a str,
    },
    /// `kind` is Pusher's `type` (`AuthError`, ...), `status` an HTTP-like status.
    SubscriptionError {
        channel: &'a str,
        kind: &'a str,
        error: &'a str,
        status: u16,
    },
    /// `user_info` is JSON text.
    MemberAdded {
        channel: &'a str,
        user_id: &'a str,
        user_info: Option<&'a str>,
    },
    MemberRemoved {
        channel: &'a str,
        user_id: &'a str,
    },
    /// `user_data` is the JSON text the client signed in with.
    SigninSuccess {
        user_data: &'a str,
    },
    /// An application event; `data` is sent as a JSON string holding it (as published).
    Event {
        channel: &'a str,
        event: &'a str,
        data: &'a str,
        user_id: Option<&'a str>,
    },
}

impl ServerFrame<'_> {
    pub fn encode(&self) -> String {
        match *self {
            ServerFrame::ConnectionEstablished { socket_id, activity_timeout_secs } => {
                let mut inner = String::from(r#"{"socket_id":"#);
                push_json_string(&mut inner, socket_id);
                inner.push_str(&format!(r#","activity_timeout":{activity_timeout_secs}}}"#));
                envelope_text(event::CONNECTION_ESTABLISHED, None, &inner, None)
            }
            ServerFrame::Ping => envelope_text(event::PING, None, "{}", None),
            ServerFrame::Pong => envelope_text(event::PONG, None, "{}", None),
            ServerFrame::Error { code, message } => {
                let mut inner = String::from(r#"{"code":"#);
                match code {
                    Some(c) => inner.push_str(&c.to_string()),
                    None => inner.push_str("null"),
                }
                inner.push_str(r#","message":"#);
                push_json_string(&mut inner, message);
                inner.push('}');
                envelope_text(event::ERROR, None, &inner, None)
            }
            ServerFrame::SubscriptionSucceeded { channel, data_json } => {
                envelope_text(event::SUBSCRIPTION_SUCCEEDED, Some(channel), data_json, None)
            }
            ServerFrame::SubscriptionError { channel, kind, error, status } => {
                let mut inner = String::from(r#"{"type":"#);
                push_json_string(&mut inner, kind);
                inner.push_str(r#","error":"#);
                push_json_string(&mut inner, error);
                inner.push_str(&format!(r#","status":{status}}}"#));
                envelope_text(event::SUBSCRIPTION_ERROR, Some(channel), &inner, None)
            }
            ServerFrame::MemberAdded { channel, user_id, user_info } => {
                let mut inner = String::from(r#"{"user_id":"#);
                push_json_string(&mut inner, user_id);
                if let Some(info) = user_info {
                    inner.push_str(r#","user_info":"#);
                    inner.push_str(info);
                }
                inner.push('}');
                envelope_text(event::MEMBER_ADDED, Some(channel), &inner, None)
            }
            ServerFrame::MemberRemoved { channel, user_id } => {
                let mut inner = String::from(r#"{"user_id":"#);
                push_json_string(&mut inner, user_id);
                inner.push('}');
                envelope_text(event::MEMBER_REMOVED, Some(channel), &inner, None)
            }
            ServerFrame::SigninSuccess { user_data } => {
                let mut inner = String::from(r#"{"user_data":"#);
                push_json_string(&mut inner, user_data);
                inner.push('}');
                envelope_text(event::SIGNIN_SUCCESS, None, &inner, None)
            }
            ServerFrame::Event { channel, event, data, user_id } => envelope_text(event, Some(channel), data, user_id),
        }
    }
}

/// The presence list of `subscription_succeeded`: `{"presence":{"ids":[...],"hash":{id:info},"count":n}}`.
/// `info` is JSON text; a member without one is written with `null` (so it is still listed).
pub fn presence_data<'a>(members: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut ids = String::from("[");
    let mut hash = String::from("{");
    let mut count = 0usize;
    for (id, info) in members {
        if count > 0 {
            ids.push(',');
            hash.push(',');
        }
        push_json_string(&mut ids, id);
        push_json_string(&mut hash, id);
        hash.push(':');
        hash.push_str(info.unwrap_or("null"));
        count += 1;
    }
    ids.push(']');
    hash.push('}');
    format!(r#"{{"presence":{{"ids":{ids},"hash":{hash},"count":{count}}}}}"#)
}

/// `{"event":E,"channel":C,"data":"<data as a JSON string>","user_id":U}`.
fn envelope_text(event: &str, channel: Option<&str>, data: &str, user_id: Option<&str>) -> String {
    let mut out = String::with_capacity(32 + event.len() + data.len() + channel.map_or(0, str::len));
    out.push_str(r#"{"event":"#);
    push_json_string(&mut out, event);
    if let Some(c) = channel {
        out.push_str(r#","channel":"#);
        push_json_string(&mut out, c);
    }
    out.push_str(r#","data":"#);
    push_json_string(&mut out, data);
    if let Some(u) = user_id {
        out.push_str(r#","user_id":"#);
        push_json_string(&mut out, u);
    }
    out.push('}');
    out
}

/// Appends `s` as a JSON string literal, escaped exactly as serde_json does.
pub fn push_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[(b >> 4) & 0xf]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn connection_established_is_double_encoded() {
        let f = ServerFrame::ConnectionEstablished { socket_id: "123.456", activity_timeout_secs: 30 }.encode();
        assert_eq!(
            f,
            r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":30}"}"#
        );
        // what pusher-js does with it: JSON.parse the frame, then JSON.parse the string data
        let outer: Value = serde_json::from_str(&f).unwrap();
        let inner: Value = serde_json::from_str(outer["data"].as_str().unwrap()).unwrap();
        assert_eq!(inner["activity_timeout"], 30);
        assert_eq!(inner["socket_id"], "123.456");
    }

    #[test]
    fn server_frames_exact_text() {
        assert_eq!(ServerFrame::Pong.encode(), r#"{"event":"pusher:pong","data":"{}"}"#);
        assert_eq!(ServerFrame::Ping.encode(), r#"{"event":"pusher:ping","data":"{}"}"#);
        assert_eq!(
            ServerFrame::Error { code: Some(4301), message: "slow down" }.encode(),
            r#"{"event":"pusher:error","data":"{\"code\":4301,\"message\":\"slow down\"}"}"#
        );
        assert_eq!(
            ServerFrame::Error { code: None, message: "x" }.encode(),
            r#"{"event":"pusher:error","data":"{\"code\":null,\"message\":\"x\"}"}"#
        );
        assert_eq!(
            ServerFrame::SubscriptionSucceeded { channel: "private-a", data_json: "{}" }.encode(),
            r#"{"event":"pusher_internal:subscription_succeeded","channel":"private-a","data":"{}"}"#
        );
        assert_eq!(
            ServerFrame::SubscriptionError { channel: "private-a", kind: "AuthError", error: "bad", status: 401 }
                .encode(),
            r#"{"event":"pusher:subscription_error","channel":"private-a","data":"{\"type\":\"AuthError\",\"error\":\"bad\",\"status\":401}"}"#
        );
        assert_eq!(
            ServerFrame::MemberAdded { channel: "presence-a", user_id: "u1", user_info: Some(r#"{"n":"A"}"#) }.encode(),
            r#"{"event":"pusher_internal:member_added","channel":"presence-a","data":"{\"user_id\":\"u1\",\"user_info\":{\"n\":\"A\"}}"}"#
        );
        assert_eq!(
            ServerFrame::MemberRemoved { channel: "presence-a", user_id: "u1" }.encode(),
            r#"{"event":"pusher_internal:member_removed","channel":"presence-a","data":"{\"user_id\":\"u1\"}"}"#
        );
        assert_eq!(
            ServerFrame::SigninSuccess { user_data: r#"{"id":"u1"}"# }.encode(),
            r#"{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"u1\\\"}\"}"}"#
        );
        assert_eq!(
            ServerFrame::Event { channel: "c", event: "e", data: r#"{"a":1}"#, user_id: Some("u") }.encode(),
            r#"{"event":"e","channel":"c","data":"{\"a\":1}","user_id":"u"}"#
        );
    }

    #[test]
    fn presence_data_shape() {
        assert_eq!(
            presence_data([("1", Some(r#"{"name":"a"}"#)), ("2", None)]),
            r#"{"presence":{"ids":["1","2"],"hash":{"1":{"name":"a"},"2":null},"count":2}}"#
        );
        assert_eq!(presence_data([]), r#"{"presence":{"ids":[],"hash":{},"count":0}}"#);
    }

    #[test]
    fn parses_what_pusher_js_sends() {
        assert_eq!(ClientFrame::parse(r#"{"event":"pusher:ping","data":{}}"#), Ok(ClientFrame::Ping));
        assert_eq!(
            ClientFrame::parse(
                r#"{"event":"pusher:subscribe","data":{"auth":"k:abc","channel_data":"{\"user_id\":\"1\"}","channel":"presence-x"}}"#
            ),
            Ok(ClientFrame::Subscribe {
                channel: "presence-x".into(),
                auth: Some("k:abc".into()),
                channel_data: Some(r#"{"user_id":"1"}"#.into())
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"event":"pusher:unsubscribe","data":{"channel":"a"}}"#),
            Ok(ClientFrame::Unsubscribe { channel: "a".into() })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}"#),
            Ok(ClientFrame::Signin { auth: "k:s".into(), user_data: r#"{"id":"1"}"#.into() })
        );
        // client events: an object is kept as its exact text, a string as its contents
        assert_eq!(
            ClientFrame::parse(r#"{"event":"client-typing","channel":"private-a","data":{"b":1, "a":2}}"#),
            Ok(ClientFrame::ClientEvent {
                event: "client-typing".into(),
                channel: "private-a".into(),
                data: r#"{"b":1, "a":2}"#.into()
            })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"event":"client-x","channel":"private-a","data":"hi \"there\""}"#),
            Ok(ClientFrame::ClientEvent {
                event: "client-x".into(),
                channel: "private-a".into(),
                data: r#"hi "there""#.into()
            })
        );
    }

    #[test]
    fn lenient_subscribe_with_string_data() {
        assert_eq!(
            ClientFrame::parse(r#"{"event":"pusher:subscribe","data":"{\"channel\":\"a\",\"x\":1}","zz":true}"#),
            Ok(ClientFrame::Subscribe { channel: "a".into(), auth: None, channel_data: None })
        );
        // Kick's subscribe: empty auth
        assert_eq!(
            ClientFrame::parse(r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"chatrooms.1.v2"}}"#),
            Ok(ClientFrame::Subscribe {
                channel: "chatrooms.1.v2".into(),
                auth: Some(String::new()),
                channel_data: None
            })
        );
        // a ping without data
        assert_eq!(ClientFrame::parse(r#"{"event":"pusher:ping"}"#), Ok(ClientFrame::Ping));
    }

    #[test]
    fn bad_client_frames_are_typed_errors() {
        assert!(matches!(ClientFrame::parse("nope"), Err(FrameError::Malformed(_))));
        assert!(matches!(ClientFrame::parse("[1]"), Err(FrameError::Malformed(_))));
        assert_eq!(ClientFrame::parse(r#"{"data":{}}"#), Err(FrameError::MissingEvent));
        assert_eq!(ClientFrame::parse(r#"{"event":3}"#), Err(FrameError::MissingEvent));
        assert_eq!(
            ClientFrame::parse(r#"{"event":"pusher:subscribe","data":{}}"#),
            Err(FrameError::MissingField { event: "pusher:subscribe".into(), field: "channel" })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"event":"client-x","data":{}}"#),
            Err(FrameError::MissingField { event: "client-x".into(), field: "channel" })
        );
        assert_eq!(ClientFrame::parse(r#"{"event":"hello"}"#), Err(FrameError::UnknownEvent("hello".into())));
        assert!(matches!(
            ClientFrame::parse(r#"{"event":"pusher:subscribe","data":[1]}"#),
            Err(FrameError::Malformed(_))
        ));
        let big = format!(r#"{{"event":"client-x","channel":"c","data":"{}"}}"#, "a".repeat(MAX_CLIENT_FRAME_BYTES));
        let err = ClientFrame::parse(&big).unwrap_err();
        assert_eq!(err.close_code(), Some(1009));
        assert_eq!(
            FrameError::MissingEvent.to_error_frame(),
            r#"{"event":"pusher:error","data":"{\"code\":null,\"message\":\"malformed frame: `event` must be a string\"}"}"#
        );
    }

    #[test]
    fn client_frames_exact_text() {
        assert_eq!(ClientFrame::Ping.encode(), r#"{"event":"pusher:ping","data":{}}"#);
        assert_eq!(ClientFrame::Pong.encode(), r#"{"event":"pusher:pong","data":{}}"#);
        assert_eq!(
            ClientFrame::Subscribe { channel: "chatrooms.1.v2".into(), auth: Some(String::new()), channel_data: None }
                .encode(),
            r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"chatrooms.1.v2"}}"#
        );
        assert_eq!(
            ClientFrame::Subscribe { channel: "a".into(), auth: None, channel_data: None }.encode(),
            r#"{"event":"pusher:subscribe","data":{"channel":"a"}}"#
        );
        assert_eq!(
            ClientFrame::Unsubscribe { channel: "a".into() }.encode(),
            r#"{"event":"pusher:unsubscribe","data":{"channel":"a"}}"#
        );
    }

    #[test]
    fn parses_server_messages() {
        assert_eq!(
            ServerMessage::parse(
                r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}"#
            ),
            Ok(ServerMessage::ConnectionEstablished { socket_id: "1.2".into(), activity_timeout_secs: Some(120) })
        );
        assert_eq!(
            ServerMessage::parse(r#"{"event":"pusher:connection_established","data":{"socket_id":"1.2"}}"#),
            Ok(ServerMessage::ConnectionEstablished { socket_id: "1.2".into(), activity_timeout_secs: None })
        );
        assert_eq!(ServerMessage::parse(r#"{"event":"pusher:ping","data":{}}"#), Ok(ServerMessage::Ping));
        assert_eq!(
            ServerMessage::parse(
                r#"{"event":"pusher:error","data":{"code":4001,"message":"App key x not in this cluster"}}"#
            ),
            Ok(ServerMessage::Error { code: Some(4001), message: "App key x not in this cluster".into() })
        );
        assert_eq!(
            ServerMessage::parse(r#"{"event":"pusher:error","data":"{\"code\":null,\"message\":\"m\"}"}"#),
            Ok(ServerMessage::Error { code: None, message: "m".into() })
        );
        assert_eq!(
            ServerMessage::parse(
                r#"{"event":"pusher_internal:subscription_succeeded","channel":"chatrooms.1.v2","data":"{}"}"#
            ),
            Ok(ServerMessage::SubscriptionSucceeded { channel: "chatrooms.1.v2".into(), data: "{}".into() })
        );
        assert_eq!(
            ServerMessage::parse(
                r#"{"event":"App\\Events\\ChatMessageEvent","data":"{\"id\":\"x\",\"content\":\"hi\"}","channel":"chatrooms.1.v2"}"#
            ),
            Ok(ServerMessage::Event {
                channel: Some("chatrooms.1.v2".into()),
                event: r"App\Events\ChatMessageEvent".into(),
                data: r#"{"id":"x","content":"hi"}"#.into(),
                user_id: None
            })
        );
        // object data (some servers): kept as its text
        assert_eq!(
            ServerMessage::parse(r#"{"event":"e","channel":"c","data":{"a":[1,2]},"user_id":7}"#),
            Ok(ServerMessage::Event {
                channel: Some("c".into()),
                event: "e".into(),
                data: r#"{"a":[1,2]}"#.into(),
                user_id: Some("7".into())
            })
        );
        assert_eq!(
            ServerMessage::parse(
                r#"{"event":"pusher_internal:member_added","channel":"presence-a","data":"{\"user_id\":5,\"user_info\":{\"n\":1}}"}"#
            ),
            Ok(ServerMessage::MemberAdded {
                channel: "presence-a".into(),
                user_id: "5".into(),
                user_info: Some(r#"{"n":1}"#.into())
            })
        );
        assert_eq!(
            ServerMessage::parse(r#"{"event":"pusher_internal:member_removed","data":"{}"}"#).unwrap_err(),
            FrameError::MissingField { event: "pusher_internal:member_removed".into(), field: "channel" }
        );
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[a-z\\-\"\\\\{}:,]{0,20}"]
    }

    fn arb_client_frame() -> impl Strategy<Value = ClientFrame> {
        prop_oneof![
            Just(ClientFrame::Ping),
            Just(ClientFrame::Pong),
            (arb_text(), proptest::option::of(arb_text()), proptest::option::of(arb_text()))
                .prop_map(|(channel, auth, channel_data)| ClientFrame::Subscribe { channel, auth, channel_data }),
            arb_text().prop_map(|channel| ClientFrame::Unsubscribe { channel }),
            (arb_text(), arb_text()).prop_map(|(auth, user_data)| ClientFrame::Signin { auth, user_data }),
            (arb_text(), arb_text(), arb_text()).prop_map(|(e, channel, data)| ClientFrame::ClientEvent {
                event: format!("client-{e}"),
                channel,
                data
            }),
        ]
    }

    proptest! {
        #[test]
        fn escaping_matches_serde_json(s in any::<String>()) {
            prop_assert_eq!(json_string(&s), serde_json::to_string(&s).unwrap());
        }

        #[test]
        fn client_frames_round_trip(f in arb_client_frame()) {
            // the subscribe/unsubscribe/signin `data` empty-string special case: an empty channel
            // string is still a channel
            let text = f.encode();
            prop_assert_eq!(ClientFrame::parse(&text), Ok(f));
        }

        #[test]
        fn server_events_round_trip(channel in arb_text(), event in "[a-z\\\\:]{1,20}", data in arb_text(), user in proptest::option::of(arb_text())) {
            prop_assume!(!event.starts_with("pusher"));
            let text = ServerFrame::Event { channel: &channel, event: &event, data: &data, user_id: user.as_deref() }.encode();
            prop_assert_eq!(
                ServerMessage::parse(&text),
                Ok(ServerMessage::Event { channel: Some(channel.clone()), event: event.clone(), data: data.clone(), user_id: user.clone() })
            );
        }

        #[test]
        fn parsing_never_panics(s in any::<String>()) {
            let _ = ClientFrame::parse(&s);
            let _ = ServerMessage::parse(&s);
        }

        #[test]
        fn parsing_near_valid_frames_never_panics(event in "(pusher:[a-z_]{0,12}|client-[a-z]{0,3}|pusher_internal:[a-z_]{0,20})", data in prop_oneof![Just("{}".to_string()), Just("\"\"".to_string()), Just("null".to_string()), Just("[]".to_string()), Just("\"{\\\"channel\\\":1}\"".to_string()), Just("{\"user_id\":[]}".to_string())]) {
            let text = format!(r#"{{"event":"{event}","channel":"c","data":{data}}}"#);
            let _ = ClientFrame::parse(&text);
            let _ = ServerMessage::parse(&text);
        }
    }
}
