//! The resume window: which events a reconnecting client gets for `?since=<seq>`.

use crate::limits::REPLAY_WINDOW;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumePlan {
    /// Nothing missed (or no `since`): go live.
    Live,
    /// Send the kept events with `seq > after`, in order, then go live.
    Replay { after: u64 },
    /// `since` is older than what we keep, or newer than anything we have: tell the client to refetch.
    Resync,
}

/// `since`: the last seq the client saw. `latest`: the last seq we assigned (0 = none yet).
/// `oldest_kept`: the smallest seq still in the log (None when the log is empty).
pub fn plan(since: Option<u64>, latest: u64, oldest_kept: Option<u64>) -> ResumePlan {
    let Some(since) = since else { return ResumePlan::Live };
    if since == latest {
        return ResumePlan::Live;
    }
    if since > latest {
        return ResumePlan::Resync;
    }
    match oldest_kept {
        // We still hold since+1 .. latest.
        Some(oldest) if since + 1 >= oldest => ResumePlan::Replay { after: since },
        _ => ResumePlan::Resync,
    }
}

/// Events with `seq <= trim_below(latest)` may be deleted from the log.
pub fn trim_below(latest: u64) -> u64 {
    latest.saturating_sub(REPLAY_WINDOW)
}

/// The log is trimmed once every this many events rather than on each (one statement fewer per
/// message); up to this many events older than the window stay in storage in between.
pub const TRIM_EVERY: u64 = 64;

/// Whether assigning `seq` is the moment to delete what fell out of the window.
pub fn trim_due(seq: u64) -> bool {
    seq > REPLAY_WINDOW && seq.is_multiple_of(TRIM_EVERY)
}

/// The oldest event a resume may be served from: the smallest seq in the log (`min_in_log`), but
/// never older than the window, so what a client gets does not depend on when the log was last
/// trimmed.
pub fn oldest_kept(latest: u64, min_in_log: Option<u64>) -> Option<u64> {
    min_in_log.map(|m| m.max(trim_below(latest) + 1))
}

/// Parses the `since` query parameter: an integer 0..=2^53-1 (`limits::MAX_SAFE_INTEGER`).
pub fn parse_since(raw: Option<&str>) -> Result<Option<u64>, crate::ApiError> {
    match raw {
        None => Ok(None),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n <= crate::limits::MAX_SAFE_INTEGER as u64 => Ok(Some(n)),
            _ => Err(crate::ApiError::invalid("since: must be an integer 0..2^53-1")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cases() {
        assert_eq!(plan(None, 10, Some(1)), ResumePlan::Live);
        assert_eq!(plan(Some(10), 10, Some(1)), ResumePlan::Live);
        assert_eq!(plan(Some(0), 0, None), ResumePlan::Live);
        assert_eq!(plan(Some(4), 10, Some(1)), ResumePlan::Replay { after: 4 });
        assert_eq!(plan(Some(0), 10, Some(1)), ResumePlan::Replay { after: 0 });
        assert_eq!(plan(Some(0), 2000, Some(1001)), ResumePlan::Resync);
        assert_eq!(plan(Some(1000), 2000, Some(1001)), ResumePlan::Replay { after: 1000 });
        assert_eq!(plan(Some(11), 10, Some(1)), ResumePlan::Resync);
        assert_eq!(plan(Some(3), 10, None), ResumePlan::Resync);
        assert!(parse_since(Some("-1")).is_err());
        assert!(parse_since(Some("abc")).is_err());
        assert_eq!(parse_since(Some("5")).unwrap(), Some(5));
        assert_eq!(parse_since(Some("9007199254740991")).unwrap(), Some(9007199254740991));
        assert!(parse_since(Some("9007199254740992")).is_err());
        assert!(parse_since(Some("18446744073709551615")).is_err());
    }

    #[test]
    fn trimmed_in_batches_but_served_from_the_window() {
        assert!(!trim_due(64), "nothing falls out of the window before it is full");
        assert!(trim_due(1024) && !trim_due(1025) && trim_due(1088));
        // Log holds 1..=1030 (last trim at 1024 removed seq <= 24, say, but 25..=30 are past the window).
        assert_eq!(oldest_kept(1030, Some(25)), Some(31));
        assert_eq!(plan(Some(29), 1030, oldest_kept(1030, Some(25))), ResumePlan::Resync);
        assert_eq!(plan(Some(30), 1030, oldest_kept(1030, Some(25))), ResumePlan::Replay { after: 30 });
        assert_eq!(oldest_kept(10, Some(1)), Some(1));
        assert_eq!(oldest_kept(10, None), None);
    }

    proptest! {
        /// A log trimmed only every `TRIM_EVERY` events answers every resume exactly as a log trimmed
        /// to the window after each event would.
        #[test]
        fn batched_trim_is_invisible(latest in 0u64..5000, since in 0u64..5000) {
            let last_trim = (1..=latest).rev().find(|s| trim_due(*s));
            let min_in_log = if latest == 0 { None } else { Some(last_trim.map(|t| trim_below(t) + 1).unwrap_or(1)) };
            let exact = if latest == 0 { None } else { Some(trim_below(latest) + 1) };
            prop_assert_eq!(plan(Some(since), latest, oldest_kept(latest, min_in_log)), plan(Some(since), latest, exact));
        }

        /// Simulates a log trimmed to the window: a replay plan never skips an event the client lacks
        /// and never repeats one it has.
        #[test]
        fn replay_is_exact(latest in 0u64..5000, since in 0u64..5000) {
            let oldest = if latest == 0 { None } else { Some(trim_below(latest) + 1) };
            match plan(Some(since), latest, oldest) {
                ResumePlan::Replay { after } => {
                    prop_assert_eq!(after, since);
                    prop_assert!(since < latest);
                    prop_assert!(oldest.unwrap() <= since + 1);
                }
                ResumePlan::Live => prop_assert_eq!(since, latest),
                ResumePlan::Resync => prop_assert!(since > latest || since + 1 < oldest.unwrap_or(u64::MAX)),
            }
        }
    }
}
