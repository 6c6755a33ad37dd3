//! The alarm's own storage work: the sweep of expired records and the next time to fire. The
//! receipts it checks in between are `receipts`.

use super::records::RecordRow;
use super::{InspectAnswer, RecordView, Store, StoreExt, User};
use crate::alarm::next_fire;
use switchboard_core::ApiError;

impl<S: Store> User<S> {
    /// Deletes the records whose deadline is at or before `now_ms`; answers how many.
    pub fn sweep(&self, now_ms: i64) -> Result<usize, ApiError> {
        self.command(|| Ok(self.store.run("DELETE FROM records WHERE deadline <= ?", &[now_ms.into()])?))
    }

    /// After a run at `now_ms`: when to fire next, the earliest remaining record deadline or
    /// receipt, or `known` (an alarm a write asked for during the run) if sooner; never before
    /// `now_ms + 1`. A read that fails counts as nothing remaining (the next write re-arms).
    pub fn next_alarm(&self, now_ms: i64, known: Option<i64>) -> Option<i64> {
        let record = self.store.scalar("SELECT MIN(deadline) AS v FROM records", &[]).unwrap_or(None);
        let receipt = self.store.scalar("SELECT MIN(due_at) AS v FROM receipts", &[]).unwrap_or(None);
        [next_fire(record, receipt), known].into_iter().flatten().min().map(|at| at.max(now_ms + 1))
    }

    /// Local mode only: what the object holds; `alarm_at` is what the runtime holds.
    pub fn inspect(&self, now_ms: i64, alarm_at: Option<i64>) -> Result<InspectAnswer, ApiError> {
        let rows: Vec<RecordRow> = self.store.rows("SELECT * FROM records ORDER BY key", &[])?;
        let records = rows
            .into_iter()
            .map(|r| {
                let rec = r.record();
                RecordView {
                    key: r.key,
                    status: r.status,
                    counted: rec.counted,
                    bucket: r.bucket,
                    expires_at: r.expires_at,
                    lease_until: r.lease_until,
                    deadline: rec.deadline(),
                }
            })
            .collect();
        Ok(InspectAnswer { now: now_ms, alarm_at, records, receipts: self.receipts()?, badges: self.badges()? })
    }
}
