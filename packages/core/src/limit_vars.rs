//! The rate limits and caps in force, read once from the worker's vars.
//!
//! Each field has a default in `limits.rs` and a var that overrides it ([`LIMIT_VARS`]). Rates are
//! written `"<tokens>/<period>,<burst>"` (`rate::Rate::parse`), counts and milliseconds as positive
//! integers. A var that is unset or empty keeps the default; a var that does not parse keeps the
//! default too and is reported (the shell logs each report): a typo never turns a limit off.

use crate::limits::*;
use crate::rate::Rate;

/// The limits every object applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub sends: Rate,
    pub edits: Rate,
    pub reactions: Rate,
    pub member_adds: Rate,
    pub conversation_creates: Rate,
    pub connect_tickets: Rate,
    pub socket_frames: Rate,
    pub flood_strikes: u32,
    pub typing_throttle_ms: i64,
    pub max_sockets_per_member: u32,
    pub max_hub_sessions: u32,
    pub max_reactions_per_member: u32,
    pub max_reactions_per_message: u32,
    pub max_conversations_per_day: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

impl Limits {
    /// Every limit at its default.
    pub const DEFAULT: Limits = Limits {
        sends: DEFAULT_SENDS,
        edits: DEFAULT_EDITS,
        reactions: DEFAULT_REACTIONS,
        member_adds: DEFAULT_MEMBER_ADDS,
        conversation_creates: DEFAULT_CONVERSATION_CREATES,
        connect_tickets: DEFAULT_CONNECT_TICKETS,
        socket_frames: DEFAULT_SOCKET_FRAMES,
        flood_strikes: DEFAULT_FLOOD_STRIKES,
        typing_throttle_ms: DEFAULT_TYPING_THROTTLE_MS,
        max_sockets_per_member: DEFAULT_MAX_SOCKETS_PER_MEMBER,
        max_hub_sessions: DEFAULT_MAX_HUB_SESSIONS,
        max_reactions_per_member: DEFAULT_MAX_REACTIONS_PER_MEMBER,
        max_reactions_per_message: DEFAULT_MAX_REACTIONS_PER_MESSAGE,
        max_conversations_per_day: DEFAULT_MAX_CONVERSATIONS_PER_DAY,
    };
}

/// Every var that overrides a limit.
pub const LIMIT_VARS: [&str; 14] = [
    "LIMIT_SENDS",
    "LIMIT_EDITS",
    "LIMIT_REACTIONS",
    "LIMIT_MEMBER_ADDS",
    "LIMIT_CONVERSATION_CREATES",
    "LIMIT_CONNECT_TICKETS",
    "LIMIT_SOCKET_FRAMES",
    "LIMIT_FLOOD_STRIKES",
    "TYPING_THROTTLE_MS",
    "MAX_SOCKETS_PER_MEMBER",
    "MAX_HUB_SESSIONS",
    "MAX_REACTIONS_PER_MEMBER",
    "MAX_REACTIONS_PER_MESSAGE",
    "MAX_CONVERSATIONS_PER_DAY",
];

/// A positive count, at most a million.
fn count(v: &str) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!("{v:?} is not a whole number from 1 to 1000000")),
    }
}

impl Limits {
    /// The limits given the vars `get` finds (by name), and one line per var that was refused.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> (Limits, Vec<String>) {
        let mut l = Limits::default();
        let mut refused = Vec::new();
        for name in LIMIT_VARS {
            let Some(value) = get(name).filter(|v| !v.trim().is_empty()) else { continue };
            if let Err(e) = l.set(name, &value) {
                refused.push(format!("{name}: {e}; the default is used"));
            }
        }
        (l, refused)
    }

    fn set(&mut self, name: &str, v: &str) -> Result<(), String> {
        match name {
            "LIMIT_SENDS" => self.sends = Rate::parse(v)?,
            "LIMIT_EDITS" => self.edits = Rate::parse(v)?,
            "LIMIT_REACTIONS" => self.reactions = Rate::parse(v)?,
            "LIMIT_MEMBER_ADDS" => self.member_adds = Rate::parse(v)?,
            "LIMIT_CONVERSATION_CREATES" => self.conversation_creates = Rate::parse(v)?,
            "LIMIT_CONNECT_TICKETS" => self.connect_tickets = Rate::parse(v)?,
            "LIMIT_SOCKET_FRAMES" => self.socket_frames = Rate::parse(v)?,
            "LIMIT_FLOOD_STRIKES" => self.flood_strikes = count(v)?,
            "TYPING_THROTTLE_MS" => self.typing_throttle_ms = i64::from(count(v)?),
            "MAX_SOCKETS_PER_MEMBER" => self.max_sockets_per_member = count(v)?,
            "MAX_HUB_SESSIONS" => self.max_hub_sessions = count(v)?,
            "MAX_REACTIONS_PER_MEMBER" => self.max_reactions_per_member = count(v)?,
            "MAX_REACTIONS_PER_MESSAGE" => self.max_reactions_per_message = count(v)?,
            "MAX_CONVERSATIONS_PER_DAY" => self.max_conversations_per_day = count(v)?,
            _ => return Err("not a limit".into()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> (Limits, Vec<String>) {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Limits::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_issues_numbers() {
        let (l, refused) = from(&[]);
        assert!(refused.is_empty());
        assert_eq!(l.sends, Rate::per_sec(10, 30));
        assert_eq!(l.typing_throttle_ms, 3_000);
        assert_eq!(l.max_sockets_per_member, 20);
        assert_eq!(l.max_hub_sessions, 50);
        assert_eq!(l.max_reactions_per_member, 20);
        assert_eq!(l.max_reactions_per_message, 50);
        assert_eq!(l.max_conversations_per_day, 100);
    }

    #[test]
    fn every_var_overrides_its_limit() {
        let rate = "3/1s,4";
        let pairs: Vec<(&str, &str)> = LIMIT_VARS
            .iter()
            .map(|n| (*n, if n.starts_with("LIMIT_") && *n != "LIMIT_FLOOD_STRIKES" { rate } else { "7" }))
            .collect();
        let (l, refused) = from(&pairs);
        assert!(refused.is_empty(), "{refused:?}");
        let r = Rate::per_sec(3, 4);
        for got in
            [l.sends, l.edits, l.reactions, l.member_adds, l.conversation_creates, l.connect_tickets, l.socket_frames]
        {
            assert_eq!(got, r);
        }
        assert_eq!(l.flood_strikes, 7);
        assert_eq!(l.typing_throttle_ms, 7);
        for got in [
            l.max_sockets_per_member,
            l.max_hub_sessions,
            l.max_reactions_per_member,
            l.max_reactions_per_message,
            l.max_conversations_per_day,
        ] {
            assert_eq!(got, 7);
        }
    }

    #[test]
    fn bad_values_keep_the_default_and_are_reported() {
        let (l, refused) = from(&[("LIMIT_SENDS", "fast"), ("MAX_HUB_SESSIONS", "0"), ("MAX_SOCKETS_PER_MEMBER", " ")]);
        assert_eq!(l, Limits::default());
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[0].starts_with("LIMIT_SENDS: "));
        assert!(refused[1].starts_with("MAX_HUB_SESSIONS: "));
    }
}
