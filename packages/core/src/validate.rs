//! Validation of the small scalar inputs: ids, titles, emoji, client ids, page sizes.
//! Each function names the rule it enforces and answers `invalid_request` with the field's name.

use crate::error::ApiError;
use crate::limits::*;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// `^[A-Za-z0-9_-]{1,64}$`.
pub fn sandbox_id(s: &str) -> Result<(), ApiError> {
    let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("sandboxId: must match ^[A-Za-z0-9_-]{1,64}$"))
    }
}

/// A human user id: 1..128 characters, no control characters, not shaped like a bot id.
pub fn user_id(s: &str) -> Result<(), ApiError> {
    let n = s.chars().count();
    if n == 0 || n > MAX_USER_ID_CHARS || has_control(s) || s.trim() != s {
        return Err(ApiError::invalid(
            "userId: must be 1..128 characters without control characters or surrounding spaces",
        ));
    }
    if s.starts_with("bot:") {
        return Err(ApiError::invalid("userId: must not start with \"bot:\""));
    }
    Ok(())
}

/// A conversation title: trimmed, 1..200 characters. Answers the trimmed title.
pub fn title(s: &str) -> Result<String, ApiError> {
    let t = s.trim();
    let n = t.chars().count();
    if n == 0 || n > MAX_TITLE_CHARS {
        return Err(ApiError::invalid("title: must be 1..200 characters after trimming"));
    }
    if has_control(t) {
        return Err(ApiError::invalid("title: must not contain control characters"));
    }
    Ok(t.to_string())
}

/// The sandbox's display label: trimmed, 1..80 characters.
pub fn sandbox_label(s: &str) -> Result<String, ApiError> {
    let t = s.trim();
    let n = t.chars().count();
    if n == 0 || n > MAX_SANDBOX_LABEL_CHARS || has_control(t) {
        return Err(ApiError::invalid("label: must be 1..80 characters after trimming, without control characters"));
    }
    Ok(t.to_string())
}

/// An emoji reaction: 1..64 UTF-8 bytes, no control characters, no surrounding spaces.
pub fn emoji(s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > MAX_EMOJI_BYTES || has_control(s) || s.trim() != s {
        return Err(ApiError::invalid("emoji: must be 1..64 UTF-8 bytes without control characters"));
    }
    Ok(())
}

/// A send-idempotency key: 1..128 characters, no control characters.
pub fn client_id(s: &str) -> Result<(), ApiError> {
    let n = s.chars().count();
    if n == 0 || n > MAX_CLIENT_ID_CHARS || has_control(s) {
        return Err(ApiError::invalid("clientId: must be 1..128 characters without control characters"));
    }
    Ok(())
}

/// A WebSocket request id echoed in answers: 1..128 characters, no control characters.
pub fn request_id(s: &str) -> Result<(), ApiError> {
    let n = s.chars().count();
    if n == 0 || n > MAX_REQUEST_ID_CHARS || has_control(s) {
        return Err(ApiError::invalid("requestId: must be 1..128 characters without control characters"));
    }
    Ok(())
}

/// A non-negative integer a client sent (`field` names it in the error): at most
/// [`MAX_SAFE_INTEGER`], so every later read gives back exactly what was written.
pub fn safe_int(field: &str, value: i64) -> Result<i64, ApiError> {
    if value < 0 {
        return Err(ApiError::invalid(format!("{field}: must not be negative")));
    }
    if value > MAX_SAFE_INTEGER {
        return Err(ApiError::invalid(format!("{field}: must be at most 2^53 - 1 ({MAX_SAFE_INTEGER})")));
    }
    Ok(value)
}

/// A time in ms a client states (`field` names it): a [`safe_int`] within
/// [`CLIENT_CLOCK_WINDOW_MS`] (a day) of the server's clock `now_ms`.
pub fn client_time(field: &str, value: i64, now_ms: i64) -> Result<i64, ApiError> {
    let value = safe_int(field, value)?;
    if value.abs_diff(now_ms) > CLIENT_CLOCK_WINDOW_MS as u64 {
        return Err(ApiError::invalid(format!(
            "{field}: must be a time in ms within a day of the server's clock (now {now_ms})"
        )));
    }
    Ok(value)
}

/// `limit` query parameter: absent means the default; otherwise an integer 1..=100.
pub fn page_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid("limit: must be an integer 1..100")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_integers_are_bounded() {
        assert_eq!(safe_int("n", 0).unwrap(), 0);
        assert_eq!(safe_int("n", MAX_SAFE_INTEGER).unwrap(), MAX_SAFE_INTEGER);
        for bad in [-1, i64::MIN, MAX_SAFE_INTEGER + 1, i64::MAX] {
            let e = safe_int("at", bad).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.message.starts_with("at: "), "{}", e.message);
        }
        let now = 1_800_000_000_000;
        let day = CLIENT_CLOCK_WINDOW_MS;
        for ok in [now, now - day, now + day] {
            assert_eq!(client_time("timestamp", ok, now).unwrap(), ok);
        }
        for bad in [now - day - 1, now + day + 1, 0, -1, MAX_SAFE_INTEGER, i64::MAX, i64::MIN] {
            let e = client_time("timestamp", bad, now).unwrap_err();
            assert!(e.message.starts_with("timestamp: "), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn sandbox_ids() {
        assert!(sandbox_id("abc_DEF-123").is_ok());
        assert!(sandbox_id(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "é", &"a".repeat(65), "a/b"] {
            assert!(sandbox_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(title("  hi  ").unwrap(), "hi");
        assert!(title("   ").is_err());
        assert!(title(&"é".repeat(200)).is_ok());
        assert!(title(&"é".repeat(201)).is_err());
        assert!(title("a\u{0}b").is_err());
    }

    #[test]
    fn emoji_bytes() {
        assert!(emoji("👍").is_ok());
        assert!(emoji("👨‍👩‍👧‍👦").is_ok());
        assert!(emoji("").is_err());
        assert!(emoji(&"👍".repeat(17)).is_err()); // 68 bytes
        assert!(emoji("a\nb").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(page_limit(None).unwrap(), 50);
        assert_eq!(page_limit(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "x", ""] {
            assert!(page_limit(Some(bad)).is_err());
        }
    }

    #[test]
    fn user_ids() {
        assert!(user_id("alice").is_ok());
        assert!(user_id("bot:x").is_err());
        assert!(user_id(" alice").is_err());
        assert!(user_id("").is_err());
        assert!(client_id(&"x".repeat(129)).is_err());
    }
}
