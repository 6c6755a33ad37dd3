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

/// Parses the `since` query parameter: a non-negative integer.
pub fn parse_since(raw: Option<&str>) -> Result<Option<u64>, crate::ApiError> {
    match raw {
        None => Ok(None),
        Some(s) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| crate::ApiError::invalid("since: must be a non-negative integer")),
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
    }

    proptest! {
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
