//! The anonymous login over HTTP and the socket's `connection_init` payload.

use super::{first_error, APP_VERSION};
use crate::base64;
use crate::lenient;
use crate::limits::*;
use serde_json::{json, Value};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    Json(String),
    /// The answer's `errors`: the first message.
    Graphql(String),
    /// No usable `data.anonLogin.token` (missing, empty, with spaces, or longer than `MAX_KOSMI_TOKEN_CHARS`).
    NoToken,
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::Json(e) => write!(f, "kosmi login: the answer is not JSON: {e}"),
            LoginError::Graphql(e) => write!(f, "kosmi login refused: {e}"),
            LoginError::NoToken => write!(f, "kosmi login: the answer has no usable token"),
        }
    }
}

impl std::error::Error for LoginError {}

/// Reads the token from the login's answer `{data: {anonLogin: {token}}}`.
pub fn parse_login(body: &str) -> Result<String, LoginError> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(LoginError::Json(format!("answer of {} bytes", body.len())));
    }
    let v: Value = serde_json::from_str(body).map_err(|e| LoginError::Json(e.to_string()))?;
    if let Some(message) = first_error(&v) {
        return Err(LoginError::Graphql(message));
    }
    let token = v.pointer("/data/anonLogin/token").and_then(Value::as_str).ok_or(LoginError::NoToken)?;
    let ok = !token.is_empty()
        && token.len() <= MAX_KOSMI_TOKEN_CHARS
        && !token.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(token.to_string())
    } else {
        Err(LoginError::NoToken)
    }
}

/// The `connection_init` payload: `{token, ua: base64(User-Agent), v: "4364", r: ""}`.
pub fn init_payload(token: &str, user_agent: &str) -> Value {
    let ua = lenient::cut(user_agent, MAX_USER_AGENT_CHARS);
    json!({"token": token, "ua": base64::encode(ua.as_bytes()), "v": APP_VERSION, "r": ""})
}
