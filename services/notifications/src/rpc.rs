//! The commands the worker sends a user's `UserNotifications` object (JSON over `stub.fetch`), and
//! their answers. An object answers 200 with the JSON answer, or an error status with
//! `{"error":{"code","message"}}`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use switchboard_core::ApiError;
use switchboard_notify_contract::Outcome;
use switchboard_notify_core::ledger::Suppression;
use worker::Env;

/// The Durable Object namespace binding of `UserNotifications`.
pub const USERS: &str = "USERS";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum UserCommand {
    /// Decide (and record) the push for one idempotency key; a `send` counts the badge first.
    Claim { user_id: String, key: String, bucket: String, suppression: Option<Suppression> },
    /// The attempt that claimed with `lease` finished; keep `receipts` to check later.
    Settle { user_id: String, key: String, lease: i64, delivered: bool, receipts: Vec<PendingReceipt> },
    /// `GET /v1/badges`.
    Badges,
    /// Mark-read of one bucket.
    Clear { bucket: String },
    /// Local mode only: the object's records, receipts, badges and alarm.
    Inspect,
}

/// An accepted ticket whose receipt is checked later.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingReceipt {
    pub ticket_id: String,
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ClaimAnswer {
    Duplicate,
    Suppressed {
        outcome: Outcome,
    },
    /// Push, with `badge` (the user's total unread, this message counted); settle with `lease`.
    Send {
        lease: i64,
        badge: i64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketCount {
    pub badge_bucket: String,
    pub badge_count: i64,
}

/// `GET /v1/badges`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BadgesAnswer {
    pub buckets: Vec<BucketCount>,
    pub total: i64,
}

/// Mark-read: the user's total unread after clearing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearAnswer {
    pub badge_count: i64,
}

/// Sends `cmd` to `user_id`'s object and reads its answer.
pub async fn call<T: DeserializeOwned>(env: &Env, user_id: &str, cmd: &UserCommand) -> Result<T, ApiError> {
    let stub = switchboard_worker_kit::call::stub(env, USERS, user_id)?;
    switchboard_worker_kit::call::call(&stub, cmd).await
}
