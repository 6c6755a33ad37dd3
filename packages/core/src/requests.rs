//! Request bodies. Parsing separates broken JSON (`invalid_json`) from well-formed JSON of the wrong
//! shape (`invalid_request`, naming the field); unknown fields are refused.

use crate::error::ApiError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// JSON routes take `application/json` (any parameters, e.g. `; charset=utf-8`) or a `+json` type.
/// A request without a content-type is read as JSON too (curl's `-d` aside, many clients send none);
/// only an explicit other type is refused (415 `unsupported_content_type`), since a form or text
/// body is never what the caller meant.
pub fn json_content_type(header: Option<&str>) -> Result<(), ApiError> {
    let Some(h) = header else { return Ok(()) };
    let media = h.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media.is_empty()
        || media == "application/json"
        || (media.starts_with("application/") && media.ends_with("+json"))
    {
        return Ok(());
    }
    Err(ApiError::new(
        crate::ErrorCode::UnsupportedContentType,
        format!("content-type {media} is not accepted: this route takes a JSON body (application/json)"),
    ))
}

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
    serde_path_to_error::deserialize(value).map_err(|e| ApiError::invalid(shape_error(&e)))
}

/// A shape error's message names the field it is about (`title: invalid type: integer `5`, expected
/// a string`, `additionalMembers[1]: ...`); errors of the body as a whole (an unknown or missing
/// field, which serde names itself) are serde's message.
fn shape_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    if path.is_empty() || path == "." {
        e.inner().to_string()
    } else {
        format!("{path}: {}", e.inner())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DevTokenRequest {
    pub user_id: Option<String>,
    pub sandbox_id: Option<String>,
}

/// `PUT /bot/v1/sandboxes/:sandboxId/users` and `PUT /operator/v1/sandboxes/:sandboxId/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetSandboxUsers {
    pub users: Vec<String>,
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
        assert!(e.message.starts_with("title: invalid type"), "{}", e.message);
        let e = parse_body::<RenameConversation>(br#"{"title": "x", "color": "red"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.message.contains("color"));
        let e = parse_body::<EditMessage>(br#"{"conversationId": "c", "content": [], "timestamp": 1.5}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert_eq!(parse_body::<RenameConversation>(br#"{"title": "x"}"#).unwrap().title, "x");
    }

    #[test]
    fn wrong_types_name_the_field_path() {
        let starts = |body: &[u8], field: &str, e: ApiError| {
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{}", String::from_utf8_lossy(body));
            assert!(e.message.starts_with(&format!("{field}: ")), "{}: {}", String::from_utf8_lossy(body), e.message);
        };
        let body = br#"{"sandboxId": "sb", "additionalMembers": ["bob", 7]}"#;
        starts(body, "additionalMembers[1]", parse_body::<CreateConversation>(body).unwrap_err());
        let body = br#"{"sandboxId": 1}"#;
        starts(body, "sandboxId", parse_body::<CreateConversation>(body).unwrap_err());
        let body = br#"{"online": "yes"}"#;
        starts(body, "online", parse_body::<SetBotStatus>(body).unwrap_err());
        let body = br#"{"online": true, "at": "now"}"#;
        starts(body, "at", parse_body::<SetBotStatus>(body).unwrap_err());
        let body = br#"{"conversationId": "c", "content": [], "timestamp": 1.5}"#;
        starts(body, "timestamp", parse_body::<EditMessage>(body).unwrap_err());
        // Errors of the whole body still name the field themselves.
        let e = parse_body::<RenameConversation>(b"{}").unwrap_err();
        assert!(e.message.contains("title"), "{}", e.message);
    }

    #[test]
    fn json_routes_refuse_other_content_types() {
        for ok in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/merge-patch+json"),
            Some(""),
        ] {
            assert!(json_content_type(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/x-ndjson",
        ] {
            let e = json_content_type(Some(bad)).unwrap_err();
            assert_eq!((e.code, e.status()), (ErrorCode::UnsupportedContentType, 415), "{bad}");
            assert!(e.message.contains(bad.split(';').next().unwrap_or(bad)), "{}", e.message);
        }
    }

    #[test]
    fn oversize_bodies() {
        let big = vec![b' '; crate::limits::MAX_BODY_BYTES + 1];
        assert_eq!(parse_body::<RenameConversation>(&big).unwrap_err().code, ErrorCode::PayloadTooLarge);
    }
}
