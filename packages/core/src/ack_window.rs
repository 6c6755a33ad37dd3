//! A hub socket's ack accounting (`docs/events.md`, acks): which events were sent and not yet
//! acked, and when a socket must be closed for too many (4002, more than `MAX_UNACKED` after a
//! first ack). Bounded by construction, however long a client goes without acking.

use crate::hub::MAX_UNACKED;
use std::collections::VecDeque;

/// Seqs an [`AckWindow`] holds one by one: enough to tell more than `MAX_UNACKED` unacked from that.
const ACK_SEQS_HELD: usize = MAX_UNACKED + 1;

/// Per-socket ack accounting: the seqs sent and not yet acked. Bounded by construction: only the
/// newest `MAX_UNACKED + 1` are held one by one (a client that never acks lets them pile up, and
/// the 4002 close applies only after a first ack); older ones are summed up in [`Older`]. The
/// close decision is exactly that of a window holding every seq: more than `MAX_UNACKED` unacked.
#[derive(Debug, Default, Clone)]
pub struct AckWindow {
    /// The newest unacked seqs, oldest first (seqs are sent in increasing order).
    unacked: VecDeque<u64>,
    /// Unacked seqs older than all of `unacked`, no longer held one by one. While it is `Some`,
    /// `unacked` holds `ACK_SEQS_HELD` seqs (an ack that releases one of them releases all these).
    older: Option<Older>,
    acked_once: bool,
}

/// The unacked seqs an [`AckWindow`] let go of: all within `lowest..=highest` (`highest` is one of
/// them), and how many acks into that range may still count as releasing events (one per event at
/// most, as when each seq is held).
#[derive(Debug, Clone, Copy)]
struct Older {
    lowest: u64,
    highest: u64,
    acks_left: u64,
}

impl AckWindow {
    /// Records a sent event; answers `true` when the socket must be closed (4002).
    pub fn sent(&mut self, seq: u64) -> bool {
        self.unacked.push_back(seq);
        if self.unacked.len() > ACK_SEQS_HELD {
            if let Some(dropped) = self.unacked.pop_front() {
                self.older = Some(match self.older {
                    Some(o) => Older { highest: dropped, acks_left: o.acks_left + 1, ..o },
                    None => Older { lowest: dropped, highest: dropped, acks_left: 1 },
                });
            }
        }
        self.acked_once && self.unacked.len() > MAX_UNACKED
    }

    /// Whether an ack of `seq` would release an event sent and not yet acked (among the seqs no
    /// longer held one by one, it may only seem to: at most once per event sent).
    pub fn releases(&self, seq: u64) -> bool {
        self.older.is_some_and(|o| o.lowest <= seq) || self.unacked.front().is_some_and(|s| *s <= seq)
    }

    pub fn ack(&mut self, seq: u64) {
        self.acked_once = true;
        if let Some(o) = &mut self.older {
            if seq >= o.highest {
                self.older = None;
            } else if seq >= o.lowest {
                // Which of them are released is not known: acks that seem to release run out.
                o.lowest = seq + 1;
                o.acks_left -= 1;
                if o.acks_left == 0 {
                    self.older = None;
                }
            }
        }
        while self.unacked.front().is_some_and(|s| *s <= seq) {
            self.unacked.pop_front();
        }
    }

    /// The events sent and not yet acked, counted up to `MAX_UNACKED + 1` (all the 4002 close needs).
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_window_is_bounded_and_decides_as_if_it_held_every_seq() {
        // Never acked: only the newest MAX_UNACKED + 1 seqs are held, however many are sent.
        let mut w = AckWindow::default();
        for s in 1..=100_000 {
            assert!(!w.sent(s), "no ack yet: never close");
        }
        assert_eq!((w.unacked(), w.unacked.len()), (MAX_UNACKED + 1, MAX_UNACKED + 1));
        assert!(w.releases(1) && !w.releases(0), "the oldest unacked is still known");
        // A first ack that leaves more than MAX_UNACKED unacked: the next event closes, as when
        // every seq is held.
        let mut a = w.clone();
        a.ack(50_000);
        assert!(a.releases(50_001) && !a.releases(50_000));
        assert!(a.sent(100_001));
        // One that leaves MAX_UNACKED - 1: one more event fits, the next closes.
        let mut b = w.clone();
        b.ack(100_000 - MAX_UNACKED as u64 + 1);
        assert_eq!(b.unacked(), MAX_UNACKED - 1);
        assert!(!b.releases(100_000 - MAX_UNACKED as u64 + 1), "a repeated ack releases nothing");
        assert!(!b.sent(100_001));
        assert!(b.sent(100_002));
        // A client acking each seq in turn releases one event with every ack, older ones included.
        let mut c = w.clone();
        for s in 1..=100_000 {
            assert!(c.releases(s), "{s}");
            c.ack(s);
            assert!(!c.releases(s), "{s}");
        }
        assert_eq!(c.unacked(), 0);
        // Acks of seqs never sent may seem to release an older one, at most once per event sent.
        let mut d = AckWindow::default();
        for s in (2..=2_000).step_by(2) {
            d.sent(s);
        }
        let mut free = 0;
        for s in 1..=2_000 {
            free += usize::from(d.releases(s));
            d.ack(s);
        }
        assert_eq!(free, 1_000);
    }

    #[test]
    fn ack_window_closes_only_after_a_first_ack() {
        let mut w = AckWindow::default();
        for s in 1..=100 {
            assert!(!w.sent(s), "no ack yet: never close");
        }
        w.ack(100);
        assert_eq!(w.unacked(), 0);
        for s in 101..=150 {
            assert!(!w.sent(s));
        }
        assert!(w.sent(151), "51 unacked after a first ack");
        w.ack(140);
        assert_eq!(w.unacked(), 11);
    }
}
