//! The one error type every answer is built from: an HTTP status, a stable machine code and a human message.
//! Serialized as `{"error":{"code","message"}}` (HTTP) or `{"type":"error","code","message"}` (WebSocket).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    EditConflict,
    /// A `clientId` already used for a message with other content.
    IdempotencyConflict,
    MessageDeleted,
    PayloadTooLarge,
    UpgradeRequired,
    BadFrame,
    UnknownFrameType,
    BinaryNotSupported,
    UnsupportedContentType,
    BotOffline,
    /// Too many publishes in progress on one live channel (`live::MAX_CONCURRENT_PUBLISHES`).
    TooManyPublishes,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson
            | ErrorCode::InvalidRequest
            | ErrorCode::BadFrame
            | ErrorCode::UnknownFrameType
            | ErrorCode::BinaryNotSupported => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::EditConflict
            | ErrorCode::IdempotencyConflict
            | ErrorCode::MessageDeleted
            | ErrorCode::BotOffline
            | ErrorCode::TooManyPublishes => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedContentType => 415,
            ErrorCode::UpgradeRequired => 426,
            ErrorCode::Internal => 500,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::EditConflict => "edit_conflict",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::MessageDeleted => "message_deleted",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UpgradeRequired => "upgrade_required",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownFrameType => "unknown_frame_type",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::UnsupportedContentType => "unsupported_content_type",
            ErrorCode::BotOffline => "bot_offline",
            ErrorCode::TooManyPublishes => "too_many_publishes",
            ErrorCode::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidJson, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// `{"error":{"code","message"}}`, the HTTP body.
    pub fn to_http_body(&self) -> String {
        serde_json::json!({"error": {"code": self.code.as_str(), "message": self.message}}).to_string()
    }

    /// `{"type":"error","code","message","requestId"?}`, the WebSocket frame.
    pub fn to_frame(&self, request_id: Option<&str>) -> String {
        let mut v = serde_json::json!({"type": "error", "code": self.code.as_str(), "message": self.message});
        if let (Some(id), Some(obj)) = (request_id, v.as_object_mut()) {
            obj.insert("requestId".into(), serde_json::Value::String(id.to_string()));
        }
        v.to_string()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_body_shape() {
        let e = ApiError::invalid("content: must not be empty");
        let v: serde_json::Value = serde_json::from_str(&e.to_http_body()).unwrap();
        assert_eq!(v["error"]["code"], "invalid_request");
        assert_eq!(v["error"]["message"], "content: must not be empty");
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn frame_shape_carries_request_id() {
        let e = ApiError::new(ErrorCode::UnknownFrameType, "nope");
        let v: serde_json::Value = serde_json::from_str(&e.to_frame(Some("r1"))).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "unknown_frame_type");
        assert_eq!(v["requestId"], "r1");
        let v: serde_json::Value = serde_json::from_str(&e.to_frame(None)).unwrap();
        assert!(v.get("requestId").is_none());
    }

    #[test]
    fn serde_codes_match_as_str() {
        for code in [ErrorCode::EditConflict, ErrorCode::PayloadTooLarge, ErrorCode::BinaryNotSupported] {
            let s = serde_json::to_value(code).unwrap();
            assert_eq!(s, code.as_str());
        }
    }
}
