//! The per-user idempotency ledger: one record per idempotency key (`chat:{messageId}:{userId}`).
//!
//! A push for a key goes through `claim` then `settle`:
//! - `claim` answers `Duplicate` while a live record is terminal (`delivered` or a suppression) or is
//!   `pending` within its lease (a concurrent replay); otherwise it decides to suppress (recording the
//!   terminal outcome) or to send, recording `pending` **before** the badge is incremented and
//!   remembering in the record that the badge was counted. A retry after a failed (or abandoned)
//!   attempt re-sends without counting again.
//! - `settle` turns the attempt's `pending` into `delivered` once Expo accepted a push, or `failed`
//!   otherwise (`failed` stays retryable). The lease end written by `claim` is the attempt's fencing
//!   token: an attempt that outlived its lease and was retried by another settles nothing.
//!
//! Records expire `ttl` after they were first written; an expired record reads as absent. The shell
//! applies a decision by writing the record (and asking for the alarm, see `alarm`) before it changes
//! the badge, with no `.await` between the read and the writes. [`Ledger`] is the in-memory model of
//! exactly that, used by the tests.
//!
//! Files: `records` (statuses, suppressions, a record), `decisions` (`claim` and `settle`), `model`
//! (`Ledger`, the in-memory model).

mod decisions;
mod model;
mod records;
#[cfg(test)]
mod tests;

pub use decisions::{claim, settle, Claim, Timing};
pub use model::Ledger;
pub use records::{Record, Status, Suppression};
