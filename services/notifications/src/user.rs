//! `UserNotifications`: one Durable Object per user (named by the user id).
//!
//! It holds, in its SQLite database, the user's idempotency records, badge buckets and total, and
//! the Expo tickets whose receipts are still to be checked; its one alarm removes expired records
//! and checks receipts that came due.
//!
//! Invariants:
//! - a claim reads its record, decides (`ledger::claim`) and writes the record and then the badge
//!   with no `.await` in between, so a concurrent replay sees `pending` and answers `duplicate`;
//! - the alarm is set only when none is set or when it is needed sooner, never later
//!   (`switchboard_notify_core::alarm`); when it fires it deletes what expired and re-arms at the
//!   earliest remaining expiry or receipt.

use crate::config;
use crate::expo;
use crate::http::{error_response, internal, json};
use crate::platform;
use crate::rpc::{BadgesAnswer, BucketCount, ClaimAnswer, ClearAnswer, PendingReceipt, UserCommand};
use crate::store;
use serde::Deserialize;
use serde_json::json;
use switchboard_core::ApiError;
use switchboard_notify_core::alarm;
use switchboard_notify_core::badges::{self, Counts};
use switchboard_notify_core::config::PENDING_LEASE_MS;
use switchboard_notify_core::expo::{receipt_action, ReceiptAction, MAX_RECEIPT_ATTEMPTS};
use switchboard_notify_core::ledger::{self, Claim, Record, Status, Suppression, Timing};
use switchboard_worker_kit::alarm::AlarmSlot;
use worker::{durable_object, wasm_bindgen, DurableObject, Env, Request, Response, SqlStorage, SqlStorageValue, State};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
  key TEXT PRIMARY KEY, status TEXT NOT NULL, counted INTEGER NOT NULL, bucket TEXT NOT NULL,
  expires_at INTEGER NOT NULL, lease_until INTEGER NOT NULL, deadline INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS records_deadline ON records (deadline);
CREATE TABLE IF NOT EXISTS badges (bucket TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS badge_total (id INTEGER PRIMARY KEY CHECK (id = 1), total INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (
  ticket_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, token TEXT NOT NULL,
  due_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS receipts_due ON receipts (due_at);
";

#[derive(Debug, Deserialize)]
struct RecordRow {
    key: String,
    status: String,
    counted: i64,
    bucket: String,
    expires_at: i64,
    lease_until: i64,
}

impl RecordRow {
    fn record(&self) -> Record {
        // An unreadable status is treated as a failed attempt: retried, never counted twice.
        let status = Status::parse(&self.status).unwrap_or(Status::Failed);
        Record { status, counted: self.counted != 0, expires_at: self.expires_at, lease_until: self.lease_until }
    }
}

#[derive(Debug, Deserialize)]
struct ReceiptRow {
    ticket_id: String,
    user_id: String,
    token: String,
    due_at: i64,
    attempts: i64,
}

#[derive(Debug, Deserialize)]
struct Scalar {
    v: Option<i64>,
}

fn sql_err(e: worker::Error) -> ApiError {
    internal("user object sql", e)
}

#[durable_object]
pub struct UserNotifications {
    state: State,
    env: Env,
    sql: SqlStorage,
    /// The alarm time we last set or read; `None` = unknown or none.
    alarm: AlarmSlot,
}

impl DurableObject for UserNotifications {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(SCHEMA, None) {
            worker::console_error!("user notifications schema: {e}");
        }
        UserNotifications { state, env, sql, alarm: AlarmSlot::new() }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match req.text().await {
            Ok(body) => match serde_json::from_str::<UserCommand>(&body) {
                Ok(cmd) => self.run(cmd).await,
                Err(e) => Err(internal("decode user command", e)),
            },
            Err(e) => Err(internal("read user command", e)),
        };
        match result {
            Ok(r) => Ok(r),
            Err(e) => error_response(&e),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        self.run_alarm().await;
        Response::ok("ok")
    }
}

impl UserNotifications {
    fn exec(&self, q: &str, b: Vec<SqlStorageValue>) -> Result<(), ApiError> {
        self.sql.exec(q, b).map(|_| ()).map_err(sql_err)
    }

    fn query<T: for<'de> Deserialize<'de>>(&self, q: &str, b: Vec<SqlStorageValue>) -> Result<Vec<T>, ApiError> {
        self.sql.exec(q, b).and_then(|c| c.to_array()).map_err(sql_err)
    }

    fn scalar(&self, q: &str) -> Result<Option<i64>, ApiError> {
        let rows: Vec<Scalar> = self.query(q, vec![])?;
        Ok(rows.into_iter().next().and_then(|r| r.v))
    }

    async fn run(&self, cmd: UserCommand) -> Result<Response, ApiError> {
        match cmd {
            UserCommand::Claim { user_id: _, key, bucket, suppression } => {
                let (answer, deadline) = self.claim(&key, &bucket, suppression)?;
                if let Some(at) = deadline {
                    self.ensure_alarm(at).await;
                }
                json(200, &answer)
            }
            UserCommand::Settle { user_id, key, lease, delivered, receipts } => {
                self.settle(&user_id, &key, lease, delivered, &receipts).await?;
                json(200, &json!({}))
            }
            UserCommand::Badges => json(200, &self.badges()?),
            UserCommand::Clear { bucket } => {
                let c = self.change_badge(&bucket, badges::clear)?;
                json(200, &ClearAnswer { badge_count: c.total })
            }
            UserCommand::Inspect => self.inspect().await,
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Ledger and badges
    // ----------------------------------------------------------------------------------------------

    fn record(&self, key: &str) -> Result<Option<Record>, ApiError> {
        let rows: Vec<RecordRow> = self.query("SELECT * FROM records WHERE key = ?", vec![key.into()])?;
        Ok(rows.first().map(RecordRow::record))
    }

    fn write_record(&self, key: &str, bucket: &str, r: &Record) -> Result<(), ApiError> {
        self.exec(
            "INSERT OR REPLACE INTO records (key, status, counted, bucket, expires_at, lease_until, deadline) VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                key.into(),
                r.status.as_str().into(),
                (r.counted as i64).into(),
                bucket.into(),
                r.expires_at.into(),
                r.lease_until.into(),
                r.deadline().into(),
            ],
        )
    }

    fn counts(&self, bucket: &str) -> Result<Counts, ApiError> {
        #[derive(Deserialize)]
        struct Count {
            count: i64,
        }
        let b: Vec<Count> = self.query("SELECT count FROM badges WHERE bucket = ?", vec![bucket.into()])?;
        let total = self.scalar("SELECT total AS v FROM badge_total WHERE id = 1")?;
        Ok(Counts { bucket: b.first().map(|c| c.count).unwrap_or(0), total: total.unwrap_or(0) })
    }

    /// Reads the bucket and the total, applies `f`, writes both back (no `.await`).
    fn change_badge(&self, bucket: &str, f: fn(Counts) -> Counts) -> Result<Counts, ApiError> {
        let c = f(self.counts(bucket)?);
        if c.bucket == 0 {
            self.exec("DELETE FROM badges WHERE bucket = ?", vec![bucket.into()])?;
        } else {
            self.exec(
                "INSERT INTO badges (bucket, count) VALUES (?, ?) ON CONFLICT (bucket) DO UPDATE SET count = excluded.count",
                vec![bucket.into(), c.bucket.into()],
            )?;
        }
        self.exec(
            "INSERT INTO badge_total (id, total) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET total = excluded.total",
            vec![c.total.into()],
        )?;
        Ok(c)
    }

    /// Synchronous from the read to the last write: a concurrent replay cannot slip in between.
    /// Answers the decision and, when a record was written, the time the alarm must fire by.
    fn claim(
        &self,
        key: &str,
        bucket: &str,
        suppression: Option<Suppression>,
    ) -> Result<(ClaimAnswer, Option<i64>), ApiError> {
        let settings = config::settings(&self.env);
        let now = platform::now_ms();
        let timing = Timing { now, ttl_ms: settings.idem_ttl_ms, lease_ms: PENDING_LEASE_MS };
        let existing = self.record(key)?;
        let (answer, deadline) = match ledger::claim(existing.as_ref(), suppression, timing) {
            Claim::Duplicate => return Ok((ClaimAnswer::Duplicate, None)),
            Claim::Suppress { record, outcome } => {
                self.write_record(key, bucket, &record)?;
                (ClaimAnswer::Suppressed { outcome }, record.deadline())
            }
            Claim::Send { record, increment } => {
                // `pending` first, then the badge.
                self.write_record(key, bucket, &record)?;
                let c = if increment { self.change_badge(bucket, badges::increment)? } else { self.counts(bucket)? };
                (ClaimAnswer::Send { lease: record.lease_until, badge: c.total }, record.deadline())
            }
        };
        Ok((answer, Some(deadline)))
    }

    async fn settle(
        &self,
        user_id: &str,
        key: &str,
        lease: i64,
        delivered: bool,
        receipts: &[PendingReceipt],
    ) -> Result<(), ApiError> {
        let settings = config::settings(&self.env);
        let now = platform::now_ms();
        let rows: Vec<RecordRow> = self.query("SELECT * FROM records WHERE key = ?", vec![key.into()])?;
        let mut wanted = None;
        if let Some(row) = rows.first() {
            if let Some(r) = ledger::settle(Some(&row.record()), lease, delivered) {
                self.write_record(&row.key, &row.bucket, &r)?;
                wanted = Some(r.deadline());
            }
        }
        if !receipts.is_empty() {
            let due = now.saturating_add(settings.receipt_delay_ms);
            for r in receipts {
                self.exec(
                    "INSERT OR IGNORE INTO receipts (ticket_id, user_id, token, due_at, attempts) VALUES (?, ?, ?, ?, 0)",
                    vec![r.ticket_id.as_str().into(), user_id.into(), r.token.as_str().into(), due.into()],
                )?;
            }
            wanted = Some(wanted.map_or(due, |w: i64| w.min(due)));
        }
        if let Some(at) = wanted {
            self.ensure_alarm(at).await;
        }
        Ok(())
    }

    fn badges(&self) -> Result<BadgesAnswer, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            bucket: String,
            count: i64,
        }
        let rows: Vec<Row> = self.query("SELECT bucket, count FROM badges WHERE count > 0 ORDER BY bucket", vec![])?;
        let total = self.scalar("SELECT total AS v FROM badge_total WHERE id = 1")?.unwrap_or(0);
        Ok(BadgesAnswer {
            buckets: rows.into_iter().map(|r| BucketCount { badge_bucket: r.bucket, badge_count: r.count }).collect(),
            total,
        })
    }

    async fn inspect(&self) -> Result<Response, ApiError> {
        let records: Vec<RecordRow> = self.query("SELECT * FROM records ORDER BY key", vec![])?;
        let receipts: Vec<ReceiptRow> = self.query("SELECT * FROM receipts ORDER BY ticket_id", vec![])?;
        let alarm_at = self.state.storage().get_alarm().await.map_err(|e| internal("get alarm", e))?;
        let records: Vec<_> = records
            .iter()
            .map(|r| {
                let rec = r.record();
                json!({"key": r.key, "status": r.status, "counted": rec.counted, "bucket": r.bucket,
                       "expiresAt": r.expires_at, "leaseUntil": r.lease_until, "deadline": rec.deadline()})
            })
            .collect();
        let receipts: Vec<_> = receipts
            .iter()
            .map(|r| json!({"ticketId": r.ticket_id, "userId": r.user_id, "token": r.token, "dueAt": r.due_at, "attempts": r.attempts}))
            .collect();
        json(
            200,
            &json!({"now": platform::now_ms(), "alarmAt": alarm_at, "records": records, "receipts": receipts, "badges": self.badges()?}),
        )
    }

    // ----------------------------------------------------------------------------------------------
    // The alarm
    // ----------------------------------------------------------------------------------------------

    /// Sets the alarm at `wanted` when none is set or it is needed sooner; never later.
    async fn ensure_alarm(&self, wanted: i64) {
        self.alarm.ensure(&self.state.storage(), wanted).await;
    }

    async fn run_alarm(&self) {
        let settings = config::settings(&self.env);
        let now = platform::now_ms();
        if let Err(e) = self.exec("DELETE FROM records WHERE deadline <= ?", vec![now.into()]) {
            worker::console_error!("sweep records: {e}");
        }
        if let Err(e) = self.check_receipts(&settings, now).await {
            worker::console_error!("check receipts: {e}");
        }
        let earliest_record = self.scalar("SELECT MIN(deadline) AS v FROM records").unwrap_or(None);
        let earliest_receipt = self.scalar("SELECT MIN(due_at) AS v FROM receipts").unwrap_or(None);
        // A write during this handler's awaits may have asked for an earlier alarm.
        let next =
            [alarm::next_fire(earliest_record, earliest_receipt), self.alarm.known()].into_iter().flatten().min();
        if let Some(at_ms) = next {
            self.alarm.set(&self.state.storage(), at_ms.max(now + 1)).await;
        }
    }

    async fn check_receipts(
        &self,
        settings: &switchboard_notify_core::config::Settings,
        now: i64,
    ) -> Result<(), ApiError> {
        let due: Vec<ReceiptRow> =
            self.query("SELECT * FROM receipts WHERE due_at <= ? ORDER BY due_at LIMIT 1000", vec![now.into()])?;
        if due.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = due.iter().map(|r| r.ticket_id.clone()).collect();
        let later = now.saturating_add(settings.receipt_delay_ms);
        let receipts = match expo::fetch_receipts(settings, &ids).await {
            Ok(r) => r,
            Err(e) => {
                worker::console_error!("receipts: {e}");
                for r in &due {
                    self.ask_again_or_drop(r, later)?;
                }
                return Ok(());
            }
        };
        let mut dead = Vec::new();
        for r in &due {
            let attempts = r.attempts + 1;
            match receipt_action(receipts.get(&r.ticket_id), attempts) {
                ReceiptAction::Done => {
                    if let Some(switchboard_notify_core::expo::Receipt::Error { error, message }) =
                        receipts.get(&r.ticket_id)
                    {
                        worker::console_warn!("receipt {}: {} ({:?})", r.ticket_id, message, error);
                    }
                    self.exec("DELETE FROM receipts WHERE ticket_id = ?", vec![r.ticket_id.as_str().into()])?;
                }
                ReceiptAction::DeleteToken => {
                    dead.push((r.user_id.clone(), r.token.clone()));
                    self.exec("DELETE FROM receipts WHERE ticket_id = ?", vec![r.ticket_id.as_str().into()])?;
                }
                ReceiptAction::AskAgain => self.ask_again_or_drop(r, later)?,
            }
        }
        if !dead.is_empty() {
            worker::console_log!("receipts: forgetting {} token(s) Expo calls DeviceNotRegistered", dead.len());
            store::delete_dead_tokens(&store::db(&self.env)?, &dead).await?;
        }
        Ok(())
    }

    fn ask_again_or_drop(&self, r: &ReceiptRow, later: i64) -> Result<(), ApiError> {
        if r.attempts + 1 >= MAX_RECEIPT_ATTEMPTS {
            self.exec("DELETE FROM receipts WHERE ticket_id = ?", vec![r.ticket_id.as_str().into()])
        } else {
            self.exec(
                "UPDATE receipts SET attempts = attempts + 1, due_at = ? WHERE ticket_id = ?",
                vec![later.into(), r.ticket_id.as_str().into()],
            )
        }
    }
}
