//! `ServerFrame`: what a server sends, borrowed, and its exact encoding.

use super::event;
use super::write::{envelope_text, push_json_string};

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
