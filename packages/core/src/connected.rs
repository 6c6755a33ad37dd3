//! Who has a socket open on a conversation right now, kept in memory so the send path can tell
//! viewing members from absent ones without asking the runtime once per member.
//!
//! The runtime's list of sockets is the truth; this is a cache of it. It is built from that list
//! (`rebuild`), kept current as sockets open and close, and rebuilt when older than
//! [`REBUILD_AFTER_MS`], so a close the object never heard about (a socket dropped while the object
//! was evicted, say) is corrected within that time. A mistake either way only decides whether a
//! member counts as viewing for push suppression.

use std::collections::HashMap;
use std::rc::Rc;

/// How long a built cache is trusted before the next use rebuilds it from the runtime's sockets.
pub const REBUILD_AFTER_MS: i64 = 30_000;

#[derive(Debug, Default)]
pub struct ConnectedMembers {
    /// Open sockets per member; members with none are absent.
    counts: HashMap<String, u32>,
    /// When `counts` was last built from the runtime's list; `None` = never (must rebuild).
    built_at: Option<i64>,
    /// The roster's people with no socket open, as last computed by [`ConnectedMembers::absent`];
    /// dropped whenever the connected set or the roster changes.
    absent: Option<Rc<Vec<String>>>,
}

impl ConnectedMembers {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when the next use must first `rebuild` from the runtime's sockets.
    pub fn needs_rebuild(&self, now_ms: i64) -> bool {
        match self.built_at {
            None => true,
            Some(t) => now_ms.saturating_sub(t) >= REBUILD_AFTER_MS || now_ms < t,
        }
    }

    /// Replaces the counts with one entry per open socket's member.
    pub fn rebuild<I, S>(&mut self, members: I, now_ms: i64)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.counts.clear();
        for m in members {
            *self.counts.entry(m.into()).or_insert(0) += 1;
        }
        self.built_at = Some(now_ms);
        self.absent = None;
    }

    /// A socket of `member` was accepted. Ignored until the first rebuild (which will count it).
    pub fn opened(&mut self, member: &str) {
        if self.built_at.is_some() {
            let n = self.counts.entry(member.to_string()).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.absent = None;
            }
        }
    }

    /// A socket of `member` closed.
    pub fn closed(&mut self, member: &str) {
        if let Some(n) = self.counts.get_mut(member) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.counts.remove(member);
                self.absent = None;
            }
        }
    }

    /// How many sockets `member` has open (as far as this cache knows).
    pub fn sockets_of(&self, member: &str) -> u32 {
        self.counts.get(member).copied().unwrap_or(0)
    }

    /// Every socket of `member` was closed by the object (the member left).
    pub fn gone(&mut self, member: &str) {
        if self.counts.remove(member).is_some() {
            self.absent = None;
        }
    }

    /// The roster changed (a member joined or left): the next [`ConnectedMembers::absent`] recomputes.
    pub fn roster_changed(&mut self) {
        self.absent = None;
    }

    /// The people of `roster` (member id, is a person) with no socket open, in roster order. Computed
    /// once and kept until a socket of a new member opens, a member's last socket closes, a rebuild,
    /// or [`ConnectedMembers::roster_changed`]: in a busy room the send path pays one pointer copy
    /// per message instead of a lookup per member.
    pub fn absent<'a, I>(&mut self, roster: I) -> Rc<Vec<String>>
    where
        I: IntoIterator<Item = (&'a str, bool)>,
    {
        if let Some(a) = &self.absent {
            return a.clone();
        }
        let a: Rc<Vec<String>> = Rc::new(
            roster
                .into_iter()
                .filter(|(id, is_person)| *is_person && !self.counts.contains_key(*id))
                .map(|(id, _)| id.to_string())
                .collect(),
        );
        self.absent = Some(a.clone());
        a
    }

    pub fn is_connected(&self, member: &str) -> bool {
        self.counts.contains_key(member)
    }

    /// Members with at least one open socket.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sockets_per_member() {
        let mut c = ConnectedMembers::new();
        assert!(c.needs_rebuild(0));
        c.rebuild(["alice", "bob", "alice"], 1_000);
        assert!(!c.needs_rebuild(1_000));
        assert!(c.is_connected("alice") && c.is_connected("bob") && !c.is_connected("carol"));
        assert_eq!(c.len(), 2);
        c.closed("alice");
        assert!(c.is_connected("alice"), "alice still has a second tab");
        c.closed("alice");
        assert!(!c.is_connected("alice"));
        c.closed("alice");
        assert!(!c.is_connected("alice"), "an extra close never goes below zero");
        c.opened("carol");
        assert!(c.is_connected("carol"));
        c.opened("bob");
        c.gone("bob");
        assert!(!c.is_connected("bob"));
    }

    #[test]
    fn opens_before_the_first_build_are_left_to_it() {
        let mut c = ConnectedMembers::new();
        c.opened("alice");
        assert!(!c.is_connected("alice"));
        assert!(c.needs_rebuild(0));
        // The rebuild sees the runtime's list, which includes that socket: counted once, not twice.
        c.rebuild(["alice"], 5);
        c.closed("alice");
        assert!(!c.is_connected("alice"));
    }

    #[test]
    fn absent_people_follow_sockets_and_roster() {
        let roster = [("alice", true), ("bob", true), ("bot", false), ("carol", true)];
        let mut c = ConnectedMembers::new();
        c.rebuild(["alice", "alice"], 0);
        assert_eq!(*c.absent(roster), vec!["bob", "carol"], "the bot is never a push recipient");
        // Kept while nothing changes; a second tab of a connected member changes nothing.
        c.opened("alice");
        assert_eq!(*c.absent([]), vec!["bob", "carol"]);
        c.opened("bob");
        assert_eq!(*c.absent(roster), vec!["carol"]);
        // Closing one of alice's three tabs leaves her connected; the last one makes her absent.
        c.closed("alice");
        c.closed("alice");
        assert_eq!(*c.absent([]), vec!["carol"]);
        c.closed("alice");
        assert_eq!(*c.absent(roster), vec!["alice", "carol"]);
        c.gone("bob");
        assert_eq!(*c.absent(roster), vec!["alice", "bob", "carol"]);
        // A roster change is told; the new roster is used from then on.
        c.roster_changed();
        assert_eq!(*c.absent([("alice", true), ("dave", true)]), vec!["alice", "dave"]);
        c.rebuild(["dave"], 1);
        assert_eq!(*c.absent([("alice", true), ("dave", true)]), vec!["alice"]);
    }

    #[test]
    fn trusted_for_a_while_then_rebuilt() {
        let mut c = ConnectedMembers::new();
        c.rebuild(["alice"], 10_000);
        assert!(!c.needs_rebuild(10_000 + REBUILD_AFTER_MS - 1));
        assert!(c.needs_rebuild(10_000 + REBUILD_AFTER_MS));
        assert!(c.needs_rebuild(9_000), "a clock that went back rebuilds");
        // A close the object missed is corrected by the next rebuild.
        c.rebuild(Vec::<String>::new(), 50_000);
        assert!(c.is_empty());
    }
}
