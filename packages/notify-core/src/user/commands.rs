//! The commands the notifications worker sends a user's `UserNotifications` object (JSON over
//! `stub.fetch`), and their typed answers. An object answers 200 with the JSON answer, or an error
//! status with `{"error":{"code","message"}}`.

use crate::ledger::Suppression;
use serde::{Deserialize, Serialize};
use switchboard_notify_contract::Outcome;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingReceipt {
    pub ticket_id: String,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ClaimAnswer {
    Duplicate,
    /// Another attempt holds the push until `until` (the end of its lease): ask again then.
    InFlight {
        until: i64,
    },
    Suppressed {
        outcome: Outcome,
    },
    /// Push, with `badge` (the user's total unread, this message counted); settle with `lease`.
    Send {
        lease: i64,
        badge: i64,
    },
}

/// A settle's answer: the user's total unread now (`badgeTotal`), what the chat side announces as
/// `badge.updated` (not the total when the push was claimed: a mark-read or another conversation's
/// push may have changed it while this one was on its way to Expo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge_total: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketCount {
    pub badge_bucket: String,
    pub badge_count: i64,
}

/// `GET /v1/badges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BadgesAnswer {
    pub buckets: Vec<BucketCount>,
    pub total: i64,
}

/// Mark-read: the user's total unread after clearing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearAnswer {
    pub badge_count: i64,
}

/// Local mode only: what the object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectAnswer {
    pub now: i64,
    pub alarm_at: Option<i64>,
    pub records: Vec<RecordView>,
    pub receipts: Vec<ReceiptView>,
    pub badges: BadgesAnswer,
}

/// One idempotency record, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordView {
    pub key: String,
    pub status: String,
    pub counted: bool,
    pub bucket: String,
    pub expires_at: i64,
    pub lease_until: i64,
    pub deadline: i64,
}

/// One receipt still to be checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptView {
    pub ticket_id: String,
    pub user_id: String,
    pub token: String,
    pub due_at: i64,
    pub attempts: i64,
}
