//! CORS and browser origins: which `Origin` may use the API from a browser, what every answer then
//! carries, what a preflight (`OPTIONS`) answers, and which socket upgrades are refused.
//!
//! The policy comes from `ALLOWED_ORIGINS` (comma-separated origins, or `*`); unset or blank, local
//! mode allows any origin and production only the service's own. The service's own origin (scheme,
//! host and port of the request's URL) is always allowed. Origins compare case-insensitively, a
//! configured trailing `/` and a default port (`:443` for https, `:80` for http) are ignored. The
//! answer echoes the request's `Origin` exactly (never a literal `*`).
//!
//! A request without `Origin` is not a browser's cross-origin request: it gets no CORS headers and is
//! never refused. A browser `Origin` that is not allowed gets no CORS headers (so the browser keeps
//! the answer from the page), and its WebSocket upgrades are refused (cross-site WebSocket hijacking:
//! browsers do not apply CORS to sockets).

use crate::limits::{CORS_MAX_AGE_SECS, MAX_ALLOWED_ORIGINS, MAX_ORIGIN_CHARS};

/// The methods the API answers (`Access-Control-Allow-Methods`).
pub const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// The request headers the API reads that a page may set (`Access-Control-Allow-Headers`): the
/// bearer token and the body's type. (`Sec-WebSocket-Protocol` is a socket's, outside CORS.)
pub const ALLOWED_HEADERS: &str = "authorization, content-type";
/// The error code of a refused origin (403).
pub const REFUSED_CODE: &str = "origin_not_allowed";

/// Which origins may use the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `*`: every origin.
    any: bool,
    /// Normalized origins (`scheme://host[:port]`, lower case, no default port).
    origins: Vec<String>,
}

/// What one request's `Origin` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No `Origin` header: not a browser's cross-origin request. No CORS headers, never refused.
    NoOrigin,
    /// Allowed: answers carry `Access-Control-Allow-Origin` with this value (the header, verbatim).
    Allowed(String),
    /// Not allowed: no CORS headers; socket upgrades and preflights are refused.
    Refused,
}

/// An answer the worker gives without routing: a preflight's, or a refused socket upgrade's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direct {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body, if any (the refusal's error).
    pub body: Option<String>,
}

impl Policy {
    /// The policy of `ALLOWED_ORIGINS` (`configured`; `None` or blank: the mode's default, `*` in
    /// local mode, only the service's own origin in production). `Err` names a bad entry, or too many.
    pub fn from_config(configured: Option<&str>, local_mode: bool) -> Result<Policy, String> {
        let configured = configured.map(str::trim).filter(|v| !v.is_empty());
        let Some(list) = configured else {
            return Ok(if local_mode { Policy::any() } else { Policy::own_only() });
        };
        let mut policy = Policy::own_only();
        let mut count = 0usize;
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            count += 1;
            if count > MAX_ALLOWED_ORIGINS {
                return Err(format!("ALLOWED_ORIGINS: more than {MAX_ALLOWED_ORIGINS} origins"));
            }
            if entry == "*" {
                policy.any = true;
                continue;
            }
            let origin = normalize(entry.trim_end_matches('/'))
                .ok_or_else(|| format!("ALLOWED_ORIGINS: {entry:?} is not an origin (scheme://host[:port], or *)"))?;
            if !policy.origins.contains(&origin) {
                policy.origins.push(origin);
            }
        }
        Ok(policy)
    }

    /// Only the service's own origin (production's default, and what a bad configuration falls back to).
    pub fn own_only() -> Policy {
        Policy { any: false, origins: Vec::new() }
    }

    /// Every origin (local mode's default).
    pub fn any() -> Policy {
        Policy { any: true, origins: Vec::new() }
    }

    /// What the request's `Origin` header (`origin`) means for a service whose own origin is
    /// `own_origin` (the request URL's scheme, host and port).
    pub fn verdict(&self, origin: Option<&str>, own_origin: &str) -> Verdict {
        let Some(raw) = origin else {
            return Verdict::NoOrigin;
        };
        if raw.is_empty() || raw.len() > MAX_ORIGIN_CHARS || raw.chars().any(|c| c.is_control()) {
            return Verdict::Refused;
        }
        if self.any {
            return Verdict::Allowed(raw.to_string());
        }
        let Some(origin) = normalize(raw) else {
            return Verdict::Refused; // `null` (opaque origins) and anything else that is no origin
        };
        let own = normalize(own_origin);
        if own.as_deref() == Some(origin.as_str()) || self.origins.contains(&origin) {
            Verdict::Allowed(raw.to_string())
        } else {
            Verdict::Refused
        }
    }
}

impl Verdict {
    /// The headers every answer (but a preflight's and a socket's 101) carries: the allowed origin,
    /// and `Vary: Origin` on all of them, since the answer depends on the header.
    pub fn answer_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::with_capacity(2);
        if let Verdict::Allowed(origin) = self {
            headers.push(("access-control-allow-origin", origin.clone()));
        }
        headers.push(("vary", "Origin".to_string()));
        headers
    }

    /// A socket upgrade from a browser whose origin is not allowed is refused.
    pub fn refuses_socket(&self) -> bool {
        matches!(self, Verdict::Refused)
    }

    /// What `OPTIONS` on an API route answers: 204 with the CORS headers for an allowed origin, 204
    /// with `Allow` without `Origin` (not a preflight), 403 `origin_not_allowed` for another origin.
    pub fn preflight(&self) -> Direct {
        let vary = ("vary", "Origin".to_string());
        match self {
            Verdict::Allowed(origin) => Direct {
                status: 204,
                headers: vec![
                    ("access-control-allow-origin", origin.clone()),
                    ("access-control-allow-methods", ALLOWED_METHODS.to_string()),
                    ("access-control-allow-headers", ALLOWED_HEADERS.to_string()),
                    ("access-control-max-age", CORS_MAX_AGE_SECS.to_string()),
                    vary,
                ],
                body: None,
            },
            Verdict::NoOrigin => {
                Direct { status: 204, headers: vec![("allow", ALLOWED_METHODS.to_string()), vary], body: None }
            }
            Verdict::Refused => refusal(),
        }
    }
}

/// 403 `{"error":{"code":"origin_not_allowed","message"}}`, without CORS headers: what a refused
/// origin's preflight and socket upgrade answer.
pub fn refusal() -> Direct {
    Direct {
        status: 403,
        headers: vec![("content-type", "application/json".to_string()), ("vary", "Origin".to_string())],
        body: Some(refusal_body()),
    }
}

fn refusal_body() -> String {
    serde_json::json!({"error": {
        "code": REFUSED_CODE,
        "message": "this Origin is not allowed (ALLOWED_ORIGINS); a browser may use the API only from an allowed origin",
    }})
    .to_string()
}

/// `scheme://host[:port]` in lower case, without a default port; `None` for anything else (a path,
/// a query, credentials, spaces, `null`).
fn normalize(origin: &str) -> Option<String> {
    if origin.len() > MAX_ORIGIN_CHARS {
        return None;
    }
    let lower = origin.to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://")?;
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let authority_ok = !authority.is_empty()
        && !authority.starts_with(':')
        && authority.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '?' | '#' | '@' | '\\' | ','));
    if !scheme_ok || !authority_ok {
        return None;
    }
    let authority = match (scheme, authority.rsplit_once(':')) {
        ("https", Some((host, "443"))) | ("http", Some((host, "80"))) => host,
        _ => authority,
    };
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "https://chat.example.com";

    fn policy(configured: &str) -> Policy {
        Policy::from_config(Some(configured), false).expect("valid configuration")
    }

    fn allowed(o: &str) -> Verdict {
        Verdict::Allowed(o.to_string())
    }

    #[test]
    fn configured_origins_are_allowed_and_others_are_not() {
        let p = policy("https://app.example, http://localhost:3000");
        assert_eq!(p.verdict(Some("https://app.example"), OWN), allowed("https://app.example"));
        assert_eq!(p.verdict(Some("http://localhost:3000"), OWN), allowed("http://localhost:3000"));
        assert_eq!(p.verdict(Some("https://evil.example"), OWN), Verdict::Refused);
        assert_eq!(p.verdict(Some("http://app.example"), OWN), Verdict::Refused, "another scheme");
        assert_eq!(p.verdict(Some("https://app.example:8443"), OWN), Verdict::Refused, "another port");
        assert_eq!(p.verdict(Some("https://sub.app.example"), OWN), Verdict::Refused, "a subdomain");
        assert_eq!(p.verdict(Some("https://app.example.evil"), OWN), Verdict::Refused, "a suffix");
        assert_eq!(p.verdict(Some("null"), OWN), Verdict::Refused, "an opaque origin");
        assert_eq!(p.verdict(Some(""), OWN), Verdict::Refused);
    }

    #[test]
    fn the_own_origin_is_always_allowed() {
        for p in [Policy::own_only(), policy("https://app.example"), Policy::from_config(Some(""), false).unwrap()] {
            assert_eq!(p.verdict(Some(OWN), OWN), allowed(OWN));
            assert_eq!(p.verdict(Some("https://chat.example.com:443"), OWN), allowed("https://chat.example.com:443"));
            assert_eq!(p.verdict(Some("https://other.example.com"), OWN), Verdict::Refused);
        }
        let local = "http://127.0.0.1:8787";
        assert_eq!(Policy::own_only().verdict(Some(local), local), allowed(local));
        assert_eq!(Policy::own_only().verdict(Some("http://127.0.0.1:8788"), local), Verdict::Refused);
    }

    #[test]
    fn no_origin_header_is_not_a_browser_and_never_refused() {
        for p in [Policy::own_only(), Policy::any(), policy("https://app.example")] {
            let v = p.verdict(None, OWN);
            assert_eq!(v, Verdict::NoOrigin);
            assert!(!v.refuses_socket());
            assert_eq!(v.answer_headers(), vec![("vary", "Origin".to_string())]);
        }
    }

    #[test]
    fn star_allows_every_origin_and_echoes_it() {
        for p in [policy("*"), policy("https://app.example, *"), Policy::any()] {
            assert_eq!(p.verdict(Some("https://anything.example"), OWN), allowed("https://anything.example"));
            assert_eq!(p.verdict(Some("null"), OWN), allowed("null"));
            assert_eq!(p.verdict(Some(&"x".repeat(MAX_ORIGIN_CHARS + 1)), OWN), Verdict::Refused, "too long");
            assert_eq!(p.verdict(Some("https://a.example\r\nx: y"), OWN), Verdict::Refused, "control characters");
        }
    }

    #[test]
    fn defaults_by_mode() {
        for unset in [None, Some(""), Some("  ")] {
            let local = Policy::from_config(unset, true).unwrap();
            assert_eq!(local.verdict(Some("https://anything.example"), OWN), allowed("https://anything.example"));
            let prod = Policy::from_config(unset, false).unwrap();
            assert_eq!(prod.verdict(Some("https://anything.example"), OWN), Verdict::Refused);
            assert_eq!(prod.verdict(Some(OWN), OWN), allowed(OWN));
        }
        // a configured list replaces local mode's `*`
        let p = Policy::from_config(Some("https://app.example"), true).unwrap();
        assert_eq!(p.verdict(Some("https://anything.example"), OWN), Verdict::Refused);
    }

    #[test]
    fn case_trailing_slash_and_default_ports_do_not_matter() {
        let p = policy(" HTTPS://App.Example/ ,http://LocalHost:80/, https://b.example:443");
        assert_eq!(p.verdict(Some("https://app.example"), OWN), allowed("https://app.example"));
        assert_eq!(p.verdict(Some("https://APP.example"), OWN), allowed("https://APP.example"), "echoed verbatim");
        assert_eq!(p.verdict(Some("http://localhost"), OWN), allowed("http://localhost"));
        assert_eq!(p.verdict(Some("https://b.example"), OWN), allowed("https://b.example"));
        assert_eq!(p.verdict(Some("https://b.example:443"), OWN), allowed("https://b.example:443"));
        assert_eq!(p.verdict(Some("http://b.example:443"), OWN), Verdict::Refused);
        assert_eq!(Policy::own_only().verdict(Some(OWN), "HTTPS://Chat.Example.com:443"), allowed(OWN));
        assert_eq!(p.verdict(Some("http://[::1]:80"), "http://[::1]"), allowed("http://[::1]:80"));
    }

    #[test]
    fn bad_configurations_are_errors() {
        for bad in ["app.example", "https://app.example/path", "https://", "https://a.example?x", "https://u@a.example"]
        {
            let e = Policy::from_config(Some(bad), false).unwrap_err();
            assert!(e.contains("ALLOWED_ORIGINS"), "{e}");
        }
        let many: Vec<String> = (0..=MAX_ALLOWED_ORIGINS).map(|i| format!("https://o{i}.example")).collect();
        let e = Policy::from_config(Some(&many.join(",")), false).unwrap_err();
        assert!(e.contains(&MAX_ALLOWED_ORIGINS.to_string()), "{e}");
        let just_enough = many[..MAX_ALLOWED_ORIGINS].join(", ");
        let p = Policy::from_config(Some(&just_enough), false).unwrap();
        assert!(matches!(p.verdict(Some("https://o0.example"), OWN), Verdict::Allowed(_)));
        // empty entries are skipped, repeats kept once
        assert_eq!(policy("https://a.example,, https://a.example,"), policy("https://a.example"));
    }

    #[test]
    fn answers_carry_the_origin_and_vary() {
        let v = allowed("https://app.example");
        assert_eq!(
            v.answer_headers(),
            vec![("access-control-allow-origin", "https://app.example".to_string()), ("vary", "Origin".to_string())]
        );
        assert!(!v.refuses_socket());
        let refused = Verdict::Refused.answer_headers();
        assert!(refused.iter().all(|(k, _)| !k.starts_with("access-control-")), "{refused:?}");
        assert!(Verdict::Refused.refuses_socket());
    }

    #[test]
    fn preflights() {
        let p = allowed("https://app.example").preflight();
        assert_eq!(p.status, 204);
        assert_eq!(p.body, None);
        let get = |name: &str| p.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        assert_eq!(get("access-control-allow-origin").as_deref(), Some("https://app.example"));
        let methods = get("access-control-allow-methods").unwrap_or_default();
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            assert!(methods.contains(m), "{methods}");
        }
        let headers = get("access-control-allow-headers").unwrap_or_default();
        assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
        assert_eq!(get("access-control-max-age"), Some(CORS_MAX_AGE_SECS.to_string()));
        assert_eq!(get("vary").as_deref(), Some("Origin"));

        let refused = Verdict::Refused.preflight();
        assert_eq!(refused, refusal());
        assert_eq!(refused.status, 403);
        assert!(refused.headers.iter().all(|(k, _)| !k.starts_with("access-control-")));
        let body: serde_json::Value = serde_json::from_str(refused.body.as_deref().unwrap_or("")).unwrap();
        assert_eq!(body["error"]["code"], REFUSED_CODE);
        assert!(body["error"]["message"].is_string());

        let plain = Verdict::NoOrigin.preflight();
        assert_eq!(plain.status, 204);
        assert!(plain.headers.iter().all(|(k, _)| !k.starts_with("access-control-")));
        assert!(plain.headers.iter().any(|(k, _)| *k == "allow"));
    }
}
