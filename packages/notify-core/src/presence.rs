//! Presence suppression: no push to a recipient who is looking at the conversation, nor within a
//! grace period after they stopped looking (they have most likely just read it).

use switchboard_notify_contract::Recipient;

/// True when the recipient is viewing the conversation, or stopped viewing it less than
/// `grace_ms` ago. A `last_viewed_at` in the future (clock skew between objects) counts as recent.
pub fn is_present(recipient: &Recipient, now_ms: i64, grace_ms: i64) -> bool {
    recipient.viewing || recipient.last_viewed_at.map(|t| now_ms.saturating_sub(t) < grace_ms).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(viewing: bool, last: Option<i64>) -> Recipient {
        Recipient { user_id: "u".into(), viewing, last_viewed_at: last }
    }

    #[test]
    fn viewing_or_recently_viewing() {
        let now = 1_000_000;
        assert!(is_present(&r(true, None), now, 10_000));
        assert!(is_present(&r(true, Some(0)), now, 10_000));
        assert!(!is_present(&r(false, None), now, 10_000));
        assert!(is_present(&r(false, Some(now - 9_999)), now, 10_000));
        assert!(!is_present(&r(false, Some(now - 10_000)), now, 10_000));
        assert!(is_present(&r(false, Some(now + 50)), now, 10_000));
        // A zero grace period: only an open socket suppresses.
        assert!(!is_present(&r(false, Some(now)), now, 0));
    }
}
