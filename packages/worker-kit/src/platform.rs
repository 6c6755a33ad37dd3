//! What the core takes as arguments, got from the runtime: the clock, randomness, and a socket send
//! that hands the same JavaScript string to every socket (a broadcast is encoded and copied once).

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

pub fn now_secs() -> u64 {
    (now_ms() / 1000).max(0) as u64
}

/// 128 random bits from the platform's CSPRNG.
pub fn random_u128() -> u128 {
    let mut buf = [0u8; 16];
    if getrandom::getrandom(&mut buf).is_err() {
        // crypto.getRandomValues does not fail in workerd; fall back to the clock rather than panic.
        return (now_ms() as u128) << 64 | (js_sys::Math::random() * u64::MAX as f64) as u128;
    }
    u128::from_le_bytes(buf)
}

/// 64 random bits from the platform's CSPRNG (jitter).
pub fn random_u64() -> u64 {
    random_u128() as u64
}

/// Waits `ms` milliseconds.
pub async fn sleep_ms(ms: u64) {
    worker::Delay::from(std::time::Duration::from_millis(ms)).await;
}

/// An unguessable token (hex of 128 random bits).
pub fn nonce() -> String {
    format!("{:032x}", random_u128())
}

#[wasm_bindgen]
extern "C" {
    /// The JavaScript WebSocket, seen only for `send(value)`.
    type RawSocket;
    #[wasm_bindgen(method, catch, js_name = send)]
    fn send_value(this: &RawSocket, data: &JsValue) -> Result<(), JsValue>;
}

/// A frame converted to a JavaScript string once, then sent to any number of sockets.
pub struct EncodedFrame(JsValue);

impl EncodedFrame {
    pub fn new(text: &str) -> Self {
        EncodedFrame(JsValue::from_str(text))
    }

    /// Sends to one socket; a socket that is closing is skipped (its close handler cleans up).
    pub fn send(&self, ws: &worker::WebSocket) -> bool {
        let raw: &web_sys_socket::Socket = ws.as_ref();
        raw.unchecked_ref::<RawSocket>().send_value(&self.0).is_ok()
    }
}

mod web_sys_socket {
    pub type Socket = worker::web_sys::WebSocket;
}

#[wasm_bindgen(
    inline_js = "export function broadcast_all(state, frame) { let n = 0; for (const ws of state.getWebSockets()) { try { ws.send(frame); n++; } catch (_) {} } return n; }
export function attachment_members(state) { const out = []; for (const ws of state.getWebSockets()) { try { const a = ws.deserializeAttachment(); if (a && typeof a.member === 'string') out.push(a.member); } catch (_) {} } return JSON.stringify(out); }
export function close_member(state, member, code, reason) { let n = 0; for (const ws of state.getWebSockets()) { try { const a = ws.deserializeAttachment(); if (a && a.member === member) { ws.close(code, reason); n++; } } catch (_) {} } return n; }
export function attachment_connection(ws) { try { const a = ws.deserializeAttachment(); if (!a || typeof a.member !== 'string') return undefined; const t = a.connected_at ?? a.connectedAt; return typeof t === 'number' ? t + ' ' + a.member : undefined; } catch (_) { return undefined; } }
export function attachment_member(ws) { try { const a = ws.deserializeAttachment(); return a && typeof a.member === 'string' ? a.member : undefined; } catch (_) { return undefined; } }
export function send_tagged(state, tags, frame) { const list = tags.split(','); let n = 0; if (list.length <= 16) { for (const t of list) { for (const ws of state.getWebSockets(t)) { try { ws.send(frame); n++; } catch (_) {} } } return n; } const want = new Set(list); for (const ws of state.getWebSockets()) { try { const t = state.getTags(ws); if (t.length > 0 && want.has(t[0])) { ws.send(frame); n++; } } catch (_) {} } return n; }
export function close_expired(state, now, code, reason) { let next = -1; for (const ws of state.getWebSockets()) { try { const a = ws.deserializeAttachment(); const u = a && typeof a.until === 'number' ? a.until : null; if (u === null) continue; if (u <= now) { ws.close(code, reason); } else if (next < 0 || u < next) { next = u; } } catch (_) {} } return next; }
export function first_tags(state) { const out = []; for (const ws of state.getWebSockets()) { try { const t = state.getTags(ws); if (t.length > 0) out.push(t[0]); } catch (_) {} } return JSON.stringify(out); }"
)]
extern "C" {
    /// Sends one frame to every socket of a Durable Object in a single call: the frame crosses the
    /// Wasm/JS boundary once and the sockets never do (at N = 1,000 the per-socket crossings of
    /// `getWebSockets()` + `send` dominated a broadcast).
    fn broadcast_all(state: &JsValue, frame: &str) -> u32;
    /// Sends one frame to the sockets whose first tag is in the comma-separated `tags`, in one call
    /// (a few tags: looked up by tag; many: one pass over the object's sockets).
    fn send_tagged(state: &JsValue, tags: &str, frame: &str) -> u32;
    /// The first tag of every socket of a Durable Object, as one JSON array.
    fn first_tags(state: &JsValue) -> String;
    /// The `member` of one socket's attachment (`undefined` when it has none).
    fn attachment_member(ws: &JsValue) -> Option<String>;
    /// `connected_at` and `member` of one socket's attachment as `"{connected_at} {member}"` (the
    /// number has no space), one deserialization (`undefined` when either is missing).
    fn attachment_connection(ws: &JsValue) -> Option<String>;
    /// The `member` of every socket's attachment, as one JSON array.
    fn attachment_members(state: &JsValue) -> String;
    /// Closes every socket whose attachment's `member` is `member`; answers how many.
    fn close_member(state: &JsValue, member: &str, code: u16, reason: &str) -> u32;
    /// Closes every socket whose attachment's `until` (epoch ms) is at or before `now`; answers the
    /// earliest `until` of the others, or -1.
    fn close_expired(state: &JsValue, now: f64, code: u16, reason: &str) -> f64;
}

/// Closes the sockets whose credential expired (their attachment's `until`, epoch ms, is at or
/// before `now_ms`) with `code` and `reason`, in one call; answers when the next one expires.
pub fn close_expired_sockets(state: &JsValue, now_ms: i64, code: u16, reason: &str) -> Option<i64> {
    let next = close_expired(state, now_ms as f64, code, reason);
    (next >= 0.0).then_some(next as i64)
}

/// Broadcasts `frame` to every socket of the object whose JavaScript state is `state`; answers how
/// many sockets took it.
pub fn broadcast(state: &JsValue, frame: &str) -> u32 {
    broadcast_all(state, frame)
}

/// Sends `frame` to the sockets of the object whose first tag is one of `tags` (tags must not hold
/// a comma), in one call: the frame and the list cross into JavaScript once. Answers how many took it.
pub fn send_to_tagged(state: &JsValue, tags: &[&str], frame: &str) -> u32 {
    if tags.is_empty() {
        return 0;
    }
    send_tagged(state, &tags.join(","), frame)
}

/// The first tag of every socket of the object whose JavaScript state is `state` (one call; the
/// sockets never cross into Rust).
pub fn socket_tags(state: &JsValue) -> Vec<String> {
    serde_json::from_str(&first_tags(state)).unwrap_or_default()
}

/// The `member` field of every socket's attachment, for objects that do not tag their sockets (a tag
/// costs the runtime memory per socket; the attachment is there anyway).
pub fn socket_members(state: &JsValue) -> Vec<String> {
    serde_json::from_str(&attachment_members(state)).unwrap_or_default()
}

/// The member a socket belongs to, read from its attachment in one call (no generic conversion of the
/// whole attachment object: this runs once per incoming frame).
pub fn socket_member(ws: &worker::WebSocket) -> Option<String> {
    let raw: &web_sys_socket::Socket = ws.as_ref();
    attachment_member(raw.as_ref())
}

/// The member a socket belongs to and when it connected (`{member, connected_at}` attachments):
/// together they name one connection, for its frame-rate bucket.
pub fn socket_connection(ws: &worker::WebSocket) -> Option<(String, i64)> {
    let raw: &web_sys_socket::Socket = ws.as_ref();
    // One call and one deserialization of the attachment per incoming frame.
    let both = attachment_connection(raw.as_ref())?;
    let (since, member) = both.split_once(' ')?;
    Some((member.to_string(), since.parse::<f64>().ok()? as i64))
}

/// Closes every socket whose attachment names `member`, with `code` and `reason`.
pub fn close_sockets_of(state: &JsValue, member: &str, code: u16, reason: &str) -> u32 {
    close_member(state, member, code, reason)
}
