//! The member's event hub: kilo-chat's event service, one object per user (`docs/events.md`).
//!
//! A user keeps one hibernatable socket per tab or device. Each socket belongs to a *session* whose
//! subscribed contexts are stored, so a reconnect with `?session=&since=` restores them and replays
//! exactly the events it missed from the user's log (one `seq` per user). Conversation events
//! arrive from the conversations this user watches; instance events are made here from list
//! changes (`crate::list`).
//!
//! Files: [`sessions`] (connect, frames from clients, closes), [`resume`] (what a reconnecting
//! socket is sent first), [`log`] (the per-user seq and log, delivering an event to sockets),
//! [`watch`] (telling conversations whether this user follows them), [`sweep`] (stale sockets and
//! expired sessions).
//!
//! Invariants: a socket's attachment holds only `{session, connectedAt, replaced}`; what
//! [`HubMemory`] holds is rebuilt from storage (subscriptions) or only relaxes limits when lost
//! (ack windows start afresh, last-seen times fall back to pings and connect times).

pub mod log;
pub mod resume;
pub mod sessions;
pub mod sweep;
pub mod watch;

use crate::store::Store;
use crate::{Ctx, Member};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use switchboard_core::hub::AckWindow;
use switchboard_core::ApiError;

/// Memory the hub may lose at any time.
#[derive(Default)]
pub struct HubMemory {
    /// Each session's subscribed contexts, as stored.
    pub(crate) subs: RefCell<HashMap<String, BTreeSet<String>>>,
    /// Per session: the seqs sent and not yet acked.
    pub(crate) acks: RefCell<HashMap<String, AckWindow>>,
    /// Sessions whose socket we closed ourselves and no longer deliver to.
    pub(crate) closed: RefCell<HashSet<String>>,
    /// When each session's socket last sent a frame.
    pub(crate) last_seen: RefCell<HashMap<String, i64>>,
    /// The user's latest seq, as stored.
    pub(crate) seq: RefCell<Option<u64>>,
}

impl HubMemory {
    /// A command failed: drop what mirrors storage, start ack windows afresh (only more lenient),
    /// and put back the set of sessions we closed as it was before the command.
    pub(crate) fn forget(&self, closed_before: HashSet<String>) {
        self.subs.borrow_mut().clear();
        self.acks.borrow_mut().clear();
        self.seq.replace(None);
        self.closed.replace(closed_before);
    }
}

impl<S: Store> Member<S> {
    /// The member this object belongs to, recorded at the first connect.
    pub(crate) fn member_id(&self) -> Result<Option<String>, ApiError> {
        #[derive(Deserialize)]
        struct M {
            member_id: String,
        }
        Ok(self
            .query::<M>("SELECT member_id FROM hub_identity WHERE id = 1", &[])?
            .into_iter()
            .next()
            .map(|m| m.member_id))
    }

    /// A session's subscribed contexts, from memory after the first read.
    pub(crate) fn subs(&self, session: &str) -> Result<BTreeSet<String>, ApiError> {
        if let Some(s) = self.hub.subs.borrow().get(session) {
            return Ok(s.clone());
        }
        #[derive(Deserialize)]
        struct C {
            context: String,
        }
        let rows: Vec<C> = self.query("SELECT context FROM hub_subs WHERE session = ?", &[session.into()])?;
        let set: BTreeSet<String> = rows.into_iter().map(|r| r.context).collect();
        self.hub.subs.borrow_mut().insert(session.to_string(), set.clone());
        Ok(set)
    }

    /// Whether the socket at `index` speaks for its session: attached, not replaced, and not
    /// closed by us. Answers its session.
    pub(crate) fn live_session<'c>(&self, ctx: &'c Ctx, index: usize) -> Option<&'c str> {
        let s = ctx.sockets.get(index)?.as_ref()?;
        if s.replaced || self.hub.closed.borrow().contains(&s.session) {
            return None;
        }
        Some(&s.session)
    }

    /// The sessions with a socket open (sorted, once each).
    pub(crate) fn open_sessions(&self, ctx: &Ctx) -> Vec<String> {
        let mut out: Vec<String> =
            (0..ctx.sockets.len()).filter_map(|i| self.live_session(ctx, i)).map(str::to_string).collect();
        out.sort();
        out.dedup();
        out
    }

    /// A session's socket is gone (or we closed it): it is resumable from now, for a while.
    pub(crate) fn session_ended(&self, session: &str, now: i64) -> Result<(), ApiError> {
        self.exec("UPDATE hub_sessions SET closed_at = ? WHERE session = ?", &[now.into(), session.into()])?;
        self.hub.closed.borrow_mut().insert(session.to_string());
        self.hub.acks.borrow_mut().remove(session);
        Ok(())
    }
}
