//! What the ledger records per key: a status, the suppression behind it, its lease and expiry.

use serde::{Deserialize, Serialize};
use switchboard_notify_contract::Outcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Pending,
    Failed,
    Delivered,
    SuppressedPresence,
    SuppressedPreference,
    NoTokens,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Failed => "failed",
            Status::Delivered => "delivered",
            Status::SuppressedPresence => "suppressed_presence",
            Status::SuppressedPreference => "suppressed_preference",
            Status::NoTokens => "no_tokens",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "failed" => Status::Failed,
            "delivered" => Status::Delivered,
            "suppressed_presence" => Status::SuppressedPresence,
            "suppressed_preference" => Status::SuppressedPreference,
            "no_tokens" => Status::NoTokens,
            _ => return None,
        })
    }

    /// A terminal record answers `duplicate` for as long as it lives.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Pending | Status::Failed)
    }
}

/// Why a recipient gets no push (decided before the ledger is consulted, recorded by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    Presence,
    Preference,
    NoTokens,
}

impl Suppression {
    pub fn status(self) -> Status {
        match self {
            Suppression::Presence => Status::SuppressedPresence,
            Suppression::Preference => Status::SuppressedPreference,
            Suppression::NoTokens => Status::NoTokens,
        }
    }

    pub fn outcome(self) -> Outcome {
        match self {
            Suppression::Presence => Outcome::SuppressedPresence,
            Suppression::Preference => Outcome::SuppressedPreference,
            Suppression::NoTokens => Outcome::NoTokens,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub status: Status,
    /// The badge was incremented for this key (it never is again while the record lives).
    pub counted: bool,
    /// First write + TTL: the record is deleted (and reads as absent) from then on (see `deadline`).
    pub expires_at: i64,
    /// A `pending` record blocks replays until then; 0 otherwise.
    pub lease_until: i64,
}

impl Record {
    /// When the record may be deleted: its expiry, or for a `pending` record still in flight the end
    /// of its lease if that is later (an attempt in flight never loses its record).
    pub fn deadline(&self) -> i64 {
        if self.status == Status::Pending {
            self.expires_at.max(self.lease_until)
        } else {
            self.expires_at
        }
    }

    pub fn is_live(&self, now: i64) -> bool {
        self.deadline() > now
    }
}
