//! What a bridge object reports and when it wakes: the machines' states named as the conversation stores them
//! (`connecting`, `live`, `backoff`, `failed`), and the object's next alarm (the machine's next timeout, but never
//! later than the watchdog, which restarts a bridge after an eviction or a deploy closed its socket).

use crate::graphql_ws::Phase;
use switchboard_pusher::client::ClientState;

/// The longest a bridge object sleeps between alarms: well under the 15 minutes an outbound socket keeps an
/// object in memory, so an object evicted (or restarted by a deploy) reconnects within this.
pub const WATCHDOG_MS: u64 = 60_000;

/// The states a bridge reports (the conversation's `bridge.state` events).
pub const CONNECTING: &str = "connecting";
pub const LIVE: &str = "live";
pub const BACKOFF: &str = "backoff";
pub const FAILED: &str = "failed";

/// A Kick reader's state as reported; `None` when stopped (nothing to report).
pub fn kick_state(state: ClientState) -> Option<&'static str> {
    match state {
        ClientState::Idle => None,
        ClientState::Connecting | ClientState::Connected => Some(CONNECTING),
        ClientState::Live => Some(LIVE),
        ClientState::Waiting => Some(BACKOFF),
        ClientState::Failed => Some(FAILED),
    }
}

/// A Kosmi relay's state as reported: live only once the room is joined (before `joinRoom` answers, the room
/// delivers nothing). `None` when stopped.
pub fn kosmi_state(phase: Phase, joined: bool) -> Option<&'static str> {
    match phase {
        Phase::Idle | Phase::Stopped => None,
        Phase::Connecting | Phase::AwaitingAck => Some(CONNECTING),
        Phase::Ready if joined => Some(LIVE),
        Phase::Ready => Some(CONNECTING),
        Phase::Waiting { .. } => Some(BACKOFF),
    }
}

/// When the object's alarm must next fire: the machine's timeout, or the watchdog if that is sooner or there is
/// none.
pub fn next_alarm(now_ms: u64, poll_timeout: Option<u64>) -> u64 {
    let watchdog = now_ms.saturating_add(WATCHDOG_MS);
    poll_timeout.map_or(watchdog, |t| t.min(watchdog))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_named_like_the_conversation_stores_them() {
        assert_eq!(kick_state(ClientState::Idle), None);
        assert_eq!(kick_state(ClientState::Connecting), Some("connecting"));
        assert_eq!(kick_state(ClientState::Connected), Some("connecting"));
        assert_eq!(kick_state(ClientState::Live), Some("live"));
        assert_eq!(kick_state(ClientState::Waiting), Some("backoff"));
        assert_eq!(kick_state(ClientState::Failed), Some("failed"));
        assert_eq!(kosmi_state(Phase::Stopped, false), None);
        assert_eq!(kosmi_state(Phase::AwaitingAck, false), Some("connecting"));
        assert_eq!(kosmi_state(Phase::Ready, false), Some("connecting"));
        assert_eq!(kosmi_state(Phase::Ready, true), Some("live"));
        assert_eq!(kosmi_state(Phase::Waiting { retry_at_ms: 5 }, false), Some("backoff"));
    }

    #[test]
    fn the_alarm_is_never_later_than_the_watchdog() {
        assert_eq!(next_alarm(1_000, None), 1_000 + WATCHDOG_MS);
        assert_eq!(next_alarm(1_000, Some(2_000)), 2_000);
        assert_eq!(next_alarm(1_000, Some(1_000 + WATCHDOG_MS * 3)), 1_000 + WATCHDOG_MS);
        assert_eq!(next_alarm(u64::MAX, None), u64::MAX);
        const { assert!(WATCHDOG_MS < 15 * 60 * 1000) };
    }
}
