//! Claim and settle over the idempotency records. A claim reads its record, decides
//! (`ledger::claim`) and writes the record and then the badge in one transaction, so a concurrent
//! replay sees `pending` and answers `duplicate`, and a failure leaves neither.

use super::{ClaimAnswer, Done, PendingReceipt, SettleAnswer, Store, StoreExt, User};
use crate::badges as rules;
use crate::ledger::{self, Claim, Record, Status, Suppression, Timing};
use serde::Deserialize;
use switchboard_core::ApiError;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RecordRow {
    pub key: String,
    pub status: String,
    pub counted: i64,
    pub bucket: String,
    pub expires_at: i64,
    pub lease_until: i64,
}

impl RecordRow {
    pub fn record(&self) -> Record {
        // An unreadable status is treated as a failed attempt: retried, never counted twice.
        let status = Status::parse(&self.status).unwrap_or(Status::Failed);
        Record { status, counted: self.counted != 0, expires_at: self.expires_at, lease_until: self.lease_until }
    }
}

impl<S: Store> User<S> {
    pub(crate) fn record_row(&self, key: &str) -> Result<Option<RecordRow>, ApiError> {
        Ok(self.store.first("SELECT * FROM records WHERE key = ?", &[key.into()])?)
    }

    fn write_record(&self, key: &str, bucket: &str, r: &Record) -> Result<(), ApiError> {
        self.store.run(
            "INSERT OR REPLACE INTO records (key, status, counted, bucket, expires_at, lease_until, deadline) VALUES (?, ?, ?, ?, ?, ?, ?)",
            &[
                key.into(),
                r.status.as_str().into(),
                r.counted.into(),
                bucket.into(),
                r.expires_at.into(),
                r.lease_until.into(),
                r.deadline().into(),
            ],
        )?;
        Ok(())
    }

    /// Decides (and records) the push for `key`; a `send` counts the badge after writing `pending`.
    /// The alarm must fire by the written record's deadline.
    pub fn claim(
        &self,
        key: &str,
        bucket: &str,
        suppression: Option<Suppression>,
        now_ms: i64,
    ) -> Result<Done<ClaimAnswer>, ApiError> {
        let timing = Timing { now: now_ms, ttl_ms: self.config.idem_ttl_ms, lease_ms: self.config.lease_ms };
        self.command(|| {
            let existing = self.record_row(key)?.map(|r| r.record());
            match ledger::claim(existing.as_ref(), suppression, timing) {
                Claim::Duplicate => Ok(Done::new(ClaimAnswer::Duplicate, None)),
                Claim::InFlight { until } => Ok(Done::new(ClaimAnswer::InFlight { until }, None)),
                Claim::Suppress { record, outcome } => {
                    self.write_record(key, bucket, &record)?;
                    Ok(Done::new(ClaimAnswer::Suppressed { outcome }, Some(record.deadline())))
                }
                Claim::Send { record, increment } => {
                    // `pending` first, then the badge.
                    self.write_record(key, bucket, &record)?;
                    let c = if increment { self.change_badge(bucket, rules::increment)? } else { self.counts(bucket)? };
                    let answer = ClaimAnswer::Send { lease: record.lease_until, badge: c.total };
                    Ok(Done::new(answer, Some(record.deadline())))
                }
            }
        })
    }

    /// The attempt that claimed `key` with `lease` finished; its tickets' receipts are checked after
    /// the receipt delay. The alarm must fire by the settled record's deadline or the receipts' due
    /// time, whichever is sooner.
    pub fn settle(
        &self,
        user_id: &str,
        key: &str,
        lease: i64,
        delivered: bool,
        receipts: &[PendingReceipt],
        now_ms: i64,
    ) -> Result<Done<SettleAnswer>, ApiError> {
        self.command(|| {
            let mut wanted = None;
            if let Some(row) = self.record_row(key)? {
                if let Some(r) = ledger::settle(Some(&row.record()), lease, delivered) {
                    self.write_record(&row.key, &row.bucket, &r)?;
                    wanted = Some(r.deadline());
                }
            }
            if let Some(due) = self.keep_receipts(user_id, receipts, now_ms)? {
                wanted = Some(wanted.map_or(due, |w: i64| w.min(due)));
            }
            Ok(Done::new(SettleAnswer { badge_total: Some(self.total()?) }, wanted))
        })
    }
}
