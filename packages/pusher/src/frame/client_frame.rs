//! `ClientFrame`: what a client sends; a server parses it, our client encodes it.

use super::read::{data_object, data_text, envelope, json_text_field, opt_string, required};
use super::{event, push_json_string, FrameError};
use crate::limits::MAX_CLIENT_FRAME_BYTES;

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
