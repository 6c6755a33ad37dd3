//! The request signature: what is signed, verifying a request, and signing one.

use super::error::unauthorized;
use super::{percent_encode, HttpError, Query};
use crate::auth::{hmac_hex, verify_hmac_hex, App};
use crate::limits::{MAX_API_BODY_BYTES, MAX_TIMESTAMP_SKEW_SECS};
use md5::{Digest, Md5};

/// `"<METHOD>\n<path>\n<k=v&...>"` over every parameter but `auth_signature`, sorted by key.
pub fn string_to_sign(method: &str, path: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "auth_signature").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let query: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}\n{}\n{}", method.to_ascii_uppercase(), path, query.join("&"))
}

/// Hex MD5 of a body.
pub fn md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// Verifies a signed request and answers its decoded query. `query` is the raw query string (with or
/// without the leading `?`), `path` the request path as sent, `now_secs` our clock.
pub fn verify(
    app: &App,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    now_secs: u64,
) -> Result<Query, HttpError> {
    if body.len() > MAX_API_BODY_BYTES {
        return Err(HttpError::TooLarge(format!("the body is larger than {MAX_API_BODY_BYTES} bytes")));
    }
    let q = Query::parse(query, false)?;
    match check_signed(app, method, path, &q, body, now_secs) {
        Err(HttpError::Unauthorized(m)) if m == BAD_SIGNATURE && query.contains('+') => {
            let q = Query::parse(query, true)?;
            check_signed(app, method, path, &q, body, now_secs)?;
            Ok(q)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(q),
    }
}

const BAD_SIGNATURE: &str = "invalid signature: expected HMAC-SHA256 of \"METHOD\\npath\\nsorted query\"";

fn check_signed(app: &App, method: &str, path: &str, q: &Query, body: &[u8], now_secs: u64) -> Result<(), HttpError> {
    let signature = q.get("auth_signature").ok_or_else(|| unauthorized("auth_signature is required"))?;
    match q.get("auth_key") {
        None => return Err(unauthorized("auth_key is required")),
        Some(k) if k != app.key => return Err(unauthorized("unknown auth_key")),
        Some(_) => {}
    }
    if q.get("auth_version") != Some("1.0") {
        return Err(unauthorized("auth_version must be 1.0"));
    }
    let ts: u64 = q
        .get("auth_timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| unauthorized("auth_timestamp (Unix seconds) is required"))?;
    if ts.abs_diff(now_secs) > MAX_TIMESTAMP_SKEW_SECS {
        return Err(unauthorized(format!(
            "auth_timestamp {ts} is more than {MAX_TIMESTAMP_SKEW_SECS} s from the server's time {now_secs}: check your clock"
        )));
    }
    match q.get("body_md5") {
        Some(given) if !given.eq_ignore_ascii_case(&md5_hex(body)) => {
            return Err(unauthorized("body_md5 does not match the body"))
        }
        Some(_) => {}
        None if !body.is_empty() => return Err(unauthorized("body_md5 is required with a body")),
        None => {}
    }
    let to_sign = string_to_sign(method, path, q.pairs());
    if verify_hmac_hex(&app.secret, to_sign.as_bytes(), signature) {
        Ok(())
    } else {
        Err(unauthorized(BAD_SIGNATURE))
    }
}

/// Signs a request: answers the whole query string (`auth_*` and `body_md5` added, values
/// percent-encoded, `auth_signature` last). `params` must not hold the `auth_*` keys.
pub fn sign_query(
    app: &App,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: Option<&[u8]>,
    timestamp_secs: u64,
) -> String {
    let mut all: Vec<(String, String)> = vec![
        ("auth_key".into(), app.key.clone()),
        ("auth_timestamp".into(), timestamp_secs.to_string()),
        ("auth_version".into(), "1.0".into()),
    ];
    if let Some(b) = body {
        all.push(("body_md5".into(), md5_hex(b)));
    }
    all.extend(params.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())));
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let signature = hmac_hex(&app.secret, string_to_sign(method, path, &all).as_bytes());
    let mut out: Vec<String> =
        all.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
    out.push(format!("auth_signature={signature}"));
    out.join("&")
}
