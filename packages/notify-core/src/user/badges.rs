//! The user's badge buckets and their total, over the `badges` and `badge_total` tables. The
//! arithmetic is `crate::badges`; every change writes the bucket and the total together.

use super::{BadgesAnswer, BucketCount, ClearAnswer, Store, StoreExt, User};
use crate::badges::{self as rules, Counts};
use serde::Deserialize;
use switchboard_core::ApiError;

impl<S: Store> User<S> {
    pub(crate) fn total(&self) -> Result<i64, ApiError> {
        Ok(self.store.scalar("SELECT total AS v FROM badge_total WHERE id = 1", &[])?.unwrap_or(0))
    }

    pub(crate) fn counts(&self, bucket: &str) -> Result<Counts, ApiError> {
        let b = self.store.scalar("SELECT count AS v FROM badges WHERE bucket = ?", &[bucket.into()])?;
        Ok(Counts { bucket: b.unwrap_or(0), total: self.total()? })
    }

    /// Reads the bucket and the total, applies `f`, writes both back.
    pub(crate) fn change_badge(&self, bucket: &str, f: fn(Counts) -> Counts) -> Result<Counts, ApiError> {
        let c = f(self.counts(bucket)?);
        if c.bucket == 0 {
            self.store.run("DELETE FROM badges WHERE bucket = ?", &[bucket.into()])?;
        } else {
            self.store.run(
                "INSERT INTO badges (bucket, count) VALUES (?, ?) ON CONFLICT (bucket) DO UPDATE SET count = excluded.count",
                &[bucket.into(), c.bucket.into()],
            )?;
        }
        self.store.run(
            "INSERT INTO badge_total (id, total) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET total = excluded.total",
            &[c.total.into()],
        )?;
        Ok(c)
    }

    /// Mark-read of one bucket: the user's total after clearing it.
    pub fn clear(&self, bucket: &str) -> Result<ClearAnswer, ApiError> {
        self.command(|| Ok(ClearAnswer { badge_count: self.change_badge(bucket, rules::clear)?.total }))
    }

    /// The buckets with unread messages, by name, and the total.
    pub fn badges(&self) -> Result<BadgesAnswer, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            bucket: String,
            count: i64,
        }
        let rows: Vec<Row> =
            self.store.rows("SELECT bucket, count FROM badges WHERE count > 0 ORDER BY bucket", &[])?;
        Ok(BadgesAnswer {
            buckets: rows.into_iter().map(|r| BucketCount { badge_bucket: r.bucket, badge_count: r.count }).collect(),
            total: self.total()?,
        })
    }
}
