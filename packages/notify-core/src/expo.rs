//! Expo's push service, as data: the messages we send, how they are cut into requests, when a body
//! is gzipped, when a failed request is retried, and how tickets and receipts are read.
//! (`../shared/reference/protocols.md`, Expo section.)

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Messages in one request to Expo.
pub const MAX_MESSAGES_PER_REQUEST: usize = 100;
/// Bodies larger than this are sent with `content-encoding: gzip`.
pub const GZIP_THRESHOLD_BYTES: usize = 1024;
/// Ticket ids in one `getReceipts` request.
pub const MAX_RECEIPT_IDS_PER_REQUEST: usize = 1000;
/// The ticket or receipt error that means the token is dead and must be forgotten.
pub const DEVICE_NOT_REGISTERED: &str = "DeviceNotRegistered";
/// A receipt that is not ready is asked for again this many times in all.
pub const MAX_RECEIPT_ATTEMPTS: i64 = 3;

/// `data` of a chat push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushData {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub sandbox_id: String,
    pub conversation_id: String,
    pub message_id: String,
}

impl PushData {
    pub fn chat_message(sandbox_id: &str, conversation_id: &str, message_id: &str) -> PushData {
        PushData {
            kind: "chat.message",
            sandbox_id: sandbox_id.to_string(),
            conversation_id: conversation_id.to_string(),
            message_id: message_id.to_string(),
        }
    }
}

/// One message to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushMessage {
    pub to: String,
    pub title: String,
    pub body: String,
    pub data: PushData,
    pub sound: &'static str,
    pub priority: &'static str,
    /// The recipient's total unread.
    pub badge: i64,
}

impl PushMessage {
    pub fn new(to: &str, title: &str, body: &str, data: &PushData, badge: i64) -> PushMessage {
        PushMessage {
            to: to.to_string(),
            title: title.to_string(),
            body: body.to_string(),
            data: data.clone(),
            sound: "default",
            priority: "high",
            badge: badge.max(0),
        }
    }
}

/// Cuts messages into requests of at most `MAX_MESSAGES_PER_REQUEST`.
pub fn chunks<T>(items: &[T]) -> std::slice::Chunks<'_, T> {
    items.chunks(MAX_MESSAGES_PER_REQUEST)
}

/// The JSON body of one request (an array of messages).
pub fn encode_request(messages: &[PushMessage]) -> String {
    // Serializing these plain structs cannot fail; an empty array is the harmless fallback.
    serde_json::to_string(messages).unwrap_or_else(|_| "[]".to_string())
}

/// Whether a body of `len` bytes is gzipped.
pub fn should_gzip(len: usize) -> bool {
    len > GZIP_THRESHOLD_BYTES
}

// ------------------------------------------------------------------------------------------------
// Retries
// ------------------------------------------------------------------------------------------------

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// An HTTP answer with this status.
    Status(u16),
    /// No answer: connection refused or reset, DNS, timeout.
    NetworkError,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A 2xx: read the answer.
    Accept,
    /// Wait this long, then try again.
    Retry { delay_ms: u64 },
    /// Stop: a status that retrying cannot fix (400, 401, 413, ...), or no attempts left.
    GiveUp,
}

/// Bounded exponential backoff with jitter, for 429, 5xx and network errors only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: u64,
    pub max_delay_ms: u64,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// At most 5 attempts; waits of 125-250, 250-500, 500-1000 and 1000-2000 ms (under 4 s in all).
    fn default() -> Self {
        Backoff { base_ms: 250, max_delay_ms: 4_000, max_attempts: 5 }
    }
}

impl Backoff {
    pub fn is_retryable(a: Attempt) -> bool {
        match a {
            Attempt::NetworkError => true,
            Attempt::Status(s) => s == 429 || (500..=599).contains(&s),
        }
    }

    /// The wait before retry number `retry` (0 for the first retry): the nominal delay
    /// `base * 2^retry` (capped) with "equal jitter", i.e. uniformly in [nominal/2, nominal], from
    /// the caller's `random` bits; never shorter than a server's `Retry-After` (capped too).
    pub fn delay_ms(&self, retry: u32, random: u64, retry_after_ms: Option<u64>) -> u64 {
        let nominal =
            self.base_ms.saturating_mul(1u64.checked_shl(retry.min(32)).unwrap_or(u64::MAX)).min(self.max_delay_ms);
        let half = nominal / 2;
        let jittered = half + random % (nominal - half + 1);
        jittered.max(retry_after_ms.unwrap_or(0).min(self.max_delay_ms))
    }

    /// After attempt number `attempt` (1-based) ended as `a`.
    pub fn next(&self, attempt: u32, a: Attempt, random: u64, retry_after_ms: Option<u64>) -> Next {
        match a {
            Attempt::Status(s) if (200..=299).contains(&s) => Next::Accept,
            a if Self::is_retryable(a) && attempt < self.max_attempts => {
                Next::Retry { delay_ms: self.delay_ms(attempt.saturating_sub(1), random, retry_after_ms) }
            }
            _ => Next::GiveUp,
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
pub fn parse_retry_after(value: &str) -> Option<u64> {
    value.trim().parse::<u64>().ok().map(|s| s.saturating_mul(1000))
}

// ------------------------------------------------------------------------------------------------
// Tickets and receipts
// ------------------------------------------------------------------------------------------------

/// Expo's answer for one message of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ticket {
    Ok { id: String },
    Error { error: Option<String>, message: String },
}

impl Ticket {
    pub fn is_ok(&self) -> bool {
        matches!(self, Ticket::Ok { .. })
    }

    pub fn device_not_registered(&self) -> bool {
        matches!(self, Ticket::Error { error: Some(e), .. } if e == DEVICE_NOT_REGISTERED)
    }
}

fn error_of(v: &Value) -> (Option<String>, String) {
    let error = v.get("details").and_then(|d| d.get("error")).and_then(Value::as_str).map(str::to_string);
    let message = v.get("message").and_then(Value::as_str).unwrap_or("error without message").to_string();
    (error, message)
}

fn ticket_of(v: &Value) -> Ticket {
    match v.get("status").and_then(Value::as_str) {
        Some("ok") => match v.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ticket::Ok { id: id.to_string() },
            _ => Ticket::Error { error: None, message: "ok ticket without id".to_string() },
        },
        Some("error") => {
            let (error, message) = error_of(v);
            Ticket::Error { error, message }
        }
        _ => Ticket::Error { error: None, message: format!("unreadable ticket: {v}") },
    }
}

/// Reads `{data:[ticket...]}` of a request that carried `sent` messages: one ticket per message, in
/// order. A missing ticket reads as an error. An answer without `data` (e.g. `{errors:[...]}`) is
/// an error of the whole request.
pub fn parse_tickets(body: &str, sent: usize) -> Result<Vec<Ticket>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("Expo answer is not JSON: {e}"))?;
    let data = match v.get("data") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(format!("Expo answer has no data: {}", truncate(body, 300))),
    };
    Ok((0..sent)
        .map(|i| {
            data.get(i)
                .map(ticket_of)
                .unwrap_or_else(|| Ticket::Error { error: None, message: "no ticket for this message".to_string() })
        })
        .collect())
}

/// Expo's verdict on a delivered ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    Ok,
    Error { error: Option<String>, message: String },
}

/// The body of a `getReceipts` request.
pub fn encode_receipts_request(ids: &[String]) -> String {
    serde_json::json!({ "ids": ids }).to_string()
}

/// Reads `{data:{<id>:{status, message?, details?}}}`; ids that are not ready are absent.
pub fn parse_receipts(body: &str) -> Result<BTreeMap<String, Receipt>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("Expo receipts answer is not JSON: {e}"))?;
    let data = v
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("Expo receipts answer has no data: {}", truncate(body, 300)))?;
    Ok(data
        .iter()
        .map(|(id, r)| {
            let receipt = match r.get("status").and_then(Value::as_str) {
                Some("ok") => Receipt::Ok,
                _ => {
                    let (error, message) = error_of(r);
                    Receipt::Error { error, message }
                }
            };
            (id.clone(), receipt)
        })
        .collect())
}

/// What a pending receipt check leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptAction {
    /// Nothing more to do (delivered, or an error that is not about the token, logged).
    Done,
    /// `DeviceNotRegistered`: forget the token.
    DeleteToken,
    /// Not ready yet: ask again later.
    AskAgain,
}

/// `attempts` counts the checks made so far, this one included.
pub fn receipt_action(receipt: Option<&Receipt>, attempts: i64) -> ReceiptAction {
    match receipt {
        Some(Receipt::Ok) => ReceiptAction::Done,
        Some(Receipt::Error { error: Some(e), .. }) if e == DEVICE_NOT_REGISTERED => ReceiptAction::DeleteToken,
        Some(Receipt::Error { .. }) => ReceiptAction::Done,
        None if attempts < MAX_RECEIPT_ATTEMPTS => ReceiptAction::AskAgain,
        None => ReceiptAction::Done,
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(i: usize) -> PushMessage {
        PushMessage::new(
            &format!("ExponentPushToken[{i}]"),
            "Claw · Plans",
            "New message",
            &PushData::chat_message("sb", "C", "M"),
            3,
        )
    }

    #[test]
    fn message_shape() {
        let v = serde_json::to_value(msg(1)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "to": "ExponentPushToken[1]", "title": "Claw · Plans", "body": "New message",
                "data": {"type": "chat.message", "sandboxId": "sb", "conversationId": "C", "messageId": "M"},
                "sound": "default", "priority": "high", "badge": 3
            })
        );
    }

    #[test]
    fn chunking_and_gzip() {
        let msgs: Vec<PushMessage> = (0..250).map(msg).collect();
        let sizes: Vec<usize> = chunks(&msgs).map(<[PushMessage]>::len).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert_eq!(chunks(&msgs[..100]).count(), 1);
        assert_eq!(chunks::<PushMessage>(&[]).count(), 0);
        assert!(!should_gzip(1024));
        assert!(should_gzip(1025));
        assert!(!should_gzip(encode_request(&msgs[..1]).len()));
        assert!(should_gzip(encode_request(&msgs[..10]).len()));
    }

    #[test]
    fn retry_policy() {
        let b = Backoff::default();
        assert_eq!(b.next(1, Attempt::Status(200), 0, None), Next::Accept);
        for s in [400, 401, 403, 404, 413] {
            assert_eq!(b.next(1, Attempt::Status(s), 0, None), Next::GiveUp, "{s}");
        }
        for a in [Attempt::Status(429), Attempt::Status(500), Attempt::Status(503), Attempt::NetworkError] {
            assert!(matches!(b.next(1, a, 0, None), Next::Retry { .. }), "{a:?}");
            assert_eq!(b.next(b.max_attempts, a, 0, None), Next::GiveUp, "{a:?} bounded");
        }
        // Nominal delays 250, 500, 1000, 2000, 4000 (capped): jitter keeps each in [nominal/2, nominal].
        assert_eq!(b.delay_ms(0, 0, None), 125);
        assert_eq!(b.delay_ms(0, 125, None), 250);
        assert_eq!(b.delay_ms(3, 0, None), 1000);
        assert_eq!(b.delay_ms(30, 2_000, None), 4000);
        assert_eq!(b.delay_ms(0, 0, Some(3_000)), 3_000);
        assert_eq!(b.delay_ms(0, 0, Some(60_000)), 4_000);
        assert_eq!(parse_retry_after(" 2 "), Some(2000));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    proptest! {
        #[test]
        fn backoff_is_bounded_and_grows(retry in 0u32..64, random in any::<u64>()) {
            let b = Backoff::default();
            let d = b.delay_ms(retry, random, None);
            let nominal = (b.base_ms << retry.min(20)).min(b.max_delay_ms);
            prop_assert!(d >= nominal / 2 && d <= nominal);
            prop_assert!(d <= b.max_delay_ms);
        }

        #[test]
        fn a_400_is_never_retried(attempt in 1u32..10, random in any::<u64>()) {
            prop_assert_eq!(Backoff::default().next(attempt, Attempt::Status(400), random, Some(1)), Next::GiveUp);
        }
    }

    #[test]
    fn tickets() {
        let body = r#"{"data":[
            {"status":"ok","id":"T1"},
            {"status":"error","message":"\"ExponentPushToken[x]\" is not a registered push notification recipient","details":{"error":"DeviceNotRegistered"}},
            {"status":"error","message":"too big","details":{"error":"MessageTooBig"}}
        ]}"#;
        let t = parse_tickets(body, 4).unwrap();
        assert_eq!(t[0], Ticket::Ok { id: "T1".into() });
        assert!(t[1].device_not_registered());
        assert!(!t[2].device_not_registered() && !t[2].is_ok());
        assert!(matches!(&t[3], Ticket::Error { error: None, .. }), "missing ticket reads as an error");
        assert!(parse_tickets(r#"{"errors":[{"code":"PUSH_TOO_MANY_EXPERIENCE_IDS"}]}"#, 1).is_err());
        assert!(parse_tickets("<html>", 1).is_err());
        assert_eq!(parse_tickets(r#"{"data":{"status":"ok","id":"X"}}"#, 1).unwrap()[0], Ticket::Ok { id: "X".into() });
    }

    #[test]
    fn receipts() {
        let body = r#"{"data":{
            "A":{"status":"ok"},
            "B":{"status":"error","message":"gone","details":{"error":"DeviceNotRegistered"}},
            "C":{"status":"error","message":"slow down","details":{"error":"MessageRateExceeded"}}
        }}"#;
        let r = parse_receipts(body).unwrap();
        assert_eq!(receipt_action(r.get("A"), 1), ReceiptAction::Done);
        assert_eq!(receipt_action(r.get("B"), 1), ReceiptAction::DeleteToken);
        assert_eq!(receipt_action(r.get("C"), 1), ReceiptAction::Done);
        assert_eq!(receipt_action(r.get("D"), 1), ReceiptAction::AskAgain);
        assert_eq!(receipt_action(r.get("D"), MAX_RECEIPT_ATTEMPTS), ReceiptAction::Done);
        assert!(parse_receipts("{}").is_err());
        assert_eq!(encode_receipts_request(&["A".into(), "B".into()]), r#"{"ids":["A","B"]}"#);
    }
}
