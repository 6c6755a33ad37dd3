//! The webhook queue kept in the object's SQLite: `WebhookQueue` decides (batching, order, retries,
//! bounds) and `DurableWebhooks` writes each of its steps through, so what waits outlives the
//! object's memory: an eviction or hibernation while a batch waits for its retry, a deploy, a crash.
//!
//! - `webhook_events`: events not yet in a batch, oldest first (at most `MAX_WEBHOOK_QUEUE`: the
//!   oldest row goes with the oldest event when the queue is full).
//! - `webhook_batch`: the one batch being sent or retried (its body as first made, so a retry
//!   sends the same bytes), its attempts and when it is due; `due_ms` NULL while in flight.
//!
//! Forming a batch moves its events from the first table to the second in one transaction. A batch
//! found in flight when the queue is loaded (the object ended during its request) is due at once:
//! the backend may then see that body twice (at least once, as with any retry; the body is the
//! same). The counters (`delivered`, `dropped_*`) stay per instance. The stored queue is the truth:
//! after a failed write, memory is read back from it (`resync`), and the error goes to the shell,
//! which logs it and tries again from the alarm.

use crate::auth::App;
use crate::limits::MAX_WEBHOOK_QUEUE;
use crate::webhook::{Batch, WebhookEvent, WebhookQueue, WebhookRequest};
use serde::Deserialize;
use std::collections::VecDeque;
use switchboard_core::store::{atomically, Arg, Store, StoreError, StoreExt};
use switchboard_core::ApiError;

/// The two tables (created on first load; nothing else uses them).
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS webhook_events (
  seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_batch (
  id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL, events INTEGER NOT NULL,
  attempts INTEGER NOT NULL, due_ms INTEGER);";

/// A `WebhookQueue` whose every step is also written to a [`Store`].
#[derive(Debug, Default)]
pub struct DurableWebhooks {
    queue: WebhookQueue,
    /// The row of each waiting event, in the queue's order.
    seqs: VecDeque<i64>,
}

fn int(n: u64) -> Arg {
    Arg::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn ms(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl DurableWebhooks {
    /// The queue as stored (tables created when missing); a batch that was in flight is due at
    /// `now_ms`.
    pub fn load(store: &dyn Store, now_ms: u64) -> Result<Self, StoreError> {
        store.run(SCHEMA, &[])?;
        #[derive(Deserialize)]
        struct EventRow {
            seq: i64,
            at_ms: i64,
            event: String,
        }
        #[derive(Deserialize)]
        struct BatchRow {
            body: String,
            events: i64,
            attempts: i64,
            due_ms: Option<i64>,
        }
        let events: Vec<EventRow> = store.rows(
            "SELECT seq, at_ms, event FROM webhook_events ORDER BY seq LIMIT ?",
            &[int(MAX_WEBHOOK_QUEUE as u64)],
        )?;
        let batch: Option<BatchRow> =
            store.first("SELECT body, events, attempts, due_ms FROM webhook_batch WHERE id = 1", &[])?;
        let mut me = DurableWebhooks::default();
        for e in events {
            me.queue.waiting.push_back((ms(e.at_ms), e.event));
            me.seqs.push_back(e.seq);
        }
        me.queue.batch = batch.map(|b| Batch {
            body: b.body,
            events: usize::try_from(b.events).unwrap_or(0),
            attempts: u32::try_from(b.attempts).unwrap_or(u32::MAX),
            due_ms: Some(b.due_ms.map_or(now_ms, ms)),
        });
        Ok(me)
    }

    /// Queues an event that happened at `now_ms` (the oldest waiting one goes when full).
    pub fn push(&mut self, store: &dyn Store, event: &WebhookEvent, now_ms: u64) -> Result<(), ApiError> {
        let json = event.to_json();
        let seq = atomically(store, || {
            if self.seqs.len() >= MAX_WEBHOOK_QUEUE {
                if let Some(oldest) = self.seqs.front() {
                    store.run("DELETE FROM webhook_events WHERE seq = ?", &[Arg::Int(*oldest)])?;
                }
            }
            store
                .run("INSERT INTO webhook_events (at_ms, event) VALUES (?, ?)", &[int(now_ms), json.as_str().into()])?;
            Ok(store.scalar("SELECT last_insert_rowid() AS v", &[])?.unwrap_or(0))
        })?;
        if self.seqs.len() >= MAX_WEBHOOK_QUEUE {
            self.seqs.pop_front();
        }
        self.queue.push_json(json, now_ms);
        self.seqs.push_back(seq);
        Ok(())
    }

    /// When `poll` next has something to send (for the alarm).
    pub fn next_due(&self) -> Option<u64> {
        self.queue.next_due()
    }

    /// The request to make now, if one is due; the batch is stored as in flight before it is
    /// answered. When the storage fails, the queue is what is stored (see [`Self::resync`]).
    pub fn poll(&mut self, store: &dyn Store, app: &App, now_ms: u64) -> Result<Option<WebhookRequest>, ApiError> {
        let formed = self.queue.batch.is_none();
        let Some(request) = self.queue.poll(app, now_ms) else { return Ok(None) };
        let Some(batch) = self.queue.batch.as_ref() else { return Ok(None) };
        let taken = if formed { batch.events } else { 0 };
        let written = atomically(store, || {
            if let Some(last) = taken.checked_sub(1).and_then(|i| self.seqs.get(i)) {
                store.run("DELETE FROM webhook_events WHERE seq <= ?", &[Arg::Int(*last)])?;
            }
            store.run(
                "INSERT OR REPLACE INTO webhook_batch (id, body, events, attempts, due_ms) VALUES (1, ?, ?, ?, NULL)",
                &[batch.body.as_str().into(), int(batch.events as u64), int(u64::from(batch.attempts))],
            )?;
            Ok(())
        });
        match written {
            Ok(()) => {
                self.seqs.drain(..taken);
                Ok(Some(request))
            }
            Err(e) => Err(self.resync(store, now_ms, e)),
        }
    }

    /// The request in flight was answered 2xx.
    pub fn sent(&mut self, store: &dyn Store, now_ms: u64) -> Result<(), ApiError> {
        self.queue.sent();
        match store.run("DELETE FROM webhook_batch", &[]) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.resync(store, now_ms, e.into())),
        }
    }

    /// The request in flight failed at `now_ms`: stored due for its retry, or gone after the
    /// last attempt. `random`: 64 random bits (the retry's jitter).
    pub fn failed(&mut self, store: &dyn Store, now_ms: u64, random: u64) -> Result<(), ApiError> {
        self.queue.failed(now_ms, random);
        let written = match self.queue.batch.as_ref() {
            Some(b) => store.run(
                "UPDATE webhook_batch SET attempts = ?, due_ms = ? WHERE id = 1",
                &[int(u64::from(b.attempts)), b.due_ms.map(int).unwrap_or(Arg::Null)],
            ),
            None => store.run("DELETE FROM webhook_batch", &[]),
        };
        match written {
            Ok(_) => Ok(()),
            Err(e) => Err(self.resync(store, now_ms, e.into())),
        }
    }

    /// After a failed write: the stored queue is the truth, so memory is read back from it (a batch
    /// stored in flight is then due at once: sent again rather than lost); if that read fails
    /// too, memory stays as it is. Answers `error`.
    fn resync(&mut self, store: &dyn Store, now_ms: u64, error: ApiError) -> ApiError {
        if let Ok(stored) = DurableWebhooks::load(store, now_ms) {
            let counters = std::mem::take(&mut self.queue);
            *self = stored;
            self.queue.keep_counters(counters);
        }
        error
    }

    /// The decisions and counters (events waiting, delivered, dropped).
    pub fn queue(&self) -> &WebhookQueue {
        &self.queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{MAX_WEBHOOK_EVENTS_PER_BATCH, WEBHOOK_MAX_ATTEMPTS};
    use crate::webhook::tests::{app, occupied};
    use switchboard_sqlite_store::{FailingStore, SqliteStore};

    fn channels(body: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["events"].as_array().unwrap().iter().map(|e| e["channel"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn waiting_events_outlive_the_object() {
        let store = SqliteStore::new();
        let mut q = DurableWebhooks::load(&store, 0).unwrap();
        q.push(&store, &occupied("a"), 1_000).unwrap();
        q.push(&store, &occupied("b"), 1_200).unwrap();
        drop(q); // evicted, hibernated or crashed: memory gone
        let mut q = DurableWebhooks::load(&store, 5_000).unwrap();
        assert_eq!(q.next_due(), Some(2_000), "due as before: the first event's time + the window");
        let r = q.poll(&store, &app(), 5_000).unwrap().unwrap();
        assert_eq!(channels(&r.body), ["a", "b"]);
        assert_eq!(r.attempt, 1);
        q.sent(&store, 0).unwrap();
        let q = DurableWebhooks::load(&store, 6_000).unwrap();
        assert_eq!(q.next_due(), None, "delivered: nothing left stored");
        assert_eq!(q.queue().waiting(), 0);
    }

    #[test]
    fn a_batch_in_flight_or_waiting_for_its_retry_is_sent_again_with_the_same_body() {
        let store = SqliteStore::new();
        let mut q = DurableWebhooks::load(&store, 0).unwrap();
        q.push(&store, &occupied("a"), 0).unwrap();
        let first = q.poll(&store, &app(), 1_000).unwrap().unwrap();
        // arrives while the batch is in flight
        q.push(&store, &occupied("b"), 1_100).unwrap();
        // ended during the request: the batch is due at once after the restart, same body, next attempt
        let mut q = DurableWebhooks::load(&store, 3_000).unwrap();
        assert_eq!(q.next_due(), Some(3_000));
        let again = q.poll(&store, &app(), 3_000).unwrap().unwrap();
        assert_eq!(again.body, first.body);
        assert_eq!(again.attempt, 2);
        // it fails; ended while waiting for the retry: the retry keeps its time and count
        q.failed(&store, 3_100, u64::MAX).unwrap();
        let due = q.next_due().unwrap();
        assert!(due > 3_100);
        let mut q = DurableWebhooks::load(&store, 3_200).unwrap();
        assert_eq!(q.next_due(), Some(due));
        assert_eq!(q.poll(&store, &app(), due - 1).unwrap(), None);
        let third = q.poll(&store, &app(), due).unwrap().unwrap();
        assert_eq!((third.body.as_str(), third.attempt), (first.body.as_str(), 3));
        q.sent(&store, 0).unwrap();
        // then the event that came meanwhile, in order
        let r = q.poll(&store, &app(), due + 5_000).unwrap().unwrap();
        assert_eq!(channels(&r.body), ["b"]);
    }

    #[test]
    fn the_last_failure_drops_the_batch_from_storage_too() {
        let store = SqliteStore::new();
        let mut q = DurableWebhooks::load(&store, 0).unwrap();
        q.push(&store, &occupied("a"), 0).unwrap();
        let mut now = 1_000;
        for _ in 0..WEBHOOK_MAX_ATTEMPTS {
            assert!(q.poll(&store, &app(), now).unwrap().is_some());
            q.failed(&store, now, 0).unwrap();
            now = q.next_due().unwrap_or(now);
        }
        assert_eq!(q.queue().dropped_failed(), 1);
        let q = DurableWebhooks::load(&store, now).unwrap();
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn bounded_in_storage_as_in_memory() {
        let store = SqliteStore::new();
        let mut q = DurableWebhooks::load(&store, 0).unwrap();
        for i in 0..(MAX_WEBHOOK_QUEUE + 3) {
            q.push(&store, &occupied(&format!("c{i}")), i as u64).unwrap();
        }
        assert_eq!(q.queue().dropped_overflow(), 3);
        let n = store.scalar("SELECT COUNT(*) AS v FROM webhook_events", &[]).unwrap();
        assert_eq!(n, Some(MAX_WEBHOOK_QUEUE as i64));
        let mut q = DurableWebhooks::load(&store, 10_000_000).unwrap();
        assert_eq!(q.queue().waiting(), MAX_WEBHOOK_QUEUE);
        let r = q.poll(&store, &app(), 10_000_000).unwrap().unwrap();
        let got = channels(&r.body);
        assert_eq!(got.len(), MAX_WEBHOOK_EVENTS_PER_BATCH);
        assert_eq!(got[0], "c3", "the three oldest went");
        let n = store.scalar("SELECT COUNT(*) AS v FROM webhook_events", &[]).unwrap();
        assert_eq!(
            n,
            Some((MAX_WEBHOOK_QUEUE - MAX_WEBHOOK_EVENTS_PER_BATCH) as i64),
            "the batch's events left the table"
        );
    }

    #[test]
    fn a_storage_failure_changes_nothing() {
        let store = FailingStore::new();
        let mut q = DurableWebhooks::load(&store, 0).unwrap();
        q.push(&store, &occupied("a"), 0).unwrap();
        // each statement of a push, failing in turn: neither memory nor storage keeps the event
        for n in 1..=2 {
            store.fail_in(n);
            assert!(q.push(&store, &occupied("b"), 10).is_err(), "statement {n}");
            store.healthy();
            assert_eq!(q.queue().waiting(), 1, "statement {n}: the failed push is not in memory");
            assert_eq!(DurableWebhooks::load(&store, 0).unwrap().queue().waiting(), 1, "statement {n}: nor stored");
        }
        // each statement of forming a batch, failing in turn: the event still waits, in both
        for n in 1..=2 {
            store.fail_in(n);
            assert!(q.poll(&store, &app(), 5_000).is_err(), "statement {n}");
            store.healthy();
            assert_eq!(q.queue().waiting(), 1, "statement {n}");
            let stored = DurableWebhooks::load(&store, 5_000).unwrap();
            assert_eq!((stored.queue().waiting(), stored.next_due()), (1, Some(1_000)), "statement {n}");
        }
        let r = q.poll(&store, &app(), 5_000).unwrap().unwrap();
        assert_eq!(channels(&r.body), ["a"]);
        let stored = DurableWebhooks::load(&store, 6_000).unwrap();
        assert_eq!(stored.queue().waiting(), 0);
        assert_eq!(stored.next_due(), Some(6_000), "stored in flight: due at once after a restart");
        // the outcome not stored: memory is read back, and the batch, not known to be settled, is due
        store.fail_in(1);
        assert!(q.sent(&store, 7_000).is_err());
        store.healthy();
        assert_eq!(q.next_due(), Some(7_000), "not known to be delivered: sent again");
        let again = q.poll(&store, &app(), 7_000).unwrap().unwrap();
        assert_eq!((again.body.as_str(), again.attempt), (r.body.as_str(), 2));
        store.fail_in(1);
        assert!(q.failed(&store, 8_000, 0).is_err());
        store.healthy();
        assert_eq!(q.next_due(), Some(8_000));
        assert_eq!(q.poll(&store, &app(), 8_000).unwrap().unwrap().attempt, 3);
        q.sent(&store, 8_100).unwrap();
        assert_eq!(DurableWebhooks::load(&store, 9_000).unwrap().next_due(), None);
    }
}
