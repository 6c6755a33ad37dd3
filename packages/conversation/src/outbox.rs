//! The queue of events on their way to watching hubs, bounded.
//!
//! The shell's pump drains it one entry at a time (one call per watcher), in commit order. It
//! holds at most [`MAX_HUB_OUTBOX`] events: when full, typing (ephemeral) and presence events are
//! dropped first (the newest typing is simply not queued; otherwise the oldest typing or presence
//! event makes room). An event that must not be lost (a message, an edit, a rename...) is never
//! silently dropped: when nothing droppable is left, it is replaced by a `context.resync` notice
//! for its watchers (coalesced with a notice already at the back), so each of those hubs logs, in
//! order, that the context's events were lost on the way and its clients refetch.

use crate::effects::HubDelivery;
use std::collections::VecDeque;
use std::rc::Rc;

/// Events waiting in one conversation's queue to hubs.
pub const MAX_HUB_OUTBOX: usize = 256;
/// The event a hub is sent in place of the events it lost (`docs/events.md`).
pub const RESYNC_EVENT: &str = "context.resync";

/// One entry: an event, or the notice that replaced events its watchers would have been sent.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Event(HubDelivery),
    Resync { context: String, watchers: Vec<String> },
}

#[derive(Debug, Default)]
pub struct HubOutbox {
    queue: VecDeque<Outgoing>,
    /// Typing and presence events dropped for room (ever, in this instance).
    pub dropped: u64,
    /// Events replaced by a `context.resync` notice (ever, in this instance).
    pub replaced: u64,
}

fn droppable(o: &Outgoing) -> bool {
    matches!(o, Outgoing::Event(d) if d.ephemeral || d.event.starts_with("presence."))
}

impl HubOutbox {
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn pop(&mut self) -> Option<Outgoing> {
        self.queue.pop_front()
    }

    /// Queues `d` within the bound (see the module comment).
    pub fn push(&mut self, d: HubDelivery) {
        if self.queue.len() < MAX_HUB_OUTBOX {
            self.queue.push_back(Outgoing::Event(d));
            return;
        }
        if d.ephemeral {
            self.dropped += 1;
            return;
        }
        if let Some(i) = self.queue.iter().position(droppable) {
            self.queue.remove(i);
            self.dropped += 1;
            self.queue.push_back(Outgoing::Event(d));
            return;
        }
        self.replaced += 1;
        if !matches!(self.queue.back(), Some(Outgoing::Resync { context, .. }) if *context == d.context) {
            // Room for the notice: the oldest entry goes too, into a notice at the back.
            if let Some(oldest) = self.queue.pop_front() {
                match oldest {
                    Outgoing::Event(o) => self.notice(o.context, o.watchers.to_vec()),
                    Outgoing::Resync { context, watchers } => self.notice(context, watchers),
                }
            }
        }
        self.notice(d.context, d.watchers.to_vec());
    }

    /// A `context.resync` notice for `lost` at the back: merged into the last entry when that is a
    /// notice for the same context, else a new entry.
    fn notice(&mut self, context: String, lost: Vec<String>) {
        if let Some(Outgoing::Resync { context: c, watchers }) = self.queue.back_mut() {
            if *c == context {
                for w in lost {
                    if !watchers.contains(&w) {
                        watchers.push(w);
                    }
                }
                return;
            }
        }
        self.queue.push_back(Outgoing::Resync { context, watchers: lost });
    }
}

/// The watchers of an event, shared by every entry made from it.
pub fn watchers(list: &[&str]) -> Rc<Vec<String>> {
    Rc::new(list.iter().map(|s| s.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &'static str, n: usize, ephemeral: bool) -> HubDelivery {
        HubDelivery {
            context: "/kiloclaw/sb/c".into(),
            event: name,
            payload: json!({"n": n}),
            ephemeral,
            watchers: watchers(&["alice", "bob"]),
        }
    }

    fn drain(o: &mut HubOutbox) -> Vec<Outgoing> {
        std::iter::from_fn(|| o.pop()).collect()
    }

    #[test]
    fn under_the_bound_everything_goes_in_order() {
        let mut o = HubOutbox::default();
        for n in 0..MAX_HUB_OUTBOX {
            o.push(event("message.created", n, false));
        }
        let out = drain(&mut o);
        assert_eq!(out.len(), MAX_HUB_OUTBOX);
        for (n, e) in out.iter().enumerate() {
            assert!(matches!(e, Outgoing::Event(d) if d.payload["n"] == n), "{n}");
        }
    }

    #[test]
    fn typing_and_presence_go_first_never_messages() {
        let mut o = HubOutbox::default();
        o.push(event("typing", 0, true));
        o.push(event("presence.joined", 1, false));
        for n in 2..MAX_HUB_OUTBOX {
            o.push(event("message.created", n, false));
        }
        o.push(event("typing", 999, true));
        assert_eq!(o.len(), MAX_HUB_OUTBOX);
        o.push(event("message.created", 1000, false));
        o.push(event("message.created", 1001, false));
        assert_eq!((o.dropped, o.replaced), (3, 0));
        let out = drain(&mut o);
        assert_eq!(out.len(), MAX_HUB_OUTBOX);
        assert!(out.iter().all(|e| matches!(e, Outgoing::Event(d) if d.event == "message.created")));
        assert!(matches!(out.last(), Some(Outgoing::Event(d)) if d.payload["n"] == 1001));
    }

    #[test]
    fn a_message_overflow_becomes_one_resync_for_its_watchers_never_silence() {
        let mut o = HubOutbox::default();
        for n in 0..MAX_HUB_OUTBOX {
            o.push(event("message.created", n, false));
        }
        for n in 0..10 {
            let mut e = event("message.updated", 5000 + n, false);
            if n == 9 {
                e.watchers = watchers(&["carol"]);
            }
            o.push(e);
        }
        assert_eq!(o.replaced, 10);
        assert!(o.len() <= MAX_HUB_OUTBOX);
        let out = drain(&mut o);
        // Events still queued are in order; the lost ones are one notice, at the back, naming
        // every watcher of every event lost (the oldest entry made room for it).
        let Some(Outgoing::Resync { context, watchers }) = out.last() else { panic!("{:?}", out.last()) };
        assert_eq!(context, "/kiloclaw/sb/c");
        assert_eq!(watchers, &vec!["alice".to_string(), "bob".into(), "carol".into()]);
        let kept: Vec<i64> = out
            .iter()
            .filter_map(|e| match e {
                Outgoing::Event(d) => d.payload["n"].as_i64(),
                _ => None,
            })
            .collect();
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "in order");
        assert_eq!(out.iter().filter(|e| matches!(e, Outgoing::Resync { .. })).count(), 1);
    }
}
