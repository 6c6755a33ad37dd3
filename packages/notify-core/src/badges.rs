//! Badge arithmetic. A user's unread count is kept per badge bucket (one per conversation,
//! `kiloclaw:{sandboxId}:{conversationId}`) and as a total, which a push carries as its `badge`.
//! The shell stores one bucket row and the total and changes both with the functions here; the
//! in-memory [`Badges`] is the model the tests check them against (total = sum of buckets).

use serde::Deserialize;
use std::collections::BTreeMap;
use switchboard_core::requests::parse_body;
use switchboard_core::{validate, ApiError};

/// One bucket's count and the user's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub bucket: i64,
    pub total: i64,
}

/// A new unread message in the bucket.
pub fn increment(c: Counts) -> Counts {
    Counts { bucket: c.bucket.max(0).saturating_add(1), total: c.total.max(0).saturating_add(1) }
}

/// The bucket was read: it drops to zero and the total loses what it held (never below zero).
pub fn clear(c: Counts) -> Counts {
    Counts { bucket: 0, total: c.total.saturating_sub(c.bucket.max(0)).max(0) }
}

/// Checks a bucket name from a request: `kiloclaw:{sandboxId}:{conversationId}` with a valid
/// sandbox id and a conversation id of 1..64 ASCII letters and digits.
pub fn validate_bucket(bucket: &str) -> Result<(), ApiError> {
    let bad = || ApiError::invalid("badgeBucket: must be kiloclaw:{sandboxId}:{conversationId}");
    let rest = bucket.strip_prefix("kiloclaw:").ok_or_else(bad)?;
    let (sandbox, conversation) = rest.split_once(':').ok_or_else(bad)?;
    validate::sandbox_id(sandbox).map_err(|_| bad())?;
    let ok =
        !conversation.is_empty() && conversation.len() <= 64 && conversation.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `POST /v1/badges/mark-read {badgeBucket}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MarkRead {
    pub badge_bucket: String,
}

impl MarkRead {
    pub fn parse(body: &[u8]) -> Result<MarkRead, ApiError> {
        let m: MarkRead = parse_body(body)?;
        validate_bucket(&m.badge_bucket)?;
        Ok(m)
    }
}

/// All of a user's buckets in memory (the model; also the shape of `GET /v1/badges`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Badges {
    buckets: BTreeMap<String, i64>,
    total: i64,
}

impl Badges {
    pub fn counts(&self, bucket: &str) -> Counts {
        Counts { bucket: self.buckets.get(bucket).copied().unwrap_or(0), total: self.total }
    }

    fn store(&mut self, bucket: &str, c: Counts) {
        if c.bucket == 0 {
            self.buckets.remove(bucket);
        } else {
            self.buckets.insert(bucket.to_string(), c.bucket);
        }
        self.total = c.total;
    }

    pub fn increment(&mut self, bucket: &str) -> Counts {
        let c = increment(self.counts(bucket));
        self.store(bucket, c);
        c
    }

    pub fn clear(&mut self, bucket: &str) -> Counts {
        let c = clear(self.counts(bucket));
        self.store(bucket, c);
        c
    }

    pub fn total(&self) -> i64 {
        self.total
    }

    pub fn sum(&self) -> i64 {
        self.buckets.values().sum()
    }

    pub fn buckets(&self) -> impl Iterator<Item = (&str, i64)> {
        self.buckets.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn arithmetic() {
        let c = increment(Counts::default());
        assert_eq!(c, Counts { bucket: 1, total: 1 });
        let c = increment(Counts { bucket: 2, total: 5 });
        assert_eq!(c, Counts { bucket: 3, total: 6 });
        assert_eq!(clear(c), Counts { bucket: 0, total: 3 });
        assert_eq!(clear(Counts { bucket: 4, total: 2 }), Counts { bucket: 0, total: 0 });
        assert_eq!(clear(Counts::default()), Counts::default());
    }

    #[test]
    fn bucket_names() {
        assert!(validate_bucket("kiloclaw:sb1:01ARZ3NDEKTSV4RRFFQ69G5FAV").is_ok());
        assert!(validate_bucket(&switchboard_notify_contract::badge_bucket("sb_1-x", "C1")).is_ok());
        for bad in [
            "",
            "kiloclaw:",
            "kiloclaw:sb1",
            "kiloclaw:sb1:",
            "kiloclaw::C",
            "other:sb:C",
            "kiloclaw:s b:C",
            "kiloclaw:sb:C:D",
        ] {
            assert!(validate_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mark_read_bodies() {
        assert!(MarkRead::parse(br#"{"badgeBucket":"kiloclaw:sb:C1"}"#).is_ok());
        assert_eq!(MarkRead::parse(br#"{"badgeBucket":"nope"}"#).unwrap_err().status(), 400);
        assert_eq!(MarkRead::parse(b"{}").unwrap_err().status(), 400);
        assert_eq!(MarkRead::parse(b"x").unwrap_err().code.as_str(), "invalid_json");
    }

    proptest! {
        /// Any sequence of increments and clears keeps total = sum of buckets, all non-negative.
        #[test]
        fn total_is_sum(ops in proptest::collection::vec((0u8..4, any::<bool>()), 0..200)) {
            let mut b = Badges::default();
            for (bucket, inc) in ops {
                let name = format!("kiloclaw:sb:C{bucket}");
                let before = b.counts(&name);
                let after = if inc { b.increment(&name) } else { b.clear(&name) };
                if inc {
                    prop_assert_eq!(after.bucket, before.bucket + 1);
                    prop_assert_eq!(after.total, before.total + 1);
                } else {
                    prop_assert_eq!(after.bucket, 0);
                    prop_assert_eq!(after.total, before.total - before.bucket);
                }
                prop_assert_eq!(b.total(), b.sum());
                prop_assert!(b.buckets().all(|(_, n)| n > 0));
            }
        }
    }
}
