//! Request bodies. Parsing separates broken JSON (`invalid_json`) from well-formed JSON of the wrong
//! shape (`invalid_request`, naming the field); unknown fields are refused.

use crate::error::ApiError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// Parses a JSON object body into `T`.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.len() > crate::limits::MAX_BODY_BYTES {
        return Err(ApiError::new(crate::ErrorCode::PayloadTooLarge, "request body is over 256 KiB"));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::invalid_json(format!("body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid_json("body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid(e.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DevTokenRequest {
    pub user_id: Option<String>,
    pub sandbox_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateConversation {
    pub sandbox_id: String,
    pub title: Option<String>,
    pub additional_members: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RenameConversation {
    pub title: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddMember {
    pub user_id: String,
}

/// `POST /v1/messages` (humans): names the conversation in the body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateMessage {
    pub conversation_id: String,
    pub content: Value,
    pub in_reply_to_message_id: Option<String>,
    pub client_id: Option<String>,
}

/// The bot's send: the conversation is in the path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BotCreateMessage {
    pub content: Value,
    pub in_reply_to_message_id: Option<String>,
    pub client_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EditMessage {
    pub conversation_id: String,
    pub content: Value,
    pub timestamp: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BotEditMessage {
    pub content: Value,
    pub timestamp: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddReaction {
    pub conversation_id: String,
    pub emoji: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MarkRead {
    pub last_seen_message_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetBotStatus {
    pub online: bool,
    /// When the bot's state changed (ms); defaults to now.
    pub at: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetProfile {
    pub label: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn distinguishes_syntax_from_shape() {
        let e = parse_body::<RenameConversation>(b"{").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        let e = parse_body::<RenameConversation>(b"[1]").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        let e = parse_body::<RenameConversation>(br#"{"title": 5}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = parse_body::<RenameConversation>(br#"{"title": "x", "color": "red"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.message.contains("color"));
        let e = parse_body::<EditMessage>(br#"{"conversationId": "c", "content": [], "timestamp": 1.5}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert_eq!(parse_body::<RenameConversation>(br#"{"title": "x"}"#).unwrap().title, "x");
    }

    #[test]
    fn oversize_bodies() {
        let big = vec![b' '; crate::limits::MAX_BODY_BYTES + 1];
        assert_eq!(parse_body::<RenameConversation>(&big).unwrap_err().code, ErrorCode::PayloadTooLarge);
    }
}
