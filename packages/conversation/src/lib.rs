//! The conversation's state machine: every decision of the `ConversationObject`, natively.
//!
//! A [`Conversation`] owns a [`Store`] (the object's SQLite database) and what it keeps in memory
//! (caches of that storage, the connected-members cache). Each command takes the caller, its
//! arguments and a [`Ctx`] (the time, random bits, and a way to list the members with a socket
//! open), commits its writes in one transaction, and answers a [`Reply`] together with the
//! [`Effects`] the Durable Object must carry out: frames to broadcast, events for watching hubs, a
//! push request, sockets to close, the latest time the alarm may fire. A failed command answers
//! an error, leaves storage as it was (the transaction rolls back) and has no effects.
//!
//! The Durable Object in `src/conversation/` is the shell: it turns requests and socket frames into
//! these calls, and effects into runtime calls. Nothing here reads a clock or draws randomness.
//!
//! Files: [`commands`] (what the worker asks), `switchboard_core::store` (the storage port), [`schema`],
//! [`cache`] (what is mirrored in memory and when it is dropped), [`effects`] (what a command asks
//! the shell to do), [`members`] (create, rename, add, leave, detail), [`messages`] (send, edit,
//! delete, list, reactions, read positions), [`presence`] (hub watching, roster, typing),
//! [`sockets`] (accept and resume, incoming frames, closes), [`fanout`] (events, frames, pushes),
//! [`alarm`] (typing expiry, idempotency sweep, the list flush), [`outbox`] (the bounded queue to
//! watching hubs), [`push`] (pushes recorded with their message, delivered by the alarm), [`bridges`] (rooms of other
//! platforms linked to the conversation, their messages in, members' messages out), [`limits`]
//! (rate limits per member and per connection, the socket and reaction caps).

pub mod alarm;
pub mod bridges;
pub mod cache;
pub mod commands;
pub mod effects;
pub mod fanout;
pub mod hub_retry;
pub mod limits;
pub mod members;
pub mod messages;
pub mod outbox;
pub mod presence;
pub mod push;
pub mod reactions;
pub mod schema;
pub mod sockets;

#[cfg(test)]
mod tests;

use std::cell::RefCell;

use switchboard_core::connected::ConnectedMembers;
use switchboard_core::limits::Limits;
use switchboard_core::ApiError;

pub use commands::Command;
pub use effects::{Effects, HubDelivery};
pub use switchboard_core::store::{self, Arg, Store, StoreError, StoreExt};

/// Settings read once from the deployment's vars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Lifetime of send-idempotency records.
    pub idem_ttl_ms: i64,
    /// Base delay before members' conversation lists learn of new activity.
    pub activity_flush_ms: i64,
    /// Delay from a list flush to the background reconcile of members' lists (`alarm`).
    pub list_reconcile_ms: i64,
    /// Rate limits and caps.
    pub limits: Limits,
}

/// What a command takes from the world: the time, random bits, and the members of the sockets the
/// runtime holds for this object (asked only when the connected cache is stale).
pub struct Ctx<'a> {
    pub now_ms: i64,
    pub random: u128,
    pub socket_members: &'a dyn Fn() -> Vec<String>,
}

impl<'a> Ctx<'a> {
    /// A context whose socket list is empty (commands that never ask for it).
    pub fn at(now_ms: i64, random: u128) -> Ctx<'static> {
        Ctx { now_ms, random, socket_members: &no_sockets }
    }
}

fn no_sockets() -> Vec<String> {
    Vec::new()
}

pub use switchboard_core::store::Reply;

/// One conversation's state machine over its storage.
pub struct Conversation<S: Store> {
    pub(crate) store: S,
    pub(crate) config: Config,
    pub(crate) cache: cache::Cache,
    pub(crate) connected: RefCell<ConnectedMembers>,
    /// Rate-limit buckets and the typing throttle's memory ([`limits`]).
    pub(crate) rates: RefCell<limits::RateMemory>,
    /// Effects of the command being run; taken when it commits, dropped when it fails.
    pub(crate) pending: RefCell<Effects>,
    /// The schema is known to exist and be up to date (see [`Conversation::exists`]).
    schema_ready: std::cell::Cell<bool>,
    /// When the list flush is due (one flush period after the first change it has not served):
    /// an alarm that fires earlier (a push, typing) does not start a pass before it. Memory only:
    /// lost on hibernation, the next alarm flushes (only sooner).
    pub(crate) flush_due: std::cell::Cell<Option<i64>>,
    /// Pushes this instance handed out and has not settled, with the end of each claim (`push`).
    /// Memory only: a restart ends them with the deliveries they guarded.
    pub(crate) push_claims: RefCell<std::collections::BTreeMap<String, i64>>,
}

impl<S: Store> Conversation<S> {
    /// Opens the conversation over `store`, creating the schema when it is missing.
    pub fn open(store: S, config: Config) -> Result<Self, StoreError> {
        let c = Self::new(store, config);
        c.ensure_schema()?;
        Ok(c)
    }

    /// The conversation over `store`. Nothing is written until a `Create` arrives: an object that
    /// only ever answers reads of a conversation never created stays without storage
    /// ([`Conversation::exists`]).
    pub fn new(store: S, config: Config) -> Self {
        Conversation {
            store,
            config,
            cache: cache::Cache::default(),
            connected: RefCell::new(ConnectedMembers::new()),
            rates: RefCell::new(limits::RateMemory::default()),
            pending: RefCell::new(Effects::default()),
            schema_ready: std::cell::Cell::new(false),
            flush_due: std::cell::Cell::new(None),
            push_claims: RefCell::new(std::collections::BTreeMap::new()),
        }
    }

    /// Whether this object holds a conversation's storage: its tables exist (asked of
    /// `sqlite_master`, a read). The first time they are found, migrations not yet applied are
    /// applied (an object created before a deploy). An object whose tables do not exist answers
    /// every command but `Create` 404 and writes nothing, so reading an id that was never created
    /// leaves no storage and sets no alarm.
    pub fn exists(&self) -> Result<bool, ApiError> {
        if self.schema_ready.get() {
            return Ok(true);
        }
        let found = self.store.has_table("conversation")?;
        if found {
            self.ensure_schema()?;
        }
        Ok(found)
    }

    /// [`Conversation::exists`], or the 404 of a conversation that was never created.
    pub(crate) fn require_storage(&self) -> Result<(), ApiError> {
        if self.exists()? {
            Ok(())
        } else {
            Err(ApiError::not_found("conversation not found"))
        }
    }

    /// Creates the tables that are missing and applies the migrations not yet applied.
    pub fn ensure_schema(&self) -> Result<(), StoreError> {
        self.store.run(schema::SCHEMA, &[])?;
        let version = self.store.scalar("SELECT version AS v FROM schema_version WHERE id = 1", &[])?.unwrap_or(0);
        for (i, migration) in schema::MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let mut failed = None;
            self.store.atomic(&mut || {
                let r = self.store.run(migration, &[]).and_then(|_| {
                    self.store.run(
                        "INSERT OR REPLACE INTO schema_version (id, version) VALUES (1, ?)",
                        &[(i as i64 + 1).into()],
                    )
                });
                let ok = r.is_ok();
                if let Err(e) = r {
                    failed = Some(e);
                }
                ok
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        self.schema_ready.set(true);
        Ok(())
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Runs one command: `body`'s writes commit together, and its effects are answered only if
    /// they did. On failure nothing is written, nothing is effected, and the in-memory caches of
    /// storage are dropped (they may mirror writes that were rolled back).
    pub(crate) fn command<T>(&self, body: impl FnOnce() -> Result<T, ApiError>) -> (Result<T, ApiError>, Effects) {
        self.pending.replace(Effects::default());
        let result = store::atomically(&self.store, body);
        let effects = self.pending.replace(Effects::default());
        match result {
            Ok(v) => (Ok(v), effects),
            Err(e) => {
                self.cache.clear();
                self.connected.borrow_mut().roster_changed();
                (Err(e), Effects::default())
            }
        }
    }

    /// Runs a command from the worker (HTTP API or another object).
    pub fn handle(&self, caller: &str, command: Command, ctx: &Ctx) -> (Result<Reply, ApiError>, Effects) {
        use Command as C;
        let storage = match &command {
            C::Create { .. } => self.ensure_schema().map_err(ApiError::from),
            _ => self.require_storage(),
        };
        if let Err(e) = storage {
            return (Err(e), Effects::default());
        }
        match command {
            C::Create { conversation_id, sandbox_id, title, members } => {
                self.create(&conversation_id, &sandbox_id, title, caller, &members, ctx.now_ms)
            }
            C::Get => self.read(|| self.detail(caller)),
            C::Rename { title } => self.rename(caller, &title, ctx.now_ms),
            C::AddMember { member } => self.add_member(caller, &member, ctx.now_ms),
            C::Leave => self.leave(caller, ctx.now_ms),
            C::RemoveMember { member } => self.remove_member(caller, &member, ctx.now_ms),
            C::ListMessages { before, limit } => self.read(|| self.list_messages(caller, before.as_deref(), limit)),
            C::SendMessage { content, in_reply_to_message_id, client_id } => {
                let (sent, effects) = self.send(caller, &content, in_reply_to_message_id, client_id, ctx);
                (sent.map(|s| s.reply()), effects)
            }
            C::EditMessage { message_id, content, timestamp } => {
                self.edit_message(caller, &message_id, &content, timestamp, ctx.now_ms)
            }
            C::DeleteMessage { message_id } => self.delete_message(caller, &message_id, ctx.now_ms),
            C::AddReaction { message_id, emoji } => self.add_reaction(caller, &message_id, &emoji, ctx.now_ms),
            C::RemoveReaction { message_id, emoji } => self.remove_reaction(caller, &message_id, &emoji, ctx.now_ms),
            C::MarkRead { message_id } => self.mark_read(caller, &message_id, ctx.now_ms),
            C::Watch { watching, present } => self.watch(caller, watching, present),
            C::Presence => self.read(|| self.roster(caller)),
            C::Typing { stop } => self.typing(caller, stop, ctx.now_ms),
            C::LinkBridge { link } => self.link_bridge(caller, link, ctx),
            C::ListBridges => self.read(|| self.list_bridges(caller)),
            C::UnlinkBridge { bridge_id } => self.unlink_bridge(caller, &bridge_id, ctx.now_ms),
            C::BridgeIngest { bridge_id, item } => self.ingest(&bridge_id, item, ctx),
            C::BridgeStatus { bridge_id, status } => self.bridge_status(&bridge_id, status),
        }
    }

    /// A command that only reads: no transaction, no effects.
    fn read(&self, body: impl FnOnce() -> Result<Reply, ApiError>) -> (Result<Reply, ApiError>, Effects) {
        (body(), Effects::default())
    }
}
