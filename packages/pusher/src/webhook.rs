//! Webhooks: telling the app's backend what happened on its channels.
//!
//! The registry reports `WebhookEvent`s (channel occupied/vacated, member added/removed, client
//! events); a `WebhookQueue` batches them into Pusher's body `{"time_ms":…,"events":[…]}` signed with
//! `X-Pusher-Key` and `X-Pusher-Signature` = hex(HMAC-SHA256(secret, body)) — what pusher-http-node's
//! `pusher.webhook(req).isValid()` checks.
//!
//! Why a queue and not a request per event: a socket joining ten channels, or a room emptying at
//! once, would otherwise be ten subrequests from one Durable Object event. Events wait at most
//! `WEBHOOK_BATCH_WINDOW_MS` after the first, and at most `MAX_WEBHOOK_EVENTS_PER_BATCH` go in one
//! body. One batch is in flight at a time, so the backend sees events in order. A failed batch is
//! retried with jittered exponential backoff (the same body, so a backend that deduplicates by
//! body sees one event) up to `WEBHOOK_MAX_ATTEMPTS` times, then dropped and counted. The queue is
//! bounded (`MAX_WEBHOOK_QUEUE`): when full the oldest waiting event is dropped and counted —
//! webhooks are best effort, a slow backend must not grow the object's memory without bound.
//!
//! This queue is the decisions, in memory; `webhook_store::DurableWebhooks` keeps it in the object's
//! SQLite as well, so events waiting or a batch being retried outlive an eviction, a hibernation or
//! a crash. The shell sets its alarm to `next_due()`; time and random bits are arguments.

use crate::auth::{hmac_hex, App};
use crate::frame::push_json_string;
use crate::limits::{MAX_WEBHOOK_EVENTS_PER_BATCH, MAX_WEBHOOK_QUEUE, WEBHOOK_BATCH_WINDOW_MS, WEBHOOK_MAX_ATTEMPTS};
use std::collections::VecDeque;
use switchboard_core::backoff::{Backoff, BackoffPolicy};

/// Retries of a webhook batch: 1 s doubling to 60 s.
pub const WEBHOOK_RETRY: BackoffPolicy = BackoffPolicy { initial_ms: 1_000, cap_ms: 60_000, stable_ms: 0 };

/// Something webhook-worthy that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// The channel's first subscriber arrived.
    ChannelOccupied { channel: String },
    /// The channel's last subscriber left.
    ChannelVacated { channel: String },
    /// A user's first socket joined a presence channel.
    MemberAdded { channel: String, user_id: String },
    /// A user's last socket left a presence channel.
    MemberRemoved { channel: String, user_id: String },
    /// A client event was sent (`user_id` on presence channels).
    ClientEvent { channel: String, event: String, data: String, socket_id: String, user_id: Option<String> },
}

impl WebhookEvent {
    /// The event's JSON object as Pusher writes it.
    pub fn to_json(&self) -> String {
        let mut out = String::from(r#"{"name":"#);
        let (name, channel) = match self {
            WebhookEvent::ChannelOccupied { channel } => ("channel_occupied", channel),
            WebhookEvent::ChannelVacated { channel } => ("channel_vacated", channel),
            WebhookEvent::MemberAdded { channel, .. } => ("member_added", channel),
            WebhookEvent::MemberRemoved { channel, .. } => ("member_removed", channel),
            WebhookEvent::ClientEvent { channel, .. } => ("client_event", channel),
        };
        push_json_string(&mut out, name);
        out.push_str(r#","channel":"#);
        push_json_string(&mut out, channel);
        match self {
            WebhookEvent::MemberAdded { user_id, .. } | WebhookEvent::MemberRemoved { user_id, .. } => {
                out.push_str(r#","user_id":"#);
                push_json_string(&mut out, user_id);
            }
            WebhookEvent::ClientEvent { event, data, socket_id, user_id, .. } => {
                out.push_str(r#","event":"#);
                push_json_string(&mut out, event);
                out.push_str(r#","data":"#);
                push_json_string(&mut out, data);
                out.push_str(r#","socket_id":"#);
                push_json_string(&mut out, socket_id);
                if let Some(u) = user_id {
                    out.push_str(r#","user_id":"#);
                    push_json_string(&mut out, u);
                }
            }
            _ => {}
        }
        out.push('}');
        out
    }
}

/// One request to make: POST `body` with these headers to the app's webhook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    pub body: String,
    /// `Content-Type`, `X-Pusher-Key`, `X-Pusher-Signature`.
    pub headers: Vec<(&'static str, String)>,
    /// 1 for the first try.
    pub attempt: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub(crate) body: String,
    pub(crate) events: usize,
    pub(crate) attempts: u32,
    /// `None` while a request is in flight.
    pub(crate) due_ms: Option<u64>,
}

/// The batching, bounded, retrying webhook queue.
#[derive(Debug, Clone, Default)]
pub struct WebhookQueue {
    pub(crate) waiting: VecDeque<(u64, String)>,
    pub(crate) batch: Option<Batch>,
    dropped_overflow: u64,
    dropped_failed: u64,
    delivered: u64,
}

impl WebhookQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues an event that happened at `now_ms`.
    pub fn push(&mut self, event: &WebhookEvent, now_ms: u64) {
        self.push_json(event.to_json(), now_ms);
    }

    /// Queues an event already encoded (`WebhookEvent::to_json`).
    pub(crate) fn push_json(&mut self, json: String, now_ms: u64) {
        if self.waiting.len() >= MAX_WEBHOOK_QUEUE {
            self.waiting.pop_front();
            self.dropped_overflow += 1;
        }
        self.waiting.push_back((now_ms, json));
    }

    /// When `poll` next has something to send (for the alarm); `None` when idle or a request is in
    /// flight.
    pub fn next_due(&self) -> Option<u64> {
        match &self.batch {
            Some(b) => b.due_ms,
            None => self.waiting.front().map(|(t, _)| t.saturating_add(WEBHOOK_BATCH_WINDOW_MS)),
        }
    }

    /// The request to make now, if one is due. Until `sent` or `failed` is called, nothing else is.
    pub fn poll(&mut self, app: &App, now_ms: u64) -> Option<WebhookRequest> {
        if self.batch.is_none() {
            let due = self.waiting.front().map(|(t, _)| t.saturating_add(WEBHOOK_BATCH_WINDOW_MS))?;
            if now_ms < due {
                return None;
            }
            let n = self.waiting.len().min(MAX_WEBHOOK_EVENTS_PER_BATCH);
            let mut body = format!(r#"{{"time_ms":{now_ms},"events":["#);
            for (i, (_, e)) in self.waiting.drain(..n).enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&e);
            }
            body.push_str("]}");
            self.batch = Some(Batch { body, events: n, attempts: 0, due_ms: Some(now_ms) });
        }
        let batch = self.batch.as_mut()?;
        match batch.due_ms {
            Some(due) if now_ms >= due => {
                batch.due_ms = None;
                batch.attempts += 1;
                Some(WebhookRequest {
                    headers: vec![
                        ("Content-Type", "application/json".to_string()),
                        ("X-Pusher-Key", app.key.clone()),
                        ("X-Pusher-Signature", hmac_hex(&app.secret, batch.body.as_bytes())),
                    ],
                    body: batch.body.clone(),
                    attempt: batch.attempts,
                })
            }
            _ => None,
        }
    }

    /// The request in flight was answered 2xx.
    pub fn sent(&mut self) {
        if let Some(b) = self.batch.take() {
            self.delivered += b.events as u64;
        }
    }

    /// The request in flight failed at `now_ms` (error, timeout, non-2xx): retry later, or drop the
    /// batch after `WEBHOOK_MAX_ATTEMPTS`. `random` is any 64 random bits (retry jitter).
    pub fn failed(&mut self, now_ms: u64, random: u64) {
        let Some(b) = self.batch.as_mut() else { return };
        if b.attempts >= WEBHOOK_MAX_ATTEMPTS {
            self.dropped_failed += b.events as u64;
            self.batch = None;
            return;
        }
        let wait = Backoff::with_failures(WEBHOOK_RETRY, b.attempts.saturating_sub(1)).failed(now_ms, random);
        b.due_ms = Some(now_ms.saturating_add(wait));
    }

    /// Carries `other`'s counters over (a queue read back from storage after a failed write).
    pub(crate) fn keep_counters(&mut self, other: WebhookQueue) {
        self.dropped_overflow = other.dropped_overflow;
        self.dropped_failed = other.dropped_failed;
        self.delivered = other.delivered;
    }

    /// Events waiting (not counting a batch being sent or retried).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Events dropped because the queue was full.
    pub fn dropped_overflow(&self) -> u64 {
        self.dropped_overflow
    }

    /// Events dropped after their batch failed `WEBHOOK_MAX_ATTEMPTS` times.
    pub fn dropped_failed(&self) -> u64 {
        self.dropped_failed
    }

    /// Events whose batch was answered 2xx.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::auth::verify_hmac_hex;
    use proptest::prelude::*;

    pub(crate) fn app() -> App {
        App::new("1", "key", "secret")
    }

    pub(crate) fn occupied(c: &str) -> WebhookEvent {
        WebhookEvent::ChannelOccupied { channel: c.into() }
    }

    #[test]
    fn event_json() {
        assert_eq!(occupied("a").to_json(), r#"{"name":"channel_occupied","channel":"a"}"#);
        assert_eq!(
            WebhookEvent::ChannelVacated { channel: "a".into() }.to_json(),
            r#"{"name":"channel_vacated","channel":"a"}"#
        );
        assert_eq!(
            WebhookEvent::MemberAdded { channel: "presence-a".into(), user_id: "u".into() }.to_json(),
            r#"{"name":"member_added","channel":"presence-a","user_id":"u"}"#
        );
        assert_eq!(
            WebhookEvent::MemberRemoved { channel: "presence-a".into(), user_id: "u".into() }.to_json(),
            r#"{"name":"member_removed","channel":"presence-a","user_id":"u"}"#
        );
        assert_eq!(
            WebhookEvent::ClientEvent {
                channel: "presence-a".into(),
                event: "client-x".into(),
                data: r#"{"a":1}"#.into(),
                socket_id: "1.2".into(),
                user_id: Some("u".into())
            }
            .to_json(),
            r#"{"name":"client_event","channel":"presence-a","event":"client-x","data":"{\"a\":1}","socket_id":"1.2","user_id":"u"}"#
        );
    }

    #[test]
    fn batches_after_the_window_and_signs() {
        let mut q = WebhookQueue::new();
        assert_eq!(q.next_due(), None);
        q.push(&occupied("a"), 1_000);
        q.push(&occupied("b"), 1_500);
        assert_eq!(q.next_due(), Some(2_000));
        assert_eq!(q.poll(&app(), 1_999), None);
        let r = q.poll(&app(), 2_000).unwrap();
        assert_eq!(
            r.body,
            r#"{"time_ms":2000,"events":[{"name":"channel_occupied","channel":"a"},{"name":"channel_occupied","channel":"b"}]}"#
        );
        assert_eq!(r.attempt, 1);
        assert_eq!(r.headers[0], ("Content-Type", "application/json".to_string()));
        assert_eq!(r.headers[1], ("X-Pusher-Key", "key".to_string()));
        assert_eq!(r.headers[2].0, "X-Pusher-Signature");
        assert!(verify_hmac_hex("secret", r.body.as_bytes(), &r.headers[2].1));
        // in flight: nothing else, even when more arrive
        q.push(&occupied("c"), 2_100);
        assert_eq!(q.next_due(), None);
        assert_eq!(q.poll(&app(), 10_000), None);
        q.sent();
        assert_eq!(q.delivered(), 2);
        assert_eq!(q.next_due(), Some(3_100));
        let r = q.poll(&app(), 3_100).unwrap();
        assert!(r.body.contains(r#""channel":"c""#));
    }

    #[test]
    fn at_most_a_batch_per_request() {
        let mut q = WebhookQueue::new();
        for i in 0..(MAX_WEBHOOK_EVENTS_PER_BATCH + 5) {
            q.push(&occupied(&format!("c{i}")), 0);
        }
        let r = q.poll(&app(), 1_000).unwrap();
        assert_eq!(r.body.matches("channel_occupied").count(), MAX_WEBHOOK_EVENTS_PER_BATCH);
        q.sent();
        assert_eq!(q.waiting(), 5);
        // the rest were due long ago
        assert!(q.poll(&app(), 1_000).is_some());
    }

    #[test]
    fn retries_with_backoff_then_drops() {
        let mut q = WebhookQueue::new();
        q.push(&occupied("a"), 0);
        let first = q.poll(&app(), 1_000).unwrap();
        let mut now = 1_000;
        let mut waits = Vec::new();
        for attempt in 2..=WEBHOOK_MAX_ATTEMPTS {
            q.failed(now, u64::MAX);
            let due = q.next_due().unwrap();
            waits.push(due - now);
            assert_eq!(q.poll(&app(), due - 1), None);
            let r = q.poll(&app(), due).unwrap();
            assert_eq!(r.attempt, attempt);
            assert_eq!(r.body, first.body, "a retry sends the same body");
            now = due;
        }
        // each wait is within [ceiling/2, ceiling] of 1 s, 2 s, 4 s, ...
        for (i, w) in waits.iter().enumerate() {
            let ceiling = (1_000u64 << i).min(60_000);
            assert!(*w >= ceiling / 2 && *w <= ceiling, "wait {i}: {w}");
        }
        q.failed(now, 0);
        assert_eq!(q.dropped_failed(), 1);
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let mut q = WebhookQueue::new();
        for i in 0..(MAX_WEBHOOK_QUEUE + 3) {
            q.push(&occupied(&format!("c{i}")), i as u64);
        }
        assert_eq!(q.waiting(), MAX_WEBHOOK_QUEUE);
        assert_eq!(q.dropped_overflow(), 3);
        let r = q.poll(&app(), 1_000_000).unwrap();
        assert!(r.body.contains(r#""channel":"c3""#));
        assert!(!r.body.contains(r#""channel":"c2""#));
    }

    proptest! {
        #[test]
        fn every_event_is_delivered_or_counted(ops in proptest::collection::vec((0u8..4, 0u64..3_000, any::<u64>()), 0..300)) {
            let mut q = WebhookQueue::new();
            let mut now = 0u64;
            let mut pushed = 0u64;
            let mut in_flight = false;
            for (op, dt, r) in ops {
                now += dt;
                match op {
                    0 | 1 => { q.push(&occupied("a"), now); pushed += 1; }
                    2 => if !in_flight { in_flight = q.poll(&app(), now).is_some(); },
                    _ => if in_flight { if r % 2 == 0 { q.sent() } else { q.failed(now, r) }; in_flight = false; },
                }
            }
            let in_batch = q.batch.as_ref().map_or(0, |b| b.events as u64);
            prop_assert_eq!(q.delivered() + q.dropped_failed() + q.dropped_overflow() + q.waiting() as u64 + in_batch, pushed);
            prop_assert!(q.waiting() <= MAX_WEBHOOK_QUEUE);
        }
    }
}
