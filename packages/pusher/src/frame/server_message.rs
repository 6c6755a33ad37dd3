//! `ServerMessage`: what a server sends, as our client reads it.

use super::read::{data_object, data_text, envelope, id_string, json_text_field, opt_string, required};
use super::{event, FrameError};
use crate::limits::MAX_SERVER_FRAME_BYTES;
use serde_json::Value;

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
