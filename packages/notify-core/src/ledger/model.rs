//! `Ledger`: one user's ledger in memory, the model the property tests drive.

use super::{claim, settle, Claim, Record, Suppression, Timing};
use crate::alarm;
use crate::badges::{Badges, Counts};
use std::collections::BTreeMap;

/// The ledger of one user in memory: records, badges and the alarm, changed exactly as the Durable
/// Object changes its tables. The model the property tests drive.
#[derive(Debug, Clone)]
pub struct Ledger {
    records: BTreeMap<String, Record>,
    badges: Badges,
    alarm: Option<i64>,
    ttl_ms: i64,
    lease_ms: i64,
}

impl Ledger {
    pub fn new(ttl_ms: i64, lease_ms: i64) -> Ledger {
        Ledger { records: BTreeMap::new(), badges: Badges::default(), alarm: None, ttl_ms, lease_ms }
    }

    fn timing(&self, now: i64) -> Timing {
        Timing { now, ttl_ms: self.ttl_ms, lease_ms: self.lease_ms }
    }

    fn want_alarm(&mut self, at: i64) {
        if alarm::should_set(self.alarm, at) {
            self.alarm = Some(at);
        }
    }

    /// `claim` applied: the record is written (and the alarm asked for) before the badge changes.
    /// With `crash_before_badge` the shell dies between the two and the badge change is lost: the
    /// badge then undercounts by one, and never overcounts.
    pub fn claim_with(
        &mut self,
        key: &str,
        bucket: &str,
        suppression: Option<Suppression>,
        now: i64,
        crash_before_badge: bool,
    ) -> (Claim, Counts) {
        let decision = claim(self.records.get(key), suppression, self.timing(now));
        match &decision {
            Claim::Duplicate | Claim::InFlight { .. } => {}
            Claim::Suppress { record, .. } => {
                self.records.insert(key.to_string(), record.clone());
                self.want_alarm(record.expires_at);
            }
            Claim::Send { record, increment } => {
                self.records.insert(key.to_string(), record.clone());
                self.want_alarm(record.deadline());
                if crash_before_badge {
                    return (decision.clone(), self.badges.counts(bucket));
                }
                if *increment {
                    self.badges.increment(bucket);
                }
            }
        }
        (decision, self.badges.counts(bucket))
    }

    pub fn claim(&mut self, key: &str, bucket: &str, suppression: Option<Suppression>, now: i64) -> (Claim, Counts) {
        self.claim_with(key, bucket, suppression, now, false)
    }

    /// `settle` applied; answers whether the record changed.
    pub fn settle(&mut self, key: &str, lease: i64, delivered: bool) -> bool {
        match settle(self.records.get(key), lease, delivered) {
            Some(r) => {
                let at = r.deadline();
                self.records.insert(key.to_string(), r);
                self.want_alarm(at);
                true
            }
            None => false,
        }
    }

    /// Mark-read of a bucket: answers the counts after clearing.
    pub fn clear(&mut self, bucket: &str) -> Counts {
        self.badges.clear(bucket)
    }

    /// The alarm fires at `now`: delete what expired, re-arm at the earliest remaining expiry.
    /// Answers how many records were deleted.
    pub fn fire_alarm(&mut self, now: i64) -> usize {
        let before = self.records.len();
        self.records.retain(|_, r| r.is_live(now));
        self.alarm = alarm::next_fire(self.records.values().map(Record::deadline).min(), None);
        before - self.records.len()
    }

    pub fn alarm(&self) -> Option<i64> {
        self.alarm
    }

    pub fn record(&self, key: &str) -> Option<&Record> {
        self.records.get(key)
    }

    pub fn records(&self) -> impl Iterator<Item = (&str, &Record)> {
        self.records.iter().map(|(k, r)| (k.as_str(), r))
    }

    pub fn badges(&self) -> &Badges {
        &self.badges
    }
}
