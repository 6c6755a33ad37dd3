//! The worker's settings, read through a lookup function (vars and secrets in the shell, a map in
//! tests). A missing or malformed value falls back to its default and is reported in `warnings`.

/// Expo's send endpoint.
pub const DEFAULT_EXPO_PUSH_URL: &str = "https://exp.host/--/api/v2/push/send";
/// Expo's receipts endpoint.
pub const DEFAULT_EXPO_RECEIPTS_URL: &str = "https://exp.host/--/api/v2/push/getReceipts";
/// How long an idempotency record lives (1 h).
pub const DEFAULT_IDEM_TTL_MS: i64 = 60 * 60 * 1000;
/// No push within this long after the recipient's last socket on the conversation closed (10 s).
pub const DEFAULT_PRESENCE_GRACE_MS: i64 = 10_000;
/// How long after sending Expo's receipts are checked (15 min).
pub const DEFAULT_RECEIPT_DELAY_MS: i64 = 15 * 60 * 1000;
/// How long a `pending` record blocks replays before it counts as abandoned (its sender died):
/// a push claimed by an attempt that a crash cut short goes out again this long after the claim
/// (the conversation's outbox asks again then). Longer than a whole send with every retry (see
/// `expo::Backoff`). Var `PUSH_LEASE_MS`.
pub const PENDING_LEASE_MS: i64 = 2 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub expo_push_url: String,
    pub expo_receipts_url: String,
    /// `Authorization: Bearer` for Expo when set (secret `EXPO_ACCESS_TOKEN`).
    pub expo_access_token: Option<String>,
    pub idem_ttl_ms: i64,
    pub presence_grace_ms: i64,
    pub receipt_delay_ms: i64,
    pub pending_lease_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            expo_push_url: DEFAULT_EXPO_PUSH_URL.to_string(),
            expo_receipts_url: DEFAULT_EXPO_RECEIPTS_URL.to_string(),
            expo_access_token: None,
            idem_ttl_ms: DEFAULT_IDEM_TTL_MS,
            presence_grace_ms: DEFAULT_PRESENCE_GRACE_MS,
            receipt_delay_ms: DEFAULT_RECEIPT_DELAY_MS,
            pending_lease_ms: PENDING_LEASE_MS,
        }
    }
}

impl Settings {
    /// Reads `EXPO_PUSH_URL`, `EXPO_RECEIPTS_URL`, `EXPO_ACCESS_TOKEN`, `IDEM_TTL_MS`,
    /// `PRESENCE_GRACE_MS`, `RECEIPT_DELAY_MS` and `PUSH_LEASE_MS`. Answers the settings and what was ignored.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (Settings, Vec<String>) {
        let d = Settings::default();
        let mut warnings = Vec::new();
        let mut url =
            |name: &str, default: String| match lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                None => default,
                Some(v) if v.starts_with("http://") || v.starts_with("https://") => v,
                Some(v) => {
                    warnings.push(format!("{name}={v:?} is not an http(s) URL; using {default}"));
                    default
                }
            };
        let expo_push_url = url("EXPO_PUSH_URL", d.expo_push_url);
        let expo_receipts_url = url("EXPO_RECEIPTS_URL", d.expo_receipts_url);
        let mut millis = |name: &str, default: i64, min: i64| match lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            None => default,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= min => n,
                _ => {
                    warnings.push(format!("{name}={v:?} is not an integer >= {min}; using {default}"));
                    default
                }
            },
        };
        let idem_ttl_ms = millis("IDEM_TTL_MS", d.idem_ttl_ms, 1);
        let presence_grace_ms = millis("PRESENCE_GRACE_MS", d.presence_grace_ms, 0);
        let receipt_delay_ms = millis("RECEIPT_DELAY_MS", d.receipt_delay_ms, 1);
        let pending_lease_ms = millis("PUSH_LEASE_MS", d.pending_lease_ms, 1_000);
        let expo_access_token = lookup("EXPO_ACCESS_TOKEN").map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        (
            Settings {
                expo_push_url,
                expo_receipts_url,
                expo_access_token,
                idem_ttl_ms,
                presence_grace_ms,
                receipt_delay_ms,
                pending_lease_ms,
            },
            warnings,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> (Settings, Vec<String>) {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let (s, w) = read(&[]);
        assert_eq!(s, Settings::default());
        assert!(w.is_empty());
        assert_eq!(s.idem_ttl_ms, 3_600_000);
        assert_eq!(s.presence_grace_ms, 10_000);
        assert_eq!(s.receipt_delay_ms, 900_000);
        assert_eq!(s.expo_push_url, "https://exp.host/--/api/v2/push/send");
    }

    #[test]
    fn overrides_and_bad_values() {
        let (s, w) = read(&[
            ("EXPO_PUSH_URL", "http://127.0.0.1:9000/send"),
            ("EXPO_RECEIPTS_URL", "ftp://x"),
            ("IDEM_TTL_MS", "2000"),
            ("PRESENCE_GRACE_MS", "0"),
            ("RECEIPT_DELAY_MS", "-5"),
            ("PUSH_LEASE_MS", "999"),
            ("EXPO_ACCESS_TOKEN", "  tok "),
        ]);
        assert_eq!(s.expo_push_url, "http://127.0.0.1:9000/send");
        assert_eq!(s.expo_receipts_url, DEFAULT_EXPO_RECEIPTS_URL);
        assert_eq!(s.idem_ttl_ms, 2000);
        assert_eq!(s.presence_grace_ms, 0);
        assert_eq!(s.receipt_delay_ms, DEFAULT_RECEIPT_DELAY_MS);
        assert_eq!(s.expo_access_token.as_deref(), Some("tok"));
        assert_eq!(s.pending_lease_ms, PENDING_LEASE_MS, "under a second is refused");
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(read(&[("PUSH_LEASE_MS", "15000")]).0.pending_lease_ms, 15_000);
        let (s, _) = read(&[("EXPO_ACCESS_TOKEN", "")]);
        assert_eq!(s.expo_access_token, None);
    }
}
