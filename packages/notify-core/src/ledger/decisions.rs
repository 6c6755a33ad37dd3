//! The two decisions: `claim` (send, suppress or duplicate) and `settle` (the attempt's outcome).

use super::{Record, Status, Suppression};
use switchboard_notify_contract::Outcome;

/// The clock and the lifetimes a decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub now: i64,
    pub ttl_ms: i64,
    pub lease_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A live terminal record: nothing to do.
    Duplicate,
    /// A pending record within its lease: another attempt holds the push until `until` (its sender
    /// may be at work, or dead). Nothing to do now; a caller that must see the push through asks
    /// again after `until`, when an abandoned attempt is retried.
    InFlight { until: i64 },
    /// Write `record` (terminal); no push, no badge change.
    Suppress { record: Record, outcome: Outcome },
    /// Write `record` (`pending`), then increment the badge bucket iff `increment`, then push.
    Send { record: Record, increment: bool },
}

/// Decides what a push for a key does, given the key's stored record (if any).
pub fn claim(existing: Option<&Record>, suppression: Option<Suppression>, t: Timing) -> Claim {
    let live = existing.filter(|r| r.is_live(t.now));
    let (counted, expires_at) = match live {
        Some(r) if r.status.is_terminal() => return Claim::Duplicate,
        Some(r) if r.status == Status::Pending && r.lease_until > t.now => {
            return Claim::InFlight { until: r.lease_until }
        }
        // A failed attempt, or one whose sender vanished: retry, keeping what was counted.
        Some(r) => (r.counted, r.expires_at),
        None => (false, t.now.saturating_add(t.ttl_ms)),
    };
    match suppression {
        Some(s) => Claim::Suppress {
            record: Record { status: s.status(), counted, expires_at, lease_until: 0 },
            outcome: s.outcome(),
        },
        None => Claim::Send {
            record: Record {
                status: Status::Pending,
                counted: true,
                expires_at,
                lease_until: t.now.saturating_add(t.lease_ms),
            },
            increment: !counted,
        },
    }
}

/// What a finished attempt writes: `delivered` when Expo accepted a push, else `failed`. Only the
/// `pending` record of this very attempt changes: `lease` is the `lease_until` its claim wrote, a
/// fencing token, so an attempt that outlived its lease (and was retried by another) changes nothing.
pub fn settle(existing: Option<&Record>, lease: i64, delivered: bool) -> Option<Record> {
    let r = existing.filter(|r| r.status == Status::Pending && r.lease_until == lease)?;
    let status = if delivered { Status::Delivered } else { Status::Failed };
    Some(Record { status, counted: r.counted, expires_at: r.expires_at, lease_until: 0 })
}
