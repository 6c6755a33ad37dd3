//! The queue of events on their way to watching hubs, bounded.
//!
//! The shell's pump drains it one entry at a time (one call per watcher), in commit order. It
//! holds at most [`MAX_HUB_OUTBOX`] events: when full, typing (ephemeral) and presence events are
//! dropped first (the newest typing is simply not queued; otherwise the oldest typing or presence
//! event makes room). An event that must not be lost (a message, an edit, a rename...) is never
//! silently dropped: when nothing droppable is left, it is replaced by a `context.resync` notice
//! for its watchers (coalesced with a notice already at the back), so each of those hubs logs, in
//! order, that the context's events were lost on the way and its clients refetch.
//!
//! The pump takes what queued up while its last call was on the way together ([`HubOutbox::take_calls`],
//! at most [`MAX_EVENTS_PER_CALL`] entries): one call per watcher with the events it watched, in
//! order, so a bot's burst reaches each hub as one command (and a hub socket that opted in to
//! batched frames as one text frame). Dropping and notices work on entries as before.

use crate::effects::HubDelivery;
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use switchboard_core::hub::{Delivery, MAX_DELIVERIES_PER_CALL};

/// Events waiting in one conversation's queue to hubs.
pub const MAX_HUB_OUTBOX: usize = 256;
/// The event a hub is sent in place of the events it lost (`docs/events.md`).
pub const RESYNC_EVENT: &str = "context.resync";
/// Entries the pump takes for one round of calls, at most (`switchboard_core::hub`).
pub const MAX_EVENTS_PER_CALL: usize = MAX_DELIVERIES_PER_CALL;

/// One call of the pump: `events`, in order, to each of `watchers` (`deliver_all`).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub watchers: Vec<String>,
    pub events: Vec<Delivery>,
}

impl Outgoing {
    fn watchers(&self) -> &[String] {
        match self {
            Outgoing::Event(d) => &d.watchers,
            Outgoing::Resync { watchers, .. } => watchers,
        }
    }

    /// What a watcher is sent for this entry.
    pub fn delivery(self) -> Delivery {
        match self {
            Outgoing::Event(d) => {
                Delivery { context: d.context, event: d.event.to_string(), payload: d.payload, ephemeral: d.ephemeral }
            }
            Outgoing::Resync { context, .. } => Delivery {
                context,
                event: RESYNC_EVENT.to_string(),
                payload: json!({"reason": "hub queue overflow"}),
                ephemeral: false,
            },
        }
    }
}

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

    /// Takes the oldest entries (at most [`MAX_EVENTS_PER_CALL`]) as the calls that deliver them:
    /// each watcher in exactly one call, with the events of those entries it watched, in order;
    /// watchers sent the same events share a call. Empty when nothing waits.
    pub fn take_calls(&mut self) -> Vec<Call> {
        let n = self.queue.len().min(MAX_EVENTS_PER_CALL);
        let entries: Vec<Outgoing> = self.queue.drain(..n).collect();
        let Some(first) = entries.first() else { return Vec::new() };
        if entries.iter().all(|e| e.watchers() == first.watchers()) {
            // The usual case: every entry has the same watchers (each once: the watchers table's
            // rows, or a notice's merged list), one call body for all.
            if first.watchers().is_empty() {
                return Vec::new();
            }
            let watchers = first.watchers().to_vec();
            return vec![Call { watchers, events: entries.into_iter().map(Outgoing::delivery).collect() }];
        }
        let mut per_watcher: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            for w in e.watchers() {
                let seen = per_watcher.entry(w).or_default();
                if seen.last() != Some(&i) {
                    seen.push(i);
                }
            }
        }
        let mut groups: BTreeMap<Vec<usize>, Vec<String>> = BTreeMap::new();
        for (w, idx) in per_watcher {
            groups.entry(idx).or_default().push(w.to_string());
        }
        let events: Vec<Delivery> = entries.into_iter().map(Outgoing::delivery).collect();
        groups
            .into_iter()
            .map(|(idx, watchers)| Call { watchers, events: idx.iter().map(|&i| events[i].clone()).collect() })
            .collect()
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

    fn sent(calls: &[Call], watcher: &str) -> Vec<(String, i64)> {
        let mine = calls.iter().filter(|c| c.watchers.iter().any(|w| w == watcher));
        let out: Vec<Vec<(String, i64)>> = mine
            .map(|c| c.events.iter().map(|d| (d.event.clone(), d.payload["n"].as_i64().unwrap_or(-1))).collect())
            .collect();
        assert!(out.len() <= 1, "{watcher} is in one call at most: {calls:?}");
        out.into_iter().flatten().collect()
    }

    #[test]
    fn the_pump_takes_what_queued_up_in_one_call_per_watcher_in_order() {
        let mut o = HubOutbox::default();
        assert!(o.take_calls().is_empty());
        for n in 0..30 {
            o.push(event("message.created", n, false));
        }
        let calls = o.take_calls();
        assert_eq!(calls.len(), 1, "same watchers: one call body");
        assert_eq!(calls[0].watchers, vec!["alice".to_string(), "bob".into()]);
        let want: Vec<(String, i64)> = (0..MAX_EVENTS_PER_CALL as i64).map(|n| ("message.created".into(), n)).collect();
        assert_eq!(sent(&calls, "alice"), want);
        assert_eq!(o.len(), 30 - MAX_EVENTS_PER_CALL, "the rest waits for the next round");
        let calls = o.take_calls();
        assert_eq!(sent(&calls, "bob").first().map(|e| e.1), Some(MAX_EVENTS_PER_CALL as i64));
        assert!(o.take_calls().is_empty());
    }

    #[test]
    fn each_watcher_gets_exactly_the_events_it_watched() {
        let mut o = HubOutbox::default();
        let with =
            |n: usize, who: &[&str]| HubDelivery { watchers: watchers(who), ..event("message.created", n, false) };
        o.push(with(0, &["alice", "bob"]));
        o.push(with(1, &["alice"]));
        o.push(event("typing", 2, true));
        o.push(with(3, &["bob", "carol"]));
        o.push(with(4, &[]));
        let calls = o.take_calls();
        let names = |v: Vec<(String, i64)>| v.into_iter().map(|e| e.1).collect::<Vec<_>>();
        assert_eq!(names(sent(&calls, "alice")), vec![0, 1, 2]);
        assert_eq!(names(sent(&calls, "bob")), vec![0, 2, 3]);
        assert_eq!(names(sent(&calls, "carol")), vec![3]);
        assert_eq!(calls.len(), 3);
        assert!(calls.iter().flat_map(|c| &c.events).any(|d| d.event == "typing" && d.ephemeral));
        assert!(o.is_empty());
    }

    #[test]
    fn a_resync_notice_goes_in_its_place_in_the_call() {
        let mut o = HubOutbox::default();
        for n in 0..MAX_HUB_OUTBOX + 3 {
            o.push(event("message.created", n, false));
        }
        let mut all = Vec::new();
        loop {
            let calls = o.take_calls();
            if calls.is_empty() {
                break;
            }
            assert_eq!(calls.len(), 1);
            all.extend(calls[0].events.clone());
        }
        let last = all.last().cloned().unwrap_or_else(|| panic!("nothing delivered"));
        assert_eq!((last.event.as_str(), last.ephemeral), (RESYNC_EVENT, false));
        assert_eq!(last.payload, json!({"reason": "hub queue overflow"}));
        assert_eq!(all.iter().filter(|d| d.event == RESYNC_EVENT).count(), 1);
        let kept: Vec<i64> = all.iter().filter_map(|d| d.payload["n"].as_i64()).collect();
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "in order");
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
