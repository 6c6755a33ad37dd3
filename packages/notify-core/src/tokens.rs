//! Expo push tokens: validation and the bodies of `POST` / `DELETE /v1/push-tokens`.

use serde::Deserialize;
use switchboard_core::requests::parse_body;
use switchboard_core::ApiError;

/// Longest accepted token.
pub const MAX_TOKEN_CHARS: usize = 256;
/// A user keeps at most this many devices; registering one more forgets the least recently registered.
pub const MAX_TOKENS_PER_USER: usize = 20;
pub const MAX_PLATFORM_CHARS: usize = 16;
pub const MAX_APP_VERSION_CHARS: usize = 64;

/// `ExponentPushToken[...]` or `ExpoPushToken[...]`; the inside is 1.. printable ASCII characters
/// other than brackets and spaces.
pub fn validate_expo_token(token: &str) -> Result<(), ApiError> {
    let bad = || ApiError::invalid("token: must be an Expo push token, ExponentPushToken[...] or ExpoPushToken[...]");
    if token.len() > MAX_TOKEN_CHARS {
        return Err(bad());
    }
    let inner = token
        .strip_prefix("ExponentPushToken[")
        .or_else(|| token.strip_prefix("ExpoPushToken["))
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(bad)?;
    let ok = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_graphic() && b != b'[' && b != b']');
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `POST /v1/push-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterToken {
    pub token: String,
    pub platform: Option<String>,
    pub app_version: Option<String>,
}

impl RegisterToken {
    pub fn parse(body: &[u8]) -> Result<RegisterToken, ApiError> {
        let r: RegisterToken = parse_body(body)?;
        validate_expo_token(&r.token)?;
        if let Some(p) = &r.platform {
            let ok = !p.is_empty()
                && p.len() <= MAX_PLATFORM_CHARS
                && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !ok {
                return Err(ApiError::invalid(
                    "platform: must be 1..16 characters of a-z, 0-9, - or _ (e.g. ios, android)",
                ));
            }
        }
        if let Some(v) = &r.app_version {
            let n = v.chars().count();
            if n == 0 || n > MAX_APP_VERSION_CHARS || v.chars().any(char::is_control) {
                return Err(ApiError::invalid("appVersion: must be 1..64 characters without control characters"));
            }
        }
        Ok(r)
    }
}

/// `DELETE /v1/push-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeleteToken {
    pub token: String,
}

impl DeleteToken {
    pub fn parse(body: &[u8]) -> Result<DeleteToken, ApiError> {
        let d: DeleteToken = parse_body(body)?;
        validate_expo_token(&d.token)?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shapes() {
        for ok in ["ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]", "ExpoPushToken[abc-DEF_123]", "ExponentPushToken[a]"] {
            assert!(validate_expo_token(ok).is_ok(), "{ok}");
        }
        let long = format!("ExponentPushToken[{}]", "a".repeat(300));
        for bad in [
            "",
            "ExponentPushToken[]",
            "ExponentPushToken[abc",
            "ExponentPushToken[a b]",
            "ExponentPushToken[a]b]",
            "exponentpushtoken[abc]",
            "FcmToken[abc]",
            "ExponentPushToken[é]",
            long.as_str(),
        ] {
            assert!(validate_expo_token(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn register_bodies() {
        let r = RegisterToken::parse(br#"{"token":"ExponentPushToken[abc]","platform":"ios","appVersion":"1.2.3"}"#)
            .unwrap();
        assert_eq!(r.platform.as_deref(), Some("ios"));
        assert!(RegisterToken::parse(br#"{"token":"ExponentPushToken[abc]"}"#).is_ok());
        for bad in [
            r#"{"token":"nope"}"#,
            r#"{"token":"ExponentPushToken[abc]","platform":""}"#,
            r#"{"token":"ExponentPushToken[abc]","platform":"iOS"}"#,
            r#"{"token":"ExponentPushToken[abc]","appVersion":""}"#,
            r#"{"token":"ExponentPushToken[abc]","extra":1}"#,
            r#"{"platform":"ios"}"#,
        ] {
            assert_eq!(RegisterToken::parse(bad.as_bytes()).unwrap_err().status(), 400, "{bad}");
        }
        assert_eq!(DeleteToken::parse(b"{}").unwrap_err().status(), 400);
        assert!(DeleteToken::parse(br#"{"token":"ExpoPushToken[z]"}"#).is_ok());
    }
}
