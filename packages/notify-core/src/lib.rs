//! Switchboard's notifications core (sans-IO).
//!
//! Everything the notifications worker decides lives here as plain data and pure functions: the
//! per-user idempotency ledger, badge arithmetic, the cleanup alarm rule, presence and preference
//! suppression, Expo push messages, chunking, gzip and retry decisions, and ticket and receipt parsing.
//! Time and randomness are arguments; nothing here performs I/O or depends on the worker runtime.
//! `services/notifications` is the thin shell that stores, fetches and sets alarms.
//!
//! Invariants this crate states and its tests check:
//! - a ledger record is written `pending` before the badge is incremented, and a record counts its
//!   badge at most once however often the message is replayed (`ledger`);
//! - the badge total always equals the sum of the buckets (`badges`);
//! - the alarm is never postponed, and after it fires no expired record remains (`alarm`, `ledger`);
//! - a request to Expo carries at most 100 messages, and a 400 is never retried (`expo`).

pub mod alarm;
pub mod badges;
pub mod config;
pub mod expo;
pub mod ledger;
pub mod plan;
pub mod prefs;
pub mod presence;
pub mod projects;
pub mod tokens;
pub mod user;

pub use switchboard_core::{ApiError, ErrorCode};
pub use switchboard_notify_contract as contract;
