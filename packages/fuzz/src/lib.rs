//! Shared pieces of the decoder fuzzers in `tests/fuzz_*.rs`: how many cases to run, arbitrary JSON with the
//! values that sit on our limits, and structure-aware inputs (a valid frame of each kind, then edited: a node
//! replaced, removed, added, stringified; then the text cut, spliced or repeated).
//!
//! Every fuzzer asserts that its decoder never panics, answers a typed error for bad input, and keeps its
//! invariants (round trips, bounds). Case counts: `FUZZ_CASES` (default [`DEFAULT_CASES`] per fuzzer, run by
//! `bash scripts/test`); `bash scripts/fuzz` runs 1,000,000 per fuzzer. Failing inputs are kept in
//! `packages/fuzz/regressions/` and replayed first on every later run.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{Map, Value};

/// Cases per fuzzer in the ordinary test run.
pub const DEFAULT_CASES: u32 = 1_500;

/// The proptest configuration of one fuzz file: `FUZZ_CASES` cases (default [`DEFAULT_CASES`]), failures kept
/// in `regressions/<file>.txt` (relative to the crate, where `cargo test` runs), little shrinking output.
pub fn config(regressions: &'static str) -> Config {
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        max_shrink_iters: 4_096,
        ..Config::default()
    }
}

/// Lengths around our limits (ids 128, titles 200, contexts 256, group ids 64, text 8000, ...).
const EDGE_LENGTHS: [usize; 16] = [0, 1, 25, 26, 27, 64, 65, 80, 81, 128, 129, 200, 201, 256, 257, 8_001];

/// Keys our protocols read, so that generated objects often hit a real field.
pub const KEYS: [&str; 40] = [
    "type",
    "event",
    "data",
    "channel",
    "content",
    "text",
    "id",
    "seq",
    "contexts",
    "conversationId",
    "requestId",
    "clientId",
    "inReplyToMessageId",
    "received",
    "final",
    "payload",
    "user",
    "user_id",
    "user_info",
    "auth",
    "channel_data",
    "user_data",
    "socket_id",
    "activity_timeout",
    "name",
    "channels",
    "batch",
    "sender",
    "message",
    "body",
    "username",
    "displayName",
    "newMessage",
    "errors",
    "actions",
    "groupId",
    "timestamp",
    "title",
    "sandboxId",
    "emoji",
];

/// Strings that sit on a rule: ids, prefixes, frame types, escapes, double-encoded JSON, odd Unicode.
const EDGE_STRINGS: [&str; 30] = [
    "",
    " ",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
    "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
    "01ARZ3NDEKTSV4RRFFQ69G5FA\u{e9}",
    "bot:kiloclaw:sb1",
    "bot:kiloclaw:",
    "/kiloclaw/sb1/01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "/presence/kiloclaw/sb1",
    "/presence/app",
    "message.create",
    "context.subscribe",
    "ack",
    "typing.stop",
    "pusher:subscribe",
    "pusher:signin",
    "client-x",
    "private-conversation-01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "presence-x",
    "connection_ack",
    "next",
    "App\\Events\\ChatMessageEvent",
    "{\"a\":1}",
    "{\"user_id\":\"u\",\"user_info\":{}}",
    "null",
    "\u{0}\u{1f}\u{7f}",
    "\u{202e}\u{feff}\u{fffd}",
    "é☃😀\u{10ffff}",
    "\\\"\n\r\t",
];

fn edge_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&EDGE_STRINGS[..]).prop_map(str::to_string),
        2 => (prop::sample::select(&EDGE_LENGTHS[..]), prop::sample::select(&["a", "é", "😀", " ", "Z"][..]))
            .prop_map(|(n, c)| c.repeat(n)),
        3 => any::<String>(),
        2 => "[a-zA-Z0-9_.:@/-]{0,40}",
    ]
}

/// Numbers on edges: 0, -1, 2^53 ± 1, i64/u64 extremes, floats, and any i64.
fn edge_number() -> impl Strategy<Value = Value> {
    const INTS: [i64; 9] = [0, 1, -1, 1 << 53, (1 << 53) + 1, i64::MAX, i64::MIN, 1_700_000_000_000, 4_294_967_296];
    prop_oneof![
        3 => prop::sample::select(&INTS[..]).prop_map(Value::from),
        1 => Just(Value::from(u64::MAX)),
        2 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => prop::sample::select(&[0.5f64, -0.0, 1e308, -1e-308, 9007199254740993.0][..]).prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(&KEYS[..]).prop_map(str::to_string), 1 => edge_string()]
}

/// Arbitrary JSON, leaning on edge values; nested up to 4 levels.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => edge_number(),
        4 => edge_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// One structural edit of a JSON tree; `usize` picks a node (pre-order, modulo the node count).
#[derive(Debug, Clone)]
pub enum Edit {
    Replace(usize, Value),
    Remove(usize),
    AddKey(usize, String, Value),
    /// The node's JSON text, as a string (Pusher and Kick double-encode `data`).
    Stringify(usize),
    /// `[node]`.
    Wrap(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), json_value()).prop_map(|(i, v)| Edit::Replace(i, v)),
        2 => any::<usize>().prop_map(Edit::Remove),
        2 => (any::<usize>(), key(), json_value()).prop_map(|(i, k, v)| Edit::AddKey(i, k, v)),
        1 => any::<usize>().prop_map(Edit::Stringify),
        1 => any::<usize>().prop_map(Edit::Wrap),
    ]
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The node at pre-order index `*i` (counting down), and its parent's container for removals.
fn apply_at(v: &mut Value, i: &mut usize, e: &Edit) -> bool {
    if *i == 0 {
        match e {
            Edit::Replace(_, n) => *v = n.clone(),
            Edit::AddKey(_, k, n) => match v {
                Value::Object(o) => {
                    o.insert(k.clone(), n.clone());
                }
                Value::Array(a) => a.push(n.clone()),
                _ => *v = n.clone(),
            },
            Edit::Stringify(_) => *v = Value::String(v.to_string()),
            Edit::Wrap(_) => *v = Value::Array(vec![v.take()]),
            Edit::Remove(_) => *v = Value::Null,
        }
        return true;
    }
    *i -= 1;
    match v {
        Value::Array(a) => {
            for j in 0..a.len() {
                if *i == 0 && matches!(e, Edit::Remove(_)) {
                    a.remove(j);
                    return true;
                }
                if apply_at(&mut a[j], i, e) {
                    return true;
                }
            }
            false
        }
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                if *i == 0 && matches!(e, Edit::Remove(_)) {
                    o.remove(&k);
                    return true;
                }
                if let Some(child) = o.get_mut(&k) {
                    if apply_at(child, i, e) {
                        return true;
                    }
                }
            }
            false
        }
        _ => false,
    }
}

/// Applies `e` to `v`.
pub fn apply(v: &mut Value, e: &Edit) {
    let (Edit::Replace(i, _) | Edit::Remove(i) | Edit::AddKey(i, _, _) | Edit::Stringify(i) | Edit::Wrap(i)) = e;
    let mut at = i % count_nodes(v);
    apply_at(v, &mut at, e);
}

/// One edit of the text: cut, splice in, delete or repeat a span (on character boundaries).
#[derive(Debug, Clone)]
pub enum TextEdit {
    Truncate(usize),
    Insert(usize, String),
    Delete(usize, usize),
    Repeat(usize, usize, u8),
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    let splice = prop_oneof![
        prop::sample::select(
            &["\"", "{", "}", "[", "]", ",", ":", "\\", "\\u", "\\ud800", "\n", "\r\n", " ", "0", "-", "e9"][..]
        )
        .prop_map(str::to_string),
        any::<String>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(TextEdit::Truncate),
        (any::<usize>(), splice).prop_map(|(i, s)| TextEdit::Insert(i, s)),
        (any::<usize>(), 0usize..16).prop_map(|(i, n)| TextEdit::Delete(i, n)),
        (any::<usize>(), 1usize..32, 2u8..8).prop_map(|(i, n, k)| TextEdit::Repeat(i, n, k)),
    ]
}

/// Applies a text edit; positions are taken modulo the length and moved back to a character boundary.
pub fn apply_text(s: &mut String, e: &TextEdit) {
    let at = |i: usize, s: &str| {
        let mut p = if s.is_empty() { 0 } else { i % (s.len() + 1) };
        while !s.is_char_boundary(p) {
            p -= 1;
        }
        p
    };
    match e {
        TextEdit::Truncate(i) => s.truncate(at(*i, s)),
        TextEdit::Insert(i, t) => s.insert_str(at(*i, s), t),
        TextEdit::Delete(i, n) => {
            let a = at(*i, s);
            let b = at(a + n, s).max(a);
            s.replace_range(a..b, "");
        }
        TextEdit::Repeat(i, n, k) => {
            let a = at(*i, s);
            let b = at(a + n, s).max(a);
            let span = s[a..b].repeat(usize::from(*k));
            s.replace_range(a..b, &span);
        }
    }
}

/// Near-valid JSON text: one of `seeds`, with 0..4 structural edits, written out, then (one time in three)
/// 1..3 text edits.
pub fn near_valid(seeds: Vec<Value>) -> impl Strategy<Value = String> {
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec(edit(), 0..4),
        prop_oneof![2 => Just(vec![]), 1 => prop::collection::vec(text_edit(), 1..3)],
    )
        .prop_map(move |(i, edits, text_edits)| {
            let mut v = seeds[i].clone();
            for e in &edits {
                apply(&mut v, e);
            }
            let mut s = v.to_string();
            for e in &text_edits {
                apply_text(&mut s, e);
            }
            s
        })
}

/// Any text a peer could send: arbitrary strings, arbitrary JSON, or near-valid frames from `seeds`.
pub fn frame_text(seeds: Vec<Value>) -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        1 => json_value().prop_map(|v| v.to_string()),
        4 => near_valid(seeds),
    ]
}

/// Bytes as they arrive on a body: [`frame_text`] with, sometimes, invalid UTF-8 spliced in, or arbitrary bytes.
pub fn body_bytes(seeds: Vec<Value>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        4 => frame_text(seeds).prop_map(String::into_bytes),
        1 => (frame_text(vec![Value::Object(Map::new())]), any::<usize>(), prop::sample::select(&[0xffu8, 0xc3, 0xe2, 0x80, 0xed][..]))
            .prop_map(|(s, i, b)| {
                let mut v = s.into_bytes();
                let at = if v.is_empty() { 0 } else { i % v.len() };
                v.insert(at, b);
                v
            }),
    ]
}

/// Unpadded base64url (JWT segments).
pub fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..=c.len() {
            out.push(char::from(A[((n >> (18 - 6 * k)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn edits_reach_every_node() {
        let seed = json!({"a": [1, {"b": 2}], "c": "x"});
        let n = count_nodes(&seed);
        assert_eq!(n, 6);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..n {
            let mut v = seed.clone();
            apply(&mut v, &Edit::Replace(i, json!("R")));
            assert_ne!(v, seed, "node {i}");
            seen.insert(v.to_string());
            let mut v = seed.clone();
            apply(&mut v, &Edit::Remove(i));
            assert_ne!(v, seed, "remove {i}");
        }
        assert_eq!(seen.len(), n);
    }

    #[test]
    fn text_edits_keep_utf8_boundaries() {
        for i in 0..12 {
            let mut s = "é☃😀ab".to_string();
            apply_text(&mut s, &TextEdit::Truncate(i));
            let mut s = "é☃😀ab".to_string();
            apply_text(&mut s, &TextEdit::Repeat(i, 3, 2));
            apply_text(&mut s, &TextEdit::Delete(i, 2));
        }
    }

    #[test]
    fn base64url_known_answers() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
