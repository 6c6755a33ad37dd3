//! The live channel's state machine: every decision of the `LiveChannelObject`, natively.
//!
//! A [`LiveChannel`] holds what the object keeps in memory (nothing is stored): the publishes in
//! progress with their recent lines, and each subscriber's window of unacknowledged frames. Its
//! methods take the time and the runtime's socket tags where they need them, and answer the
//! [`Effect`]s the Durable Object must carry out: frames to every socket or to the one that spoke,
//! closes with their codes, and the answers of publishes.
//!
//! The Durable Object in `src/live/` is the shell: it asks the conversation and the bot's object
//! whether a caller is admitted ([`admission`]), reads publish bodies, sleeps when the core asks it
//! to wait for room, and turns effects into runtime calls.
//!
//! Files: [`admission`] (who may publish or subscribe, and the answer of each refusal),
//! [`effects`] (what the shell carries out), [`subscribers`] (windows, acks, closes, bot offline),
//! [`publish`] (a publish's lines, the wait for room, the answer), [`idle`] (the publisher's idle
//! timeout, enforced by the worker that forwards the body).

pub mod admission;
pub mod effects;
pub mod idle;
pub mod publish;
pub mod subscribers;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use switchboard_core::live::SubscriberWindow;

pub use effects::Effect;
pub use publish::{Ended, Finished, PublishAnswer, PublishId, Step};

/// Every subscriber socket is tagged `s:<random>`; refused sockets (closed at once) have no tag.
pub const SUBSCRIBER_TAG_PREFIX: &str = "s:";

/// How often a publish waiting for a subscriber's acks looks again.
pub const ROOM_POLL_MS: u64 = 5;

/// What a call takes from the world: the time, and the tags of the sockets the runtime holds for
/// this object (asked only the first time the windows are needed after the object started).
pub struct Ctx<'a> {
    pub now_ms: i64,
    pub socket_tags: &'a dyn Fn() -> Vec<String>,
}

impl Ctx<'static> {
    /// A context whose runtime holds no sockets.
    pub fn at(now_ms: i64) -> Ctx<'static> {
        Ctx { now_ms, socket_tags: &no_sockets }
    }
}

fn no_sockets() -> Vec<String> {
    Vec::new()
}

/// Every subscriber socket is also tagged with its member, so a member's subscriptions can be
/// closed at once when they leave or are removed.
pub const MEMBER_TAG_PREFIX: &str = "m:";

/// The tag of `member`'s subscriber sockets.
pub fn member_tag(member: &str) -> String {
    format!("{MEMBER_TAG_PREFIX}{member}")
}

/// The subscriber tag among a socket's tags.
pub fn subscriber_tag(tags: impl IntoIterator<Item = String>) -> Option<String> {
    tags.into_iter().find(|t| t.starts_with(SUBSCRIBER_TAG_PREFIX))
}

/// One conversation's live channel.
#[derive(Default)]
pub struct LiveChannel {
    /// Publishes in progress, by arrival order.
    pub(crate) publishes: RefCell<BTreeMap<PublishId, publish::Publish>>,
    pub(crate) next_publish: Cell<u64>,
    /// Bumped when the bot goes offline; a publish that sees it change stops.
    pub(crate) offline_epoch: Cell<u64>,
    /// What each subscriber (by its socket tag) was sent and has not acknowledged. `None` until
    /// first needed after the object started: then built from the sockets' tags (a subscriber that
    /// joined before a hibernation starts afresh, which only errs on the lenient side).
    pub(crate) windows: RefCell<Option<HashMap<String, SubscriberWindow>>>,
}

impl LiveChannel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` over the windows, building them from the sockets' tags the first time.
    pub(crate) fn with_windows<T>(&self, ctx: &Ctx, f: impl FnOnce(&mut HashMap<String, SubscriberWindow>) -> T) -> T {
        let mut windows = self.windows.borrow_mut();
        let map = windows.get_or_insert_with(|| {
            (ctx.socket_tags)()
                .into_iter()
                .filter(|t| t.starts_with(SUBSCRIBER_TAG_PREFIX))
                .map(|t| (t, SubscriberWindow::default()))
                .collect()
        });
        f(map)
    }

    /// How many subscribers have a window (test and inspection aid).
    pub fn subscriber_count(&self, ctx: &Ctx) -> usize {
        self.with_windows(ctx, |w| w.len())
    }
}
