//! The query string: percent-decoding and encoding, and the decoded parameters.

use super::error::bad;
use super::HttpError;
use crate::limits::{MAX_QUERY_BYTES, MAX_QUERY_PARAMS};

/// Decodes `%XX` escapes (and, when asked, `+` as a space). A `%` not followed by two hex digits is
/// kept as is. Invalid UTF-8 after decoding is a 400.
pub(super) fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, HttpError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad("query parameters must be UTF-8"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `,`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decoded query parameters, keys lowercased, in the order sent. Duplicate keys are a 400.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(query: &str, plus_is_space: bool) -> Result<Query, HttpError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        if query.len() > MAX_QUERY_BYTES {
            return Err(bad(format!("the query string is longer than {MAX_QUERY_BYTES} bytes")));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            if pairs.len() >= MAX_QUERY_PARAMS {
                return Err(bad(format!("more than {MAX_QUERY_PARAMS} query parameters")));
            }
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = percent_decode(k, plus_is_space)?.to_ascii_lowercase();
            let v = percent_decode(v, plus_is_space)?;
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(bad(format!("query parameter `{k}` appears twice")));
            }
            pairs.push((k, v));
        }
        Ok(Query { pairs })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}
