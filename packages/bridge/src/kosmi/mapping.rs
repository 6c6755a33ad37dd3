//! Mapping a `newMessage` to a `BridgedMessage`.

use super::{first_error, RoomId};
use crate::lenient;
use crate::limits::*;
use crate::source::{Author, BridgedMessage, Platform, Source};
use serde_json::Value;
use std::fmt;
use switchboard_core::limits::MAX_TEXT_CHARS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KosmiError {
    /// The result carried GraphQL errors (the first message).
    Graphql(String),
    /// A required field was missing or unusable.
    Missing(&'static str),
}

impl fmt::Display for KosmiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KosmiError::Graphql(e) => write!(f, "kosmi: {e}"),
            KosmiError::Missing(field) => write!(f, "kosmi newMessage: {field} is missing or invalid"),
        }
    }
}

impl std::error::Error for KosmiError {}

/// Maps one `OnNewMessage` result `{data: {newMessage: {id, body, time, user: {id, username, displayName}}}}`.
pub fn map_new_message(room: &RoomId, payload: &Value) -> Result<BridgedMessage, KosmiError> {
    if let Some(e) = first_error(payload) {
        return Err(KosmiError::Graphql(e));
    }
    let m = payload.pointer("/data/newMessage").and_then(Value::as_object).ok_or(KosmiError::Missing("newMessage"))?;
    let external_id = lenient::id(m.get("id"), MAX_EXTERNAL_ID_CHARS).ok_or(KosmiError::Missing("newMessage.id"))?;
    let raw = m.get("body").and_then(Value::as_str).ok_or(KosmiError::Missing("newMessage.body"))?;
    let clean: String = raw.chars().filter(|c| *c == '\n' || !c.is_control()).collect();
    let text = lenient::cut_with_ellipsis(clean.trim(), MAX_TEXT_CHARS);
    if text.is_empty() {
        return Err(KosmiError::Missing("newMessage.body"));
    }
    let user = m.get("user").and_then(Value::as_object).ok_or(KosmiError::Missing("newMessage.user"))?;
    let user_id =
        lenient::id(user.get("id"), MAX_EXTERNAL_USER_ID_CHARS).ok_or(KosmiError::Missing("newMessage.user.id"))?;
    let username = lenient::text(user.get("username"), MAX_USERNAME_CHARS)
        .unwrap_or_else(|| lenient::cut(&user_id, MAX_USERNAME_CHARS));
    let display_name = lenient::text(user.get("displayName"), MAX_USERNAME_CHARS);
    Ok(BridgedMessage {
        idempotency_key: Platform::Kosmi.idempotency_key(&external_id),
        sender_id: Platform::Kosmi.sender_id(&user_id),
        text,
        source: Source {
            platform: Platform::Kosmi,
            room: room.as_str().to_string(),
            external_id,
            author: Author { id: user_id, username, display_name, color: None, badges: vec![] },
            reply_to: None,
            emotes: vec![],
        },
        reply_to_external_id: None,
    })
}
