//! Pusher's signed HTTP API: what the `pusher` npm SDK (and Laravel's broadcaster, and every other
//! server SDK) sends to publish events and to ask about channels.
//!
//! A request is signed in its query string (pusher-http-node `lib/requests.js`):
//! `auth_key`, `auth_timestamp` (Unix seconds), `auth_version=1.0`, `body_md5` (hex MD5 of the body,
//! for requests with a body) and the request's own parameters, then
//! `auth_signature = hex(HMAC-SHA256(secret, "<METHOD>\n<path>\n<query>"))` where `<query>` is every
//! parameter except `auth_signature`, keys lowercased, sorted by key, written `key=value` **without
//! URL escaping** and joined with `&`. The node SDK also sends them unescaped on the wire; other SDKs
//! escape them (PHP writes a space as `+`). So we percent-decode the values and keep `+` as is,
//! and only if that signature does not match and the query holds a `+`, try again reading `+` as a
//! space. Either way the request is only accepted under an interpretation its signer signed.
//!
//! Checks, in order, each with its status: body over `MAX_API_BODY_BYTES` → 413; a query that does
//! not parse → 400; missing or wrong `auth_key`, `auth_version`, `auth_timestamp` more than
//! `MAX_TIMESTAMP_SKEW_SECS` away from `now_secs`, a body whose MD5 is not `body_md5`, a missing or
//! wrong signature → 401. Then the body: invalid → 400, event data over `MAX_EVENT_DATA_BYTES` → 413.
//!
//! `sign_query` is the same signer, for tests and for our own services calling the API.

use crate::auth::{hmac_hex, verify_hmac_hex, App, SocketId};
use crate::channel::{self, ChannelKind};
use crate::frame::push_json_string;
use crate::limits::{
    MAX_API_BODY_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_DATA_BYTES, MAX_QUERY_BYTES, MAX_QUERY_PARAMS,
    MAX_TIMESTAMP_SKEW_SECS, MAX_TRIGGER_CHANNELS,
};
use md5::{Digest, Md5};
use serde_json::Value;
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

fn bad(m: impl Into<String>) -> HttpError {
    HttpError::BadRequest(m.into())
}

fn unauthorized(m: impl Into<String>) -> HttpError {
    HttpError::Unauthorized(m.into())
}

// ---- routes -----------------------------------------------------------------------------------------

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /apps/{id}/events`
    Events,
    /// `POST /apps/{id}/batch_events`
    BatchEvents,
    /// `GET /apps/{id}/channels`
    Channels,
    /// `GET /apps/{id}/channels/{channel}`
    Channel(String),
    /// `GET /apps/{id}/channels/{channel}/users` (presence channels only)
    ChannelUsers(String),
}

/// Routes a request path for `app`. Another app's id is 404.
pub fn route(app: &App, method: &str, path: &str) -> Result<Route, HttpError> {
    let not_found = || HttpError::NotFound(format!("no route for {path}"));
    let rest = path.strip_prefix("/apps/").ok_or_else(not_found)?;
    let (id, rest) = rest.split_once('/').ok_or_else(not_found)?;
    if id != app.id {
        return Err(HttpError::NotFound(format!("unknown app id {id}")));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let (route, want) = match parts.as_slice() {
        ["events"] => (Route::Events, "POST"),
        ["batch_events"] => (Route::BatchEvents, "POST"),
        ["channels"] => (Route::Channels, "GET"),
        ["channels", name] => (Route::Channel(valid_channel(name)?), "GET"),
        ["channels", name, "users"] => {
            let name = valid_channel(name)?;
            if channel::kind(&name) != ChannelKind::Presence {
                return Err(bad("users are only available for presence channels"));
            }
            (Route::ChannelUsers(name), "GET")
        }
        _ => return Err(not_found()),
    };
    if !method.eq_ignore_ascii_case(want) {
        return Err(HttpError::MethodNotAllowed(format!("{path} takes {want}")));
    }
    Ok(route)
}

fn valid_channel(name: &str) -> Result<String, HttpError> {
    let name = percent_decode(name, false)?;
    channel::validate(&name).map_err(|e| bad(format!("channel `{name}` {e}")))?;
    Ok(name)
}

// ---- the query string -----------------------------------------------------------------------------------

/// Decodes `%XX` escapes (and, when asked, `+` as a space). A `%` not followed by two hex digits is
/// kept as is. Invalid UTF-8 after decoding is a 400.
fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, HttpError> {
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

// ---- bodies -----------------------------------------------------------------------------------------

/// Which channel attributes a request asks for (`info=user_count,subscription_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InfoFields {
    pub user_count: bool,
    pub subscription_count: bool,
}

impl InfoFields {
    /// Unknown attributes are ignored (Pusher has more, e.g. `cache`, that we do not serve).
    pub fn parse(info: Option<&str>) -> InfoFields {
        let mut f = InfoFields::default();
        for part in info.unwrap_or("").split(',').map(str::trim) {
            match part {
                "user_count" => f.user_count = true,
                "subscription_count" => f.subscription_count = true,
                _ => {}
            }
        }
        f
    }

    pub fn any(self) -> bool {
        self.user_count || self.subscription_count
    }
}

/// One event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub name: String,
    /// As published: a string (the SDK `JSON.stringify`s objects), sent to clients as is.
    pub data: String,
    /// Valid, distinct, not `private-encrypted-`.
    pub channels: Vec<String>,
    /// The publisher's own socket, which does not receive the event.
    pub socket_id: Option<SocketId>,
    pub info: InfoFields,
}

fn parse_json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, HttpError> {
    if body.len() > MAX_API_BODY_BYTES {
        return Err(HttpError::TooLarge(format!("the body is larger than {MAX_API_BODY_BYTES} bytes")));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad("the body must be a JSON object")),
    }
}

fn trigger_from(o: &serde_json::Map<String, Value>, multi: bool) -> Result<Trigger, HttpError> {
    let name = match o.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad("`name` (a string) is required")),
    };
    channel::validate_event_name(&name).map_err(|e| bad(format!("event name {e}")))?;
    let data = match o.get("data") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => return Err(bad("`data` is required")),
        // lenient: an object is published as its JSON text, as the SDK would have
        Some(other) => other.to_string(),
    };
    if data.len() > MAX_EVENT_DATA_BYTES {
        return Err(HttpError::TooLarge(format!(
            "event data is {} bytes; at most {MAX_EVENT_DATA_BYTES} are allowed",
            data.len()
        )));
    }
    let mut names: Vec<String> = Vec::new();
    match (o.get("channel"), o.get("channels")) {
        (Some(Value::String(c)), None) => names.push(c.clone()),
        (None, Some(Value::Array(cs))) if multi => {
            if cs.len() > MAX_TRIGGER_CHANNELS {
                return Err(bad(format!("at most {MAX_TRIGGER_CHANNELS} channels per event")));
            }
            for c in cs {
                match c {
                    Value::String(s) => names.push(s.clone()),
                    _ => return Err(bad("`channels` must be strings")),
                }
            }
        }
        (Some(_), Some(_)) => return Err(bad("give `channel` or `channels`, not both")),
        _ if multi => return Err(bad("`channels` (an array) or `channel` (a string) is required")),
        _ => return Err(bad("`channel` (a string) is required")),
    }
    if names.is_empty() {
        return Err(bad("at least one channel is required"));
    }
    let mut channels: Vec<String> = Vec::with_capacity(names.len());
    for c in names {
        match channel::validate(&c) {
            Err(e) => return Err(bad(format!("channel `{c}` {e}"))),
            Ok(ChannelKind::PrivateEncrypted) => {
                return Err(bad(format!("channel `{c}`: end-to-end encrypted channels are not supported")))
            }
            Ok(_) => {}
        }
        if !channels.contains(&c) {
            channels.push(c);
        }
    }
    let socket_id = match o.get("socket_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(SocketId::parse(s).map_err(|e| bad(format!("socket_id: {e}")))?),
        Some(_) => return Err(bad("`socket_id` must be a string")),
    };
    let info = InfoFields::parse(o.get("info").and_then(Value::as_str));
    if info.user_count && channels.iter().any(|c| channel::kind(c) != ChannelKind::Presence) {
        return Err(bad("info=user_count is only available for presence channels"));
    }
    Ok(Trigger { name, data, channels, socket_id, info })
}

/// The body of `POST /events`: `{name, data, channel | channels[≤100], socket_id?, info?}`.
pub fn parse_trigger(body: &[u8]) -> Result<Trigger, HttpError> {
    trigger_from(&parse_json_object(body)?, true)
}

/// The body of `POST /batch_events`: `{batch: [≤10 of {name, data, channel, socket_id?, info?}]}`.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Trigger>, HttpError> {
    let o = parse_json_object(body)?;
    let batch = match o.get("batch") {
        Some(Value::Array(b)) => b,
        _ => return Err(bad("`batch` (an array) is required")),
    };
    if batch.len() > MAX_BATCH_EVENTS {
        return Err(bad(format!("at most {MAX_BATCH_EVENTS} events per batch")));
    }
    batch
        .iter()
        .enumerate()
        .map(|(i, e)| match e {
            Value::Object(m) => trigger_from(m, false).map_err(|err| match err {
                HttpError::TooLarge(m) => HttpError::TooLarge(format!("batch[{i}]: {m}")),
                other => bad(format!("batch[{i}]: {}", other.message())),
            }),
            _ => Err(bad(format!("batch[{i}] must be an object"))),
        })
        .collect()
}

/// `GET /channels` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelsQuery {
    pub filter_by_prefix: Option<String>,
    pub info: InfoFields,
}

impl ChannelsQuery {
    /// `info=user_count` needs `filter_by_prefix` starting with `presence-` (Pusher's rule).
    pub fn from_query(q: &Query) -> Result<ChannelsQuery, HttpError> {
        let filter_by_prefix = q.get("filter_by_prefix").map(String::from);
        let info = InfoFields::parse(q.get("info"));
        if info.user_count && !filter_by_prefix.as_deref().is_some_and(|p| p.starts_with(channel::PRESENCE_PREFIX)) {
            return Err(bad("info=user_count needs filter_by_prefix=presence-"));
        }
        Ok(ChannelsQuery { filter_by_prefix, info })
    }
}

/// `GET /channels/{name}` parameters: `info=user_count` only for presence channels.
pub fn channel_info_fields(channel_name: &str, q: &Query) -> Result<InfoFields, HttpError> {
    let info = InfoFields::parse(q.get("info"));
    if info.user_count && channel::kind(channel_name) != ChannelKind::Presence {
        return Err(bad("info=user_count is only available for presence channels"));
    }
    Ok(info)
}

// ---- answers -----------------------------------------------------------------------------------------

/// What the registry knows of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelInfo {
    pub subscription_count: usize,
    /// Distinct users, for presence channels.
    pub user_count: Option<usize>,
}

impl ChannelInfo {
    pub fn occupied(&self) -> bool {
        self.subscription_count > 0
    }
}

fn push_attributes(out: &mut String, info: &ChannelInfo, fields: InfoFields, mut first: bool) {
    if fields.user_count {
        if let Some(n) = info.user_count {
            if !first {
                out.push(',');
            }
            out.push_str(&format!(r#""user_count":{n}"#));
            first = false;
        }
    }
    if fields.subscription_count {
        if !first {
            out.push(',');
        }
        out.push_str(&format!(r#""subscription_count":{}"#, info.subscription_count));
    }
}

/// `GET /channels`: `{"channels":{"<name>":{<asked attributes>}}}`.
pub fn channels_body<'a>(channels: impl IntoIterator<Item = (&'a str, ChannelInfo)>, fields: InfoFields) -> String {
    let mut out = String::from(r#"{"channels":{"#);
    for (i, (name, info)) in channels.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, name);
        out.push_str(":{");
        push_attributes(&mut out, &info, fields, true);
        out.push('}');
    }
    out.push_str("}}");
    out
}

/// `GET /channels/{name}`: `{"occupied":bool, <asked attributes>}`.
pub fn channel_body(info: &ChannelInfo, fields: InfoFields) -> String {
    let mut out = format!(r#"{{"occupied":{}"#, info.occupied());
    push_attributes(&mut out, info, fields, false);
    out.push('}');
    out
}

/// `GET /channels/{name}/users`: `{"users":[{"id":"..."}]}`.
pub fn users_body<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from(r#"{"users":["#);
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"id":"#);
        push_json_string(&mut out, id);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// `POST /events` answer: `{}`, or with `info`, `{"channels":{"<name>":{<attributes>}}}`.
pub fn trigger_body<'a>(channels: impl IntoIterator<Item = (&'a str, ChannelInfo)>, fields: InfoFields) -> String {
    if fields.any() {
        channels_body(channels, fields)
    } else {
        "{}".to_string()
    }
}

/// `POST /batch_events` answer: `{}`, or when any asked `info`, `{"batch":[{<attributes>}, ...]}`
/// in the batch's order.
pub fn batch_body(items: &[(ChannelInfo, InfoFields)]) -> String {
    if !items.iter().any(|(_, f)| f.any()) {
        return "{}".to_string();
    }
    let mut out = String::from(r#"{"batch":["#);
    for (i, (info, fields)) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        push_attributes(&mut out, info, *fields, true);
        out.push('}');
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn app() -> App {
        App::new("3", "278d425bdf160c739803", "7ad3773142a6692b25b8")
    }

    /// What pusher-http-node's `createSignedQueryString` builds, by hand: raw values, sorted keys.
    fn node_sdk_query(app: &App, method: &str, path: &str, body: &str, ts: u64, extra: &[(&str, &str)]) -> String {
        let mut params: Vec<(String, String)> = vec![
            ("auth_key".into(), app.key.clone()),
            ("auth_timestamp".into(), ts.to_string()),
            ("auth_version".into(), "1.0".into()),
        ];
        if !body.is_empty() {
            params.push(("body_md5".into(), md5_hex(body.as_bytes())));
        }
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        params.sort();
        let qs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let qs = qs.join("&");
        let sig = hmac_hex(&app.secret, format!("{method}\n{path}\n{qs}").as_bytes());
        format!("{qs}&auth_signature={sig}")
    }

    #[test]
    fn pusher_docs_worked_example() {
        // Pusher's "auth signatures" docs: POST /apps/3/events, timestamp 1353088179, this body.
        let body = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        assert_eq!(md5_hex(body.as_bytes()), "ec365a775a4cd0599faeb73354201b6f");
        let q = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f";
        let to_sign = string_to_sign("POST", "/apps/3/events", Query::parse(q, false).unwrap().pairs());
        assert_eq!(
            to_sign,
            "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
        );
        assert_eq!(
            hmac_hex(&app().secret, to_sign.as_bytes()),
            "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
        let signed = format!("{q}&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c");
        assert!(verify(&app(), "POST", "/apps/3/events", &signed, body.as_bytes(), 1353088179 + 600).is_ok());
    }

    #[test]
    fn accepts_the_node_sdk() {
        let body = r#"{"name":"my-event","data":"{\"message\":\"hello\"}","channels":["my-channel"]}"#;
        let q = node_sdk_query(&app(), "POST", "/apps/3/events", body, 1_700_000_000, &[]);
        assert!(verify(&app(), "POST", "/apps/3/events", &q, body.as_bytes(), 1_700_000_000).is_ok());
        // GET with raw comma-separated info, as the SDK sends it
        let q = node_sdk_query(
            &app(),
            "GET",
            "/apps/3/channels",
            "",
            1_700_000_000,
            &[("filter_by_prefix", "presence-"), ("info", "user_count,subscription_count")],
        );
        let parsed = verify(&app(), "GET", "/apps/3/channels", &q, b"", 1_700_000_000).unwrap();
        let cq = ChannelsQuery::from_query(&parsed).unwrap();
        assert_eq!(cq.filter_by_prefix.as_deref(), Some("presence-"));
        assert_eq!(cq.info, InfoFields { user_count: true, subscription_count: true });
    }

    #[test]
    fn refusals_and_statuses() {
        let a = app();
        let body = r#"{"name":"e","data":"d","channel":"c"}"#;
        let now = 1_700_000_000;
        let q = sign_query(&a, "POST", "/apps/3/events", &[], Some(body.as_bytes()), now);
        assert!(verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), now).is_ok());
        let status = |r: Result<Query, HttpError>| r.map(|_| 200).unwrap_or_else(|e| e.status());
        // timestamp: 600 s either way is fine, 601 is not
        assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), now + 600)), 200);
        assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), now - 600)), 200);
        assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), now + 601)), 401);
        assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), now - 601)), 401);
        // another body, another path, another method
        assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, b"{}", now)), 401);
        assert_eq!(status(verify(&a, "POST", "/apps/3/batch_events", &q, body.as_bytes(), now)), 401);
        assert_eq!(status(verify(&a, "GET", "/apps/3/events", &q, body.as_bytes(), now)), 401);
        // no signature, wrong key, wrong version
        let unsigned = q.split("&auth_signature").next().unwrap();
        assert_eq!(status(verify(&a, "POST", "/apps/3/events", unsigned, body.as_bytes(), now)), 401);
        let other = App::new("3", "otherkey", &a.secret);
        let q2 = sign_query(&other, "POST", "/apps/3/events", &[], Some(body.as_bytes()), now);
        assert_eq!(
            verify(&a, "POST", "/apps/3/events", &q2, body.as_bytes(), now),
            Err(HttpError::Unauthorized("unknown auth_key".into()))
        );
        // a body without body_md5
        let q3 = sign_query(&a, "POST", "/apps/3/events", &[], None, now);
        assert_eq!(
            verify(&a, "POST", "/apps/3/events", &q3, body.as_bytes(), now),
            Err(HttpError::Unauthorized("body_md5 is required with a body".into()))
        );
        // a parameter added after signing
        let q4 = format!("{q}&info=user_count");
        assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q4, body.as_bytes(), now)), 401);
        // too large, duplicates
        let huge = vec![b' '; MAX_API_BODY_BYTES + 1];
        assert_eq!(status(verify(&a, "POST", "/apps/3/events", &q, &huge, now)), 413);
        assert_eq!(status(verify(&a, "POST", "/apps/3/events", "a=1&a=2", b"", now)), 400);
    }

    #[test]
    fn escaped_and_plus_values() {
        let a = app();
        let now = 1_700_000_000;
        // our signer escapes; the verifier decodes before checking
        let q = sign_query(&a, "GET", "/apps/3/channels", &[("filter_by_prefix", "presence-a b&c")], None, now);
        assert!(q.contains("filter_by_prefix=presence-a%20b%26c"));
        let parsed = verify(&a, "GET", "/apps/3/channels", &q, b"", now).unwrap();
        assert_eq!(parsed.get("filter_by_prefix"), Some("presence-a b&c"));
        // PHP style: space as '+'
        let php = q.replace("%20", "+");
        let parsed = verify(&a, "GET", "/apps/3/channels", &php, b"", now).unwrap();
        assert_eq!(parsed.get("filter_by_prefix"), Some("presence-a b&c"));
    }

    #[test]
    fn routes() {
        let a = app();
        assert_eq!(route(&a, "POST", "/apps/3/events"), Ok(Route::Events));
        assert_eq!(route(&a, "POST", "/apps/3/batch_events"), Ok(Route::BatchEvents));
        assert_eq!(route(&a, "GET", "/apps/3/channels"), Ok(Route::Channels));
        assert_eq!(route(&a, "GET", "/apps/3/channels/private-a"), Ok(Route::Channel("private-a".into())));
        assert_eq!(route(&a, "GET", "/apps/3/channels/presence-a/users"), Ok(Route::ChannelUsers("presence-a".into())));
        assert_eq!(route(&a, "GET", "/apps/3/channels/private-a/users").unwrap_err().status(), 400);
        assert_eq!(route(&a, "GET", "/apps/4/events").unwrap_err().status(), 404);
        assert_eq!(route(&a, "GET", "/apps/3/events").unwrap_err().status(), 405);
        assert_eq!(route(&a, "GET", "/apps/3/nope").unwrap_err().status(), 404);
        assert_eq!(route(&a, "GET", "/apps/3/channels/a%20b").unwrap_err().status(), 400);
    }

    #[test]
    fn trigger_bodies() {
        let t = parse_trigger(br#"{"name":"e","data":"{\"a\":1}","channels":["a","private-b","a"],"socket_id":"1.2"}"#)
            .unwrap();
        assert_eq!(
            t,
            Trigger {
                name: "e".into(),
                data: r#"{"a":1}"#.into(),
                channels: vec!["a".into(), "private-b".into()],
                socket_id: Some(SocketId::parse("1.2").unwrap()),
                info: InfoFields::default()
            }
        );
        let t = parse_trigger(br#"{"name":"e","data":{"a":1},"channel":"a"}"#).unwrap();
        assert_eq!(t.data, r#"{"a":1}"#);
        let status = |b: &str| parse_trigger(b.as_bytes()).map(|_| 200).unwrap_or_else(|e| e.status());
        assert_eq!(status(r#"{"name":"e","data":"d"}"#), 400);
        assert_eq!(status(r#"{"name":"e","data":"d","channels":[]}"#), 400);
        assert_eq!(status(r#"{"name":"e","data":"d","channel":"a b"}"#), 400);
        assert_eq!(status(r#"{"name":"e","data":"d","channel":"private-encrypted-x"}"#), 400);
        assert_eq!(status(r#"{"name":"","data":"d","channel":"a"}"#), 400);
        assert_eq!(status(r#"{"data":"d","channel":"a"}"#), 400);
        assert_eq!(status(r#"{"name":"e","data":"d","channel":"a","socket_id":"x"}"#), 400);
        assert_eq!(status(r#"{"name":"e","data":"d","channel":"a","info":"user_count"}"#), 400);
        assert_eq!(status(r#"[]"#), 400);
        let exact = format!(r#"{{"name":"e","data":"{}","channel":"a"}}"#, "x".repeat(MAX_EVENT_DATA_BYTES));
        assert_eq!(status(&exact), 200);
        let over = format!(r#"{{"name":"e","data":"{}","channel":"a"}}"#, "x".repeat(MAX_EVENT_DATA_BYTES + 1));
        assert_eq!(status(&over), 413);
        let many: Vec<String> = (0..101).map(|i| format!("\"c{i}\"")).collect();
        assert_eq!(status(&format!(r#"{{"name":"e","data":"d","channels":[{}]}}"#, many.join(","))), 400);
        let hundred: Vec<String> = (0..100).map(|i| format!("\"c{i}\"")).collect();
        assert_eq!(status(&format!(r#"{{"name":"e","data":"d","channels":[{}]}}"#, hundred.join(","))), 200);
    }

    #[test]
    fn batch_bodies() {
        let b = parse_batch(br#"{"batch":[{"name":"a","data":"1","channel":"x"},{"name":"b","data":"2","channel":"presence-y","info":"user_count"}]}"#)
            .unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].channels, vec!["presence-y".to_string()]);
        assert!(b[1].info.user_count);
        let items: Vec<String> = (0..11).map(|_| r#"{"name":"a","data":"1","channel":"x"}"#.to_string()).collect();
        let too_many = format!(r#"{{"batch":[{}]}}"#, items.join(","));
        assert_eq!(parse_batch(too_many.as_bytes()).unwrap_err().status(), 400);
        // batch items take `channel`, not `channels`
        assert_eq!(parse_batch(br#"{"batch":[{"name":"a","data":"1","channels":["x"]}]}"#).unwrap_err().status(), 400);
        let over = format!(r#"{{"batch":[{{"name":"a","data":"{}","channel":"x"}}]}}"#, "x".repeat(10_241));
        let err = parse_batch(over.as_bytes()).unwrap_err();
        assert_eq!(err.status(), 413);
        assert!(err.message().starts_with("batch[0]: "));
    }

    #[test]
    fn answers() {
        let f = InfoFields { user_count: true, subscription_count: true };
        let info = ChannelInfo { subscription_count: 3, user_count: Some(2) };
        assert_eq!(
            channels_body([("presence-a", info)], f),
            r#"{"channels":{"presence-a":{"user_count":2,"subscription_count":3}}}"#
        );
        assert_eq!(channels_body([("a", info)], InfoFields::default()), r#"{"channels":{"a":{}}}"#);
        assert_eq!(channel_body(&info, f), r#"{"occupied":true,"user_count":2,"subscription_count":3}"#);
        assert_eq!(channel_body(&ChannelInfo::default(), InfoFields::default()), r#"{"occupied":false}"#);
        assert_eq!(users_body(["1", "2"]), r#"{"users":[{"id":"1"},{"id":"2"}]}"#);
        assert_eq!(trigger_body([("a", info)], InfoFields::default()), "{}");
        assert_eq!(
            batch_body(&[
                (info, InfoFields { user_count: false, subscription_count: true }),
                (info, InfoFields::default())
            ]),
            r#"{"batch":[{"subscription_count":3},{}]}"#
        );
        assert_eq!(HttpError::TooLarge("x\"y".into()).to_body(), r#"{"error":"x\"y"}"#);
        assert!(ChannelsQuery::from_query(&Query::parse("info=user_count", false).unwrap()).is_err());
        assert!(channel_info_fields("private-a", &Query::parse("info=user_count", false).unwrap()).is_err());
        assert!(channel_info_fields("presence-a", &Query::parse("info=user_count", false).unwrap()).is_ok());
    }

    proptest! {
        #[test]
        fn signed_requests_verify_and_tampering_fails(
            ts in 1_000_000u64..2_000_000_000,
            skew in 0u64..=600,
            body in ".{0,200}",
            prefix in ".{0,20}",
        ) {
            let a = app();
            let body_opt = (!body.is_empty()).then_some(body.as_bytes());
            let q = sign_query(&a, "POST", "/apps/3/events", &[("filter_by_prefix", &prefix)], body_opt, ts);
            let got = verify(&a, "POST", "/apps/3/events", &q, body.as_bytes(), ts + skew);
            prop_assert!(got.is_ok(), "{:?}", got);
            let got = got.unwrap();
            prop_assert_eq!(got.get("filter_by_prefix"), Some(prefix.as_str()));
            let tampered = format!("{body}x");
            prop_assert_eq!(verify(&a, "POST", "/apps/3/events", &q, tampered.as_bytes(), ts).map(|_| ()).unwrap_err().status(), 401);
        }

        #[test]
        fn never_panics(q in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..200), path in ".{0,40}") {
            let _ = verify(&app(), "POST", &path, &q, &body, 0);
            let _ = parse_trigger(&body);
            let _ = parse_batch(&body);
            let _ = route(&app(), "GET", &path);
            let _ = Query::parse(&q, true);
        }
    }
}
