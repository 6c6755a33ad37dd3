//! Sending to Kick: the body of `POST {KICK_API_URL}/public/v1/chat`, which messages may go, and what to do when
//! Kick says no.
//!
//! Only messages written in Switchboard go out: one that came from a bridge (`source::is_bridged`) is never sent
//! back, or two bridged rooms would echo each other forever.
//!
//! Kick's bot protection has been seen answering server-side calls with 403, and its API rate-limits with 429. A
//! sender that retries those in a loop turns one refusal into a storm (the complaint of every chat bridge's users).
//! So a refused message is not retried: the refusal is recorded with its reason, and every send is held back until a
//! jittered exponential wait (`switchboard_core::backoff`, bridge policy; at least Kick's `Retry-After`) has passed.
//! A message the API rejects as such (400, 422) is dropped without backing off: it is the message, not the bridge.

use crate::lenient;
use crate::limits::{KICK_MAX_MESSAGE_CHARS, KICK_MAX_RETRY_AFTER_MS, MAX_REFUSAL_REASON_CHARS};
use crate::nick::NickFormat;
use crate::source::Outbound;
use serde_json::{json, Value};
use switchboard_core::backoff::{Backoff, BackoffPolicy};

const CHAT_PATH: &str = "/public/v1/chat";

/// `{api_base}/public/v1/chat`, whether or not the base ends with `/`.
pub fn chat_url(api_base: &str) -> String {
    format!("{}{CHAT_PATH}", api_base.trim_end_matches('/'))
}

/// Why a message is not sent to Kick at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// It came from a bridge.
    Bridged,
    /// Its text is empty.
    Empty,
}

/// The JSON body for Kick, `{"content": …, "type": "bot"}`, with the text written through `format` and cut to
/// `KICK_MAX_MESSAGE_CHARS`.
pub fn chat_body(format: &NickFormat, message: &Outbound<'_>) -> Result<String, Skip> {
    Ok(chat_json(&chat_text(format, message)?))
}

/// The request body that posts `text` as the bot.
pub fn chat_json(text: &str) -> String {
    json!({"content": text, "type": "bot"}).to_string()
}

/// The text [`chat_body`] posts: what the room shows, and what comes back through the bridge's
/// own subscription (`crate::echo::EchoFilter` drops it).
pub fn chat_text(format: &NickFormat, message: &Outbound<'_>) -> Result<String, Skip> {
    if message.is_bridged() {
        return Err(Skip::Bridged);
    }
    if message.text.trim().is_empty() {
        return Err(Skip::Empty);
    }
    Ok(format.render(message.sender_name, message.text, KICK_MAX_MESSAGE_CHARS))
}

/// Why Kick refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// 401: the token is missing, expired or revoked.
    Unauthorized,
    /// 403: no `chat:write` scope, or bot protection.
    Forbidden,
    /// 429.
    RateLimited,
    /// 5xx, or an answer we cannot read.
    ServerError,
    /// The request did not get an answer.
    Network,
}

impl RefusalReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Unauthorized => "unauthorized",
            RefusalReason::Forbidden => "forbidden",
            RefusalReason::RateLimited => "rate_limited",
            RefusalReason::ServerError => "server_error",
            RefusalReason::Network => "network",
        }
    }
}

/// A recorded refusal: what happened, when, and until when sends are held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: RefusalReason,
    pub status: Option<u16>,
    /// Kick's `message`, if it wrote one, cut to `MAX_REFUSAL_REASON_CHARS`.
    pub detail: Option<String>,
    pub at_ms: u64,
    pub retry_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent; Kick's id for it, when it answered one.
    Sent { message_id: Option<String> },
    /// The message itself was refused (4xx other than 401/403/429, or `is_sent: false`); drop it, keep sending.
    Rejected { status: u16, detail: Option<String> },
    /// Kick refused the bridge: drop the message; sends are held back until `retry_at_ms`.
    Refused(Refusal),
}

/// The outbound refusal policy of one Kick bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KickSender {
    backoff: Backoff,
    last_refusal: Option<Refusal>,
}

impl Default for KickSender {
    fn default() -> Self {
        Self::new()
    }
}

impl KickSender {
    pub fn new() -> Self {
        KickSender { backoff: Backoff::new(BackoffPolicy::BRIDGE), last_refusal: None }
    }

    /// Whether a send may be attempted at `now_ms`; if not, the refusal that holds it back (drop the message).
    pub fn check(&self, now_ms: u64) -> Result<(), &Refusal> {
        match &self.last_refusal {
            Some(r) if now_ms < r.retry_at_ms => Err(r),
            _ => Ok(()),
        }
    }

    /// The last refusal, even if its wait is over (for the bridge's status).
    pub fn last_refusal(&self) -> Option<&Refusal> {
        self.last_refusal.as_ref()
    }

    /// Consecutive refusals so far (to store with the bridge).
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// Kick answered `status` with `body`; `retry_after_secs` is its `Retry-After` header, if any. `random` is any
    /// 64 random bits.
    pub fn on_answer(
        &mut self,
        now_ms: u64,
        random: u64,
        status: u16,
        body: &str,
        retry_after_secs: Option<u64>,
    ) -> Outcome {
        let answer: Option<Value> = serde_json::from_str(body).ok();
        let detail = answer.as_ref().and_then(|a| lenient::text(a.get("message"), MAX_REFUSAL_REASON_CHARS));
        let reason = match status {
            200..=299 => {
                // `{data: {is_sent, message_id}}`, or the same fields at the top.
                let data = answer.as_ref().map(|a| a.get("data").filter(|d| d.is_object()).unwrap_or(a));
                let is_sent = data.and_then(|d| lenient::boolean(d.get("is_sent"))).unwrap_or(true);
                if !is_sent {
                    return Outcome::Rejected { status, detail };
                }
                self.backoff = Backoff::new(BackoffPolicy::BRIDGE);
                let message_id = data.and_then(|d| lenient::id(d.get("message_id"), MAX_REFUSAL_REASON_CHARS));
                return Outcome::Sent { message_id };
            }
            401 => RefusalReason::Unauthorized,
            403 => RefusalReason::Forbidden,
            429 => RefusalReason::RateLimited,
            400..=499 => return Outcome::Rejected { status, detail },
            _ => RefusalReason::ServerError,
        };
        Outcome::Refused(self.refuse(now_ms, random, reason, Some(status), detail, retry_after_secs))
    }

    /// The request got no answer (a network error or a timeout).
    pub fn on_network_error(&mut self, now_ms: u64, random: u64) -> Outcome {
        Outcome::Refused(self.refuse(now_ms, random, RefusalReason::Network, None, None, None))
    }

    fn refuse(
        &mut self,
        now_ms: u64,
        random: u64,
        reason: RefusalReason,
        status: Option<u16>,
        detail: Option<String>,
        retry_after_secs: Option<u64>,
    ) -> Refusal {
        let wait = self.backoff.failed(now_ms, random);
        let asked = retry_after_secs.map_or(0, |s| s.saturating_mul(1000).min(KICK_MAX_RETRY_AFTER_MS));
        let refusal =
            Refusal { reason, status, detail, at_ms: now_ms, retry_at_ms: now_ms.saturating_add(wait.max(asked)) };
        self.last_refusal = Some(refusal.clone());
        refusal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out<'a>(sender_id: &'a str, source: Option<&'a Value>, sender_name: &'a str, text: &'a str) -> Outbound<'a> {
        Outbound { local_id: "l", sender_id, source, sender_name, text }
    }

    #[test]
    fn url_and_body() {
        assert_eq!(chat_url("https://api.kick.com/"), "https://api.kick.com/public/v1/chat");
        assert_eq!(chat_url("http://127.0.0.1:9"), "http://127.0.0.1:9/public/v1/chat");
        let f = NickFormat::default();
        assert_eq!(
            chat_body(&f, &out("alice", None, "Alice", " hi ")),
            Ok(r#"{"content":"<Alice> hi","type":"bot"}"#.into())
        );
        let body: Value =
            serde_json::from_str(&chat_body(&f, &out("alice", None, "A", &"x".repeat(600))).unwrap()).unwrap();
        assert_eq!(body["content"].as_str().unwrap().chars().count(), KICK_MAX_MESSAGE_CHARS);
    }

    #[test]
    fn bridged_and_empty_messages_never_go_out() {
        let f = NickFormat::default();
        assert_eq!(chat_body(&f, &out("kick:1", None, "x", "hi")), Err(Skip::Bridged));
        assert_eq!(chat_body(&f, &out("kosmi:1", None, "x", "hi")), Err(Skip::Bridged));
        assert_eq!(chat_body(&f, &out("alice", Some(&json!({"platform": "kosmi"})), "x", "hi")), Err(Skip::Bridged));
        assert_eq!(chat_body(&f, &out("alice", None, "x", "  ")), Err(Skip::Empty));
    }

    #[test]
    fn a_success_answers_the_kick_id() {
        let mut s = KickSender::new();
        let ok = s.on_answer(0, 0, 200, r#"{"data":{"is_sent":true,"message_id":"abc"},"message":"OK"}"#, None);
        assert_eq!(ok, Outcome::Sent { message_id: Some("abc".into()) });
        assert_eq!(s.on_answer(0, 0, 204, "", None), Outcome::Sent { message_id: None });
        assert_eq!(
            s.on_answer(0, 0, 200, r#"{"data":{"is_sent":false},"message":"slow mode"}"#, None),
            Outcome::Rejected { status: 200, detail: Some("slow mode".into()) }
        );
        assert_eq!(s.check(0), Ok(()));
    }

    #[test]
    fn refusals_are_recorded_and_hold_sends_back_with_a_growing_wait() {
        let mut s = KickSender::new();
        // random = 0 picks the bottom of each [d/2, d] window: 500, 1000, 2000 ms.
        let r = match s.on_answer(10_000, 0, 403, r#"{"message":"Request blocked"}"#, None) {
            Outcome::Refused(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            r,
            Refusal {
                reason: RefusalReason::Forbidden,
                status: Some(403),
                detail: Some("Request blocked".into()),
                at_ms: 10_000,
                retry_at_ms: 10_500
            }
        );
        assert_eq!(s.check(10_499).map_err(|r| r.reason), Err(RefusalReason::Forbidden));
        assert_eq!(s.check(10_500), Ok(()));
        let r2 = s.on_answer(10_500, 0, 401, "not json", None);
        assert!(matches!(
            r2,
            Outcome::Refused(Refusal { reason: RefusalReason::Unauthorized, retry_at_ms: 11_500, detail: None, .. })
        ));
        let r3 = s.on_network_error(11_500, 0);
        assert!(matches!(
            r3,
            Outcome::Refused(Refusal { reason: RefusalReason::Network, retry_at_ms: 13_500, status: None, .. })
        ));
        assert_eq!(s.failures(), 3);
        // A success starts the count afresh.
        assert!(matches!(s.on_answer(13_500, 0, 200, "{}", None), Outcome::Sent { .. }));
        assert_eq!(s.failures(), 0);
        assert_eq!(s.last_refusal().map(|r| r.reason), Some(RefusalReason::Network));
        assert_eq!(s.check(13_500), Ok(()));
    }

    #[test]
    fn rate_limits_wait_at_least_retry_after_but_bounded() {
        let mut s = KickSender::new();
        let r = s.on_answer(0, 0, 429, "", Some(30));
        assert!(matches!(r, Outcome::Refused(Refusal { reason: RefusalReason::RateLimited, retry_at_ms: 30_000, .. })));
        let r = s.on_answer(0, 0, 429, "", Some(u64::MAX));
        assert!(matches!(r, Outcome::Refused(Refusal { retry_at_ms: KICK_MAX_RETRY_AFTER_MS, .. })));
        let r = s.on_answer(0, 0, 503, "", None);
        assert!(matches!(r, Outcome::Refused(Refusal { reason: RefusalReason::ServerError, retry_at_ms: 2_000, .. })));
    }

    #[test]
    fn a_bad_message_is_rejected_without_backing_off() {
        let mut s = KickSender::new();
        assert_eq!(
            s.on_answer(0, 0, 422, r#"{"message":"content too long"}"#, None),
            Outcome::Rejected { status: 422, detail: Some("content too long".into()) }
        );
        assert_eq!(s.failures(), 0);
        assert_eq!(s.check(0), Ok(()));
    }
}
