//! The member's state machine: every decision of the `MemberObject`, natively.
//!
//! A [`Member`] owns a [`Store`] (the object's SQLite database) and what it keeps in memory (the
//! hub's caches and per-socket counters, [`hub::HubMemory`]). Each command takes its arguments and
//! a [`Ctx`] (the time, random bits, and the sockets the runtime holds for this object, as read from
//! their attachments), commits its writes in one transaction, and answers together with the
//! [`Effects`] the Durable Object must carry out: frames to send to which sockets, sockets to close,
//! watch calls to conversations, the latest time the alarm may fire. A failed command answers an
//! error, leaves storage as it was and has no effects.
//!
//! The Durable Object in `src/member/` is the shell. Nothing here reads a clock or draws randomness.
//!
//! Files: [`commands`] (what the worker asks), [`schema`], [`effects`], [`events`] (the instance
//! events the hub makes), [`list`] (the conversation list ordered by activity), [`tickets`]
//! (connect-ticket redemption), [`bot`] (a bot's online status), [`sandbox_users`] (who may use a
//! sandbox), [`hub`] (the user's event hub: sessions, the per-user log, resume, the stale-socket
//! sweep, watching conversations), [`limits`] (conversation creations, connect tickets, hub frames).

pub mod bot;
pub mod bot_fanout;
pub mod commands;
pub mod effects;
pub mod events;
pub mod hub;
pub mod limits;
pub mod list;
pub mod sandbox_users;
pub mod schema;
pub mod tickets;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use switchboard_core::limits::Limits;
use switchboard_core::rate::Buckets;
use switchboard_core::ApiError;

pub use commands::{Command, ListRepair};
pub use effects::{Effects, Send, WatchCall};
pub use events::InstanceEvent;
pub use switchboard_core::store::{self, Arg, Store, StoreError, StoreExt};

/// One hub socket the runtime holds, as its attachment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub session: String,
    pub connected_at: i64,
    /// A newer connection of the same session took over: this one is closing and no longer speaks
    /// for the session.
    pub replaced: bool,
}

/// What a command takes from the world: the time, random bits, and the object's sockets (`None`:
/// a socket without a readable attachment). Effects name sockets by their index here.
pub struct Ctx<'a> {
    pub now_ms: i64,
    pub random: u128,
    pub sockets: &'a [Option<Socket>],
}

impl Ctx<'static> {
    /// A context with no sockets.
    pub fn at(now_ms: i64, random: u128) -> Ctx<'static> {
        Ctx { now_ms, random, sockets: &[] }
    }
}

pub use switchboard_core::store::Reply;

pub type Outcome<T = Reply> = (Result<T, ApiError>, Effects);

/// One member's state machine over its storage.
pub struct Member<S: Store> {
    pub(crate) store: S,
    pub(crate) hub: hub::HubMemory,
    /// Rate limits and caps in force.
    pub(crate) limits: Limits,
    /// Rate-limit buckets ([`limits`]).
    pub(crate) rates: RefCell<Buckets>,
    /// Effects of the command being run; taken when it commits, dropped when it fails.
    pub(crate) pending: RefCell<Effects>,
    /// The tables are known to exist ([`Member::exists`]).
    schema_ready: std::cell::Cell<bool>,
}

impl<S: Store> Member<S> {
    /// Opens the member over `store`, creating the schema when it is missing.
    pub fn open(store: S) -> Result<Self, StoreError> {
        let m = Self::new(store);
        m.ensure_schema()?;
        Ok(m)
    }

    /// The member over `store` with the default limits, whose schema the caller ensures
    /// ([`Member::ensure_schema`]).
    pub fn new(store: S) -> Self {
        Self::with_limits(store, Limits::DEFAULT)
    }

    /// The member over `store` with these limits.
    pub fn with_limits(store: S, limits: Limits) -> Self {
        Member {
            store,
            hub: hub::HubMemory::default(),
            limits,
            rates: RefCell::new(Buckets::default()),
            pending: RefCell::new(Effects::default()),
            schema_ready: std::cell::Cell::new(false),
        }
    }

    /// Creates the tables that are missing. Called by every command that writes (through
    /// [`Member::command`]) and by the hub's entry points, never by a read: an object asked only
    /// reads (a list, a bot's status, a sandbox's users) of a member it never stored anything for
    /// writes nothing.
    pub fn ensure_schema(&self) -> Result<(), StoreError> {
        if !self.schema_ready.get() {
            self.store.run(schema::SCHEMA, &[])?;
            self.schema_ready.set(true);
        }
        Ok(())
    }

    /// Whether this object holds storage: its tables exist (asked of `sqlite_master`, a read).
    pub fn exists(&self) -> Result<bool, ApiError> {
        if self.schema_ready.get() {
            return Ok(true);
        }
        let found = self.store.has_table("conversations")?;
        if found {
            // Tables added since it was created are made now.
            self.ensure_schema()?;
        }
        Ok(found)
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Runs one command: `body`'s writes commit together, and its effects are answered only if
    /// they did. On failure nothing is written and nothing is effected; the caches of storage are
    /// dropped and the sessions this command would have closed stay open.
    pub(crate) fn command<T>(&self, body: impl FnOnce() -> Result<T, ApiError>) -> Outcome<T> {
        if let Err(e) = self.ensure_schema() {
            return (Err(e.into()), Effects::default());
        }
        self.pending.replace(Effects::default());
        let closed_before = self.hub.closed.borrow().clone();
        let result = store::atomically(&self.store, body);
        let effects = self.pending.replace(Effects::default());
        match result {
            Ok(v) => (Ok(v), effects),
            Err(e) => {
                self.hub.forget(closed_before);
                (Err(e), Effects::default())
            }
        }
    }

    /// Runs a command from the worker or another object.
    pub fn handle(&self, command: Command, ctx: &Ctx) -> Outcome {
        use Command as C;
        // Changes to a list entry of a member with no storage have nothing to change: answered as
        // done, writing nothing (the reads answer their empty answers: `list`, `bot`, `sandbox_users`).
        if matches!(command, C::Remove { .. } | C::Touch { repair: None, .. } | C::MarkRead { .. }) {
            match self.exists() {
                Ok(false) => return (Ok(Reply::no_content()), Effects::default()),
                Ok(true) => {}
                Err(e) => return (Err(e), Effects::default()),
            }
        }
        match command {
            C::Upsert { conversation_id, sandbox_id, title, joined_at, last_activity_at, added_by } => {
                let row =
                    list::Row { conversation_id, sandbox_id, title, last_activity_at, last_read_at: None, joined_at };
                self.upsert(row, added_by, ctx)
            }
            C::Remove { conversation_id, removed_by } => self.remove(&conversation_id, removed_by, ctx),
            C::Touch { conversation_id, title, last_activity_at, repair } => {
                self.touch(&conversation_id, title, last_activity_at, repair, ctx)
            }
            C::List { sandbox_id, limit, cursor } => {
                (self.list(sandbox_id.as_deref(), limit, cursor.as_deref()), Effects::default())
            }
            C::MarkRead { conversation_id, member_id, last_read_at } => {
                self.mark_read(&conversation_id, &member_id, last_read_at, ctx)
            }
            C::Deliver { context, event, payload, ephemeral } => self.command(|| {
                self.deliver(ctx, &context, &event, &payload, ephemeral)?;
                Ok(Reply::no_content())
            }),
            C::DeliverAll { events } => self.deliver_all(ctx, &events),
            C::SetBotStatus { online, at } => self.set_bot_status(online, at, ctx.now_ms),
            C::GetBotStatus => (self.bot_status(), Effects::default()),
            C::SetSandboxUsers { users } => self.set_sandbox_users(&users),
            C::SandboxAccess { sandbox_id, user, open_unlisted } => {
                (self.sandbox_access(&sandbox_id, &user, open_unlisted), Effects::default())
            }
            C::RedeemTicket { nonce, expires_at_ms } => self.redeem_ticket(&nonce, expires_at_ms, ctx.now_ms),
            C::Allow { what } => self.allow(what, ctx.now_ms),
        }
    }

    pub(crate) fn exec(&self, query: &str, args: &[Arg]) -> Result<usize, ApiError> {
        Ok(self.store.run(query, args)?)
    }

    pub(crate) fn query<T: serde::de::DeserializeOwned>(&self, query: &str, args: &[Arg]) -> Result<Vec<T>, ApiError> {
        Ok(self.store.rows(query, args)?)
    }

    pub(crate) fn scalar(&self, query: &str, args: &[Arg]) -> Result<Option<i64>, ApiError> {
        Ok(self.store.scalar(query, args)?)
    }
}
