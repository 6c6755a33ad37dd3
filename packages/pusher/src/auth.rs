//! Signatures: channel authorization, user authentication, and the socket ids they bind to.
//!
//! Pusher never lets a client prove anything to the server directly: the app's backend signs, with
//! the app secret, a string naming the socket (`socket_id`) and what it may do, and the client
//! passes the signature on. Binding to the socket id is what stops a signature being replayed by
//! another connection, so socket ids must be unpredictable: ours are made from 128 random bits the
//! caller passes in (`SocketId::from_random`).
//!
//! - channel auth: `"<key>:" + hex(HMAC-SHA256(secret, "<socket_id>:<channel>[:<channel_data>]"))`
//! - user auth (`pusher:signin`): the same over `"<socket_id>::user::<user_data>"`
//!
//! Verification recomputes the MAC and compares with `hmac::Mac::verify_slice` (constant time).

use crate::limits::{
    MAX_AUTH_CHARS, MAX_CHANNEL_DATA_BYTES, MAX_SOCKET_ID_CHARS, MAX_USER_DATA_BYTES, MAX_USER_ID_CHARS,
    MAX_USER_INFO_BYTES,
};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// One app's credentials. `id` appears in HTTP API paths, `key` in socket URLs and signatures,
/// `secret` never leaves the server.
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub key: String,
    pub secret: String,
}

impl App {
    pub fn new(id: impl Into<String>, key: impl Into<String>, secret: impl Into<String>) -> Self {
        App { id: id.into(), key: key.into(), secret: secret.into() }
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").field("id", &self.id).field("key", &self.key).field("secret", &"<redacted>").finish()
    }
}

/// Why a signature or a signed value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `auth` where one is needed.
    Missing,
    /// Not `<key>:<hex>`, or too long.
    Malformed,
    /// Signed with another app's key.
    WrongKey,
    /// The MAC does not match.
    BadSignature,
    InvalidSocketId,
    /// Presence `channel_data` missing or not `{user_id, user_info?}` within the limits.
    InvalidChannelData(String),
    /// `user_data` of a sign-in not a JSON object with a string `id` within the limits.
    InvalidUserData(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => f.write_str("auth is required for this channel"),
            AuthError::Malformed => f.write_str("auth must be `<app key>:<hex signature>`"),
            AuthError::WrongKey => f.write_str("auth was signed for another app key"),
            AuthError::BadSignature => f.write_str("invalid signature"),
            AuthError::InvalidSocketId => f.write_str("socket_id must be `<digits>.<digits>`"),
            AuthError::InvalidChannelData(why) => write!(f, "invalid channel_data: {why}"),
            AuthError::InvalidUserData(why) => write!(f, "invalid user_data: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}

// ---- socket ids -----------------------------------------------------------------------------------

/// A validated socket id, `<digits>.<digits>`, at most `MAX_SOCKET_ID_CHARS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SocketId(String);

impl SocketId {
    /// Makes a socket id from random bits (two `u64`s from the platform's CSPRNG).
    pub fn from_random(a: u64, b: u64) -> SocketId {
        SocketId(format!("{a}.{b}"))
    }

    pub fn parse(s: &str) -> Result<SocketId, AuthError> {
        if valid_socket_id(s) {
            Ok(SocketId(s.to_string()))
        } else {
            Err(AuthError::InvalidSocketId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SocketId {
    type Error = AuthError;
    fn try_from(s: String) -> Result<Self, AuthError> {
        if valid_socket_id(&s) {
            Ok(SocketId(s))
        } else {
            Err(AuthError::InvalidSocketId)
        }
    }
}

impl From<SocketId> for String {
    fn from(s: SocketId) -> String {
        s.0
    }
}

/// `^\d+\.\d+$`, at most `MAX_SOCKET_ID_CHARS`.
pub fn valid_socket_id(s: &str) -> bool {
    if s.len() > MAX_SOCKET_ID_CHARS {
        return false;
    }
    match s.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

// ---- signing ----------------------------------------------------------------------------------------

/// HMAC takes keys of any length, so `new_from_slice` never fails; were it to, the all-zero key is
/// used, which only makes signatures that verify nothing (and no panic).
fn mac(secret: &str) -> HmacSha256 {
    <HmacSha256 as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()))
}

/// hex(HMAC-SHA256(secret, message)).
pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(message);
    hex::encode(m.finalize().into_bytes())
}

/// Whether `signature_hex` is hex(HMAC-SHA256(secret, message)), compared in constant time.
pub fn verify_hmac_hex(secret: &str, message: &[u8], signature_hex: &str) -> bool {
    let Ok(sig) = hex::decode(signature_hex) else { return false };
    let mut m = mac(secret);
    m.update(message);
    m.verify_slice(&sig).is_ok()
}

fn channel_string(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    match channel_data {
        Some(cd) => format!("{socket_id}:{channel}:{cd}"),
        None => format!("{socket_id}:{channel}"),
    }
}

fn user_string(socket_id: &str, user_data: &str) -> String {
    format!("{socket_id}::user::{user_data}")
}

/// The `auth` for subscribing `socket_id` to `channel` (with presence `channel_data`).
pub fn sign_channel(app: &App, socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    format!("{}:{}", app.key, hmac_hex(&app.secret, channel_string(socket_id, channel, channel_data).as_bytes()))
}

/// What a private channel auth that names its member signs: its own domain (`::member::`), so it
/// can be mistaken for no other signed string.
fn member_string(socket_id: &str, channel: &str, member: &str) -> String {
    format!("{socket_id}:{channel}::member::{member}")
}

/// The `auth` for subscribing `socket_id` to the private `channel` as `member`:
/// `<key>:<member id in hex>:<signature>`. Pusher clients send an `auth` back as they got it, so
/// the subscription says whose it is with no `channel_data` (which not every client forwards on
/// private channels); see [`verify_private`].
pub fn sign_private_for(app: &App, socket_id: &str, channel: &str, member: &str) -> String {
    let sig = hmac_hex(&app.secret, member_string(socket_id, channel, member).as_bytes());
    format!("{}:{}:{sig}", app.key, hex::encode(member))
}

/// Verifies a private channel's `auth` and answers whom the subscription was signed for, if anyone:
/// the member of a [`sign_private_for`] auth, or the `user_id` of the `channel_data` a standard
/// `<key>:<signature>` was signed with (as the `pusher` server libraries sign it when given
/// data); a standard auth without `channel_data` names nobody.
pub fn verify_private(
    app: &App,
    auth: Option<&str>,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> Result<Option<String>, AuthError> {
    let named = auth
        .filter(|a| a.len() <= MAX_AUTH_CHARS)
        .and_then(|a| a.strip_prefix(app.key.as_str()))
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| rest.split_once(':'));
    if let Some((member_hex, sig)) = named {
        let member = hex::decode(member_hex)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|m| valid_user_id(m))
            .ok_or(AuthError::Malformed)?;
        return check_mac(app, &member_string(socket_id, channel, &member), sig).map(|()| Some(member));
    }
    verify_channel(app, auth, socket_id, channel, channel_data)?;
    channel_data.map(|cd| parse_channel_data(cd).map(|m| m.user_id)).transpose()
}

/// The `auth` for signing `socket_id` in with `user_data`.
pub fn sign_user(app: &App, socket_id: &str, user_data: &str) -> String {
    format!("{}:{}", app.key, hmac_hex(&app.secret, user_string(socket_id, user_data).as_bytes()))
}

fn verify_auth(app: &App, auth: Option<&str>, message: &str) -> Result<(), AuthError> {
    let auth = match auth {
        None | Some("") => return Err(AuthError::Missing),
        Some(a) => a,
    };
    if auth.len() > MAX_AUTH_CHARS {
        return Err(AuthError::Malformed);
    }
    let (key, sig) = auth.rsplit_once(':').ok_or(AuthError::Malformed)?;
    if key != app.key {
        return Err(AuthError::WrongKey);
    }
    check_mac(app, message, sig)
}

/// Whether `sig` is the app's signature of `message`.
fn check_mac(app: &App, message: &str, sig: &str) -> Result<(), AuthError> {
    if verify_hmac_hex(&app.secret, message.as_bytes(), sig) {
        Ok(())
    } else {
        Err(AuthError::BadSignature)
    }
}

/// Verifies a channel `auth` (with the `channel_data` exactly as the client sent it).
pub fn verify_channel(
    app: &App,
    auth: Option<&str>,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> Result<(), AuthError> {
    verify_auth(app, auth, &channel_string(socket_id, channel, channel_data))
}

/// A signed-in user: their `id` and the `user_data` text they signed in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInUser {
    pub id: String,
    pub user_data: String,
}

/// Verifies a `pusher:signin` and answers the user.
pub fn verify_user(app: &App, auth: &str, socket_id: &str, user_data: &str) -> Result<SignedInUser, AuthError> {
    let user = parse_user_data(user_data)?;
    verify_auth(app, Some(auth), &user_string(socket_id, user_data))?;
    Ok(user)
}

/// A user id as `user_data` and `channel_data` may carry it: 1 to `MAX_USER_ID_CHARS` characters.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= MAX_USER_ID_CHARS
}

/// `user_data`: a JSON object with a non-empty string `id` (at most `MAX_USER_ID_CHARS`), at most
/// `MAX_USER_DATA_BYTES` in all.
pub fn parse_user_data(user_data: &str) -> Result<SignedInUser, AuthError> {
    if user_data.len() > MAX_USER_DATA_BYTES {
        return Err(AuthError::InvalidUserData(format!("longer than {MAX_USER_DATA_BYTES} bytes")));
    }
    let v: Value =
        serde_json::from_str(user_data).map_err(|_| AuthError::InvalidUserData("must be a JSON object".into()))?;
    let id = match v.get("id") {
        Some(Value::String(s)) if valid_user_id(s) => s.clone(),
        _ => {
            return Err(AuthError::InvalidUserData(format!(
                "must have a string `id` of 1 to {MAX_USER_ID_CHARS} characters"
            )))
        }
    };
    Ok(SignedInUser { id, user_data: user_data.to_string() })
}

// ---- presence channel_data ---------------------------------------------------------------------------

/// A presence member as its `channel_data` says: `user_info` is kept as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PresenceMember {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_info: Option<String>,
}

/// Parses presence `channel_data`: `{user_id: string | number, user_info?: any}` within
/// `MAX_CHANNEL_DATA_BYTES`, the id non-empty and at most `MAX_USER_ID_CHARS`, the info at most
/// `MAX_USER_INFO_BYTES` of JSON.
pub fn parse_channel_data(channel_data: &str) -> Result<PresenceMember, AuthError> {
    let bad = |why: &str| AuthError::InvalidChannelData(why.to_string());
    if channel_data.len() > MAX_CHANNEL_DATA_BYTES {
        return Err(AuthError::InvalidChannelData(format!("longer than {MAX_CHANNEL_DATA_BYTES} bytes")));
    }
    let v: Value = serde_json::from_str(channel_data).map_err(|_| bad("must be a JSON object"))?;
    let obj = v.as_object().ok_or_else(|| bad("must be a JSON object"))?;
    let user_id = match obj.get("user_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(bad("`user_id` (a string or a number) is required")),
    };
    if !valid_user_id(&user_id) {
        return Err(AuthError::InvalidChannelData(format!("`user_id` must be 1 to {MAX_USER_ID_CHARS} characters")));
    }
    let user_info = match obj.get("user_info") {
        None | Some(Value::Null) => None,
        Some(info) => {
            let text = info.to_string();
            if text.len() > MAX_USER_INFO_BYTES {
                return Err(AuthError::InvalidChannelData(format!(
                    "`user_info` is longer than {MAX_USER_INFO_BYTES} bytes"
                )));
            }
            Some(text)
        }
    };
    Ok(PresenceMember { user_id, user_info })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn app() -> App {
        App::new("1", "278d425bdf160c739803", "7ad3773142a6692b25b8")
    }

    #[test]
    fn published_vector() {
        let auth = sign_channel(&app(), "1234.1234", "private-foobar", None);
        assert_eq!(auth, "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4");
        assert_eq!(verify_channel(&app(), Some(&auth), "1234.1234", "private-foobar", None), Ok(()));
    }

    #[test]
    fn refusals() {
        let a = app();
        let auth = sign_channel(&a, "1234.1234", "private-foobar", None);
        assert_eq!(verify_channel(&a, None, "1234.1234", "private-foobar", None), Err(AuthError::Missing));
        assert_eq!(verify_channel(&a, Some(""), "1234.1234", "private-foobar", None), Err(AuthError::Missing));
        assert_eq!(verify_channel(&a, Some("nocolon"), "1.1", "private-a", None), Err(AuthError::Malformed));
        // another socket, another channel, another key, flipped digit, not hex
        assert_eq!(verify_channel(&a, Some(&auth), "1234.1235", "private-foobar", None), Err(AuthError::BadSignature));
        assert_eq!(verify_channel(&a, Some(&auth), "1234.1234", "private-foobaz", None), Err(AuthError::BadSignature));
        let other = auth.replacen("278d", "378d", 1);
        assert_eq!(verify_channel(&a, Some(&other), "1234.1234", "private-foobar", None), Err(AuthError::WrongKey));
        let flipped = format!("{}0", &auth[..auth.len() - 1]);
        assert_eq!(
            verify_channel(&a, Some(&flipped), "1234.1234", "private-foobar", None),
            Err(AuthError::BadSignature)
        );
        let not_hex = format!("{}:zz", a.key);
        assert_eq!(
            verify_channel(&a, Some(&not_hex), "1234.1234", "private-foobar", None),
            Err(AuthError::BadSignature)
        );
        let long = format!("{}:{}", a.key, "0".repeat(MAX_AUTH_CHARS));
        assert_eq!(verify_channel(&a, Some(&long), "1.1", "private-a", None), Err(AuthError::Malformed));
        // the longest member id (4-byte characters) still fits an auth that names it
        let member = "😀".repeat(MAX_USER_ID_CHARS);
        let named = sign_private_for(&a, "1.1", "private-a", &member);
        assert!(named.len() <= MAX_AUTH_CHARS, "{}", named.len());
        assert_eq!(verify_private(&a, Some(&named), "1.1", "private-a", None), Ok(Some(member)));
    }

    #[test]
    fn presence_signature_covers_channel_data() {
        let a = app();
        let cd = r#"{"user_id":"10","user_info":{"name":"Mr. Channels"}}"#;
        let auth = sign_channel(&a, "1234.1234", "presence-foobar", Some(cd));
        let expected = hmac_hex(&a.secret, format!("1234.1234:presence-foobar:{cd}").as_bytes());
        assert_eq!(auth, format!("278d425bdf160c739803:{expected}"));
        assert_eq!(verify_channel(&a, Some(&auth), "1234.1234", "presence-foobar", Some(cd)), Ok(()));
        let other = r#"{"user_id":"11","user_info":{"name":"Mr. Channels"}}"#;
        assert_eq!(
            verify_channel(&a, Some(&auth), "1234.1234", "presence-foobar", Some(other)),
            Err(AuthError::BadSignature)
        );
        assert_eq!(verify_channel(&a, Some(&auth), "1234.1234", "presence-foobar", None), Err(AuthError::BadSignature));
    }

    #[test]
    fn user_signin() {
        let a = app();
        let ud = r#"{"id":"12345","name":"x"}"#;
        let auth = sign_user(&a, "1234.1234", ud);
        let expected =
            format!("{}:{}", a.key, hmac_hex(&a.secret, b"1234.1234::user::{\"id\":\"12345\",\"name\":\"x\"}"));
        assert_eq!(auth, expected);
        assert_eq!(
            verify_user(&a, &auth, "1234.1234", ud),
            Ok(SignedInUser { id: "12345".into(), user_data: ud.into() })
        );
        assert_eq!(verify_user(&a, &auth, "1234.9", ud), Err(AuthError::BadSignature));
        assert!(matches!(verify_user(&a, &auth, "1234.1234", r#"{"id":5}"#), Err(AuthError::InvalidUserData(_))));
        assert!(matches!(parse_user_data("[]"), Err(AuthError::InvalidUserData(_))));
        assert!(matches!(parse_user_data(r#"{"id":""}"#), Err(AuthError::InvalidUserData(_))));
    }

    #[test]
    fn socket_ids() {
        assert!(valid_socket_id("123.456"));
        assert!(!valid_socket_id("123"));
        assert!(!valid_socket_id(".1"));
        assert!(!valid_socket_id("1."));
        assert!(!valid_socket_id("1.2.3"));
        assert!(!valid_socket_id("a.1"));
        assert!(!valid_socket_id("1.-1"));
        assert!(!valid_socket_id(&format!("{}.1", "1".repeat(40))));
        let max = SocketId::from_random(u64::MAX, u64::MAX);
        assert_eq!(max.as_str(), "18446744073709551615.18446744073709551615");
        assert!(valid_socket_id(max.as_str()));
        assert_eq!(SocketId::parse("x"), Err(AuthError::InvalidSocketId));
        assert_eq!(serde_json::to_string(&max).unwrap(), "\"18446744073709551615.18446744073709551615\"");
        assert!(serde_json::from_str::<SocketId>("\"1.x\"").is_err());
    }

    #[test]
    fn channel_data() {
        assert_eq!(
            parse_channel_data(r#"{"user_id":"u","user_info":{"a":1}}"#),
            Ok(PresenceMember { user_id: "u".into(), user_info: Some(r#"{"a":1}"#.into()) })
        );
        assert_eq!(
            parse_channel_data(r#"{"user_id":42}"#),
            Ok(PresenceMember { user_id: "42".into(), user_info: None })
        );
        assert!(parse_channel_data(r#"{"user_info":{}}"#).is_err());
        assert!(parse_channel_data(r#"{"user_id":""}"#).is_err());
        assert!(parse_channel_data(r#"{"user_id":true}"#).is_err());
        assert!(parse_channel_data("x").is_err());
        assert!(parse_channel_data(&format!(r#"{{"user_id":"{}"}}"#, "u".repeat(129))).is_err());
        let big = format!(r#"{{"user_id":"u","user_info":"{}"}}"#, "i".repeat(1100));
        assert!(parse_channel_data(&big).is_err());
    }

    proptest! {
        #[test]
        fn sign_then_verify(socket in (any::<u64>(), any::<u64>()), channel in "[a-z-]{1,40}", data in proptest::option::of(".{0,50}")) {
            let a = app();
            let sid = SocketId::from_random(socket.0, socket.1);
            prop_assert!(SocketId::parse(sid.as_str()).is_ok());
            let auth = sign_channel(&a, sid.as_str(), &channel, data.as_deref());
            prop_assert_eq!(verify_channel(&a, Some(&auth), sid.as_str(), &channel, data.as_deref()), Ok(()));
            let tampered = format!("{channel}x");
            prop_assert_eq!(verify_channel(&a, Some(&auth), sid.as_str(), &tampered, data.as_deref()), Err(AuthError::BadSignature));
        }

        #[test]
        fn verify_never_panics(auth in ".{0,300}", sid in ".{0,50}") {
            let _ = verify_channel(&app(), Some(&auth), &sid, "c", None);
            let _ = verify_user(&app(), &auth, &sid, &auth);
            let _ = parse_channel_data(&auth);
        }
    }
}
