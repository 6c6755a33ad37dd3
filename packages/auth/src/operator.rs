//! The operator's credential: `Authorization: Bearer <OPERATOR_SECRET>` on the `/operator/v1/...`
//! routes, compared in constant time. Without a configured secret the routes do not exist (404).

use switchboard_core::limits::MIN_SECRET_BYTES;
use switchboard_core::ApiError;

/// Checks the operator's bearer secret. `secret`: the configured `OPERATOR_SECRET` (unset, blank or
/// shorter than `MIN_SECRET_BYTES`: the operator routes are off, 404); a missing or wrong header is 401.
pub fn verify(secret: Option<&str>, header: Option<&str>) -> Result<(), ApiError> {
    let secret = secret.map(str::trim).filter(|s| s.len() >= MIN_SECRET_BYTES);
    let Some(secret) = secret else { return Err(ApiError::not_found("no such route")) };
    let given = header
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("operator routes need Authorization: Bearer <OPERATOR_SECRET>"))?;
    if constant_time_eq(given.as_bytes(), secret.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("wrong operator secret"))
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "an-operator-secret-long-enough";

    #[test]
    fn unset_or_short_secret_means_no_routes() {
        for s in [None, Some(""), Some("   "), Some("short")] {
            assert_eq!(verify(s, Some(&format!("Bearer {SECRET}"))).unwrap_err().status(), 404);
        }
    }

    #[test]
    fn only_the_exact_secret_passes() {
        assert!(verify(Some(SECRET), Some(&format!("Bearer {SECRET}"))).is_ok());
        assert!(verify(Some(SECRET), Some(&format!("bearer {SECRET}"))).is_ok());
        for h in [
            None,
            Some("Bearer".to_string()),
            Some(format!("Basic {SECRET}")),
            Some(format!("Bearer {SECRET}x")),
            Some(format!("Bearer {}", &SECRET[1..])),
            Some("Bearer an-operator-secret-long-enougH".to_string()),
        ] {
            assert_eq!(verify(Some(SECRET), h.as_deref()).unwrap_err().status(), 401, "{h:?}");
        }
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab\xff", b"ab"));
    }
}
