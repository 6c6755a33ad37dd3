//! `HttpError`: a refused request, its status and body.

use crate::frame::push_json_string;
use std::fmt;

/// A refused request: its HTTP status and a message for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// 400
    BadRequest(String),
    /// 401: missing or bad signature, stale timestamp, wrong key.
    Unauthorized(String),
    /// 404: no such route (or another app's id).
    NotFound(String),
    /// 405
    MethodNotAllowed(String),
    /// 413: body or event data too large.
    TooLarge(String),
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::Unauthorized(_) => 401,
            HttpError::NotFound(_) => 404,
            HttpError::MethodNotAllowed(_) => 405,
            HttpError::TooLarge(_) => 413,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            HttpError::BadRequest(m)
            | HttpError::Unauthorized(m)
            | HttpError::NotFound(m)
            | HttpError::MethodNotAllowed(m)
            | HttpError::TooLarge(m) => m,
        }
    }

    /// `{"error":"<message>"}`.
    pub fn to_body(&self) -> String {
        let mut out = String::from(r#"{"error":"#);
        push_json_string(&mut out, self.message());
        out.push('}');
        out
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.message())
    }
}

impl std::error::Error for HttpError {}

pub(super) fn bad(m: impl Into<String>) -> HttpError {
    HttpError::BadRequest(m.into())
}

pub(super) fn unauthorized(m: impl Into<String>) -> HttpError {
    HttpError::Unauthorized(m.into())
}
