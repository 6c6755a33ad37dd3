//! The user's object as a state machine: every decision of `UserNotifications` over its SQLite
//! database ([`Store`]), natively.
//!
//! A [`User`] owns the object's store. Each command takes the time, runs in one transaction
//! ([`User::command`]: its writes commit together, or none remain), and answers a typed answer
//! together with the latest time the alarm must fire by (the shell sets it only earlier, never
//! later: `crate::alarm`). The alarm's run is split around the Expo receipts call, which the shell
//! makes: [`User::sweep`] (expired records), [`User::receipts_due`], [`User::receipts_checked`]
//! (what Expo answered, or that it could not be asked) and [`User::next_alarm`].
//!
//! Files: [`commands`] (what the worker asks and the typed answers), [`schema`], [`records`] (claim
//! and settle over the idempotency records), [`badges`] (buckets and the total), [`receipts`]
//! (tickets to check and what their receipts decide), [`alarm`] (the sweep and the next time).
//!
//! Invariants (tested in `tests.rs`): a claim writes its record `pending` before it counts the
//! badge, in the same transaction, so a failure at any statement leaves neither; the badge total is
//! the sum of the buckets; after a sweep at `now` no record with a deadline at or before `now`
//! remains.

pub mod alarm;
pub mod badges;
pub mod commands;
pub mod receipts;
pub mod records;
pub mod schema;

#[cfg(test)]
mod tests;

pub use commands::{
    BadgesAnswer, BucketCount, ClaimAnswer, ClearAnswer, InspectAnswer, PendingReceipt, ReceiptView, RecordView,
    SettleAnswer, UserCommand,
};
pub use switchboard_core::store::{Arg, Store, StoreError, StoreExt};

use switchboard_core::{store, ApiError};

/// Lifetimes read once from the deployment's vars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Lifetime of idempotency records.
    pub idem_ttl_ms: i64,
    /// How long after a push its receipt is first checked (and between checks).
    pub receipt_delay_ms: i64,
    /// How long a claimed push blocks other attempts (`Settings::pending_lease_ms`).
    pub lease_ms: i64,
}

impl Config {
    pub fn from_settings(s: &crate::config::Settings) -> Config {
        Config { idem_ttl_ms: s.idem_ttl_ms, receipt_delay_ms: s.receipt_delay_ms, lease_ms: s.pending_lease_ms }
    }
}

/// A command's answer, and the time the alarm must fire by (if the command needs it).
#[derive(Debug, Clone, PartialEq)]
pub struct Done<T> {
    pub answer: T,
    pub alarm_at: Option<i64>,
}

impl<T> Done<T> {
    fn new(answer: T, alarm_at: Option<i64>) -> Self {
        Done { answer, alarm_at }
    }
}

/// One user's notifications state over the object's storage.
pub struct User<S: Store> {
    pub(crate) store: S,
    pub(crate) config: Config,
}

impl<S: Store> User<S> {
    /// Opens the user's state over `store`, creating the schema when it is missing.
    pub fn open(store: S, config: Config) -> Result<Self, StoreError> {
        let u = Self::new(store, config);
        u.ensure_schema()?;
        Ok(u)
    }

    /// The user's state over `store`, whose schema the caller ensures ([`User::ensure_schema`]).
    pub fn new(store: S, config: Config) -> Self {
        User { store, config }
    }

    pub fn ensure_schema(&self) -> Result<(), StoreError> {
        self.store.run(schema::SCHEMA, &[]).map(|_| ())
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Runs one command: `body`'s writes commit together; on failure none of them remain.
    pub(crate) fn command<T>(&self, body: impl FnOnce() -> Result<T, ApiError>) -> Result<T, ApiError> {
        store::atomically(&self.store, body)
    }

    /// Runs a command from the worker at `now_ms`. `Inspect` needs the alarm the runtime holds:
    /// `alarm_at`.
    pub fn handle(&self, cmd: UserCommand, now_ms: i64, alarm_at: Option<i64>) -> Result<Done<Answer>, ApiError> {
        Ok(match cmd {
            UserCommand::Claim { user_id: _, key, bucket, suppression } => {
                let d = self.claim(&key, &bucket, suppression, now_ms)?;
                Done::new(Answer::Claim(d.answer), d.alarm_at)
            }
            UserCommand::Settle { user_id, key, lease, delivered, receipts } => {
                let d = self.settle(&user_id, &key, lease, delivered, &receipts, now_ms)?;
                Done::new(Answer::Settle(d.answer), d.alarm_at)
            }
            UserCommand::Badges => Done::new(Answer::Badges(self.badges()?), None),
            UserCommand::Clear { bucket } => Done::new(Answer::Clear(self.clear(&bucket)?), None),
            UserCommand::Inspect => Done::new(Answer::Inspect(self.inspect(now_ms, alarm_at)?), None),
        })
    }
}

/// The answer of any command, serialized as the command's own answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Answer {
    Claim(ClaimAnswer),
    Settle(SettleAnswer),
    Badges(BadgesAnswer),
    Clear(ClearAnswer),
    Inspect(InspectAnswer),
}
