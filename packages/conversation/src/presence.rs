//! Presence: hubs that watch the conversation, who is present through them, and typing.

use crate::effects::Effects;
use crate::store::Store;
use crate::{Conversation, Reply};
use serde::Deserialize;
use serde_json::json;
use switchboard_core::events::Event;
use switchboard_core::{typing, ApiError};

type Outcome = (Result<Reply, ApiError>, Effects);

/// Watchers named with this prefix are relays, not members: the Pusher endpoint's object
/// (`bot:relay:pusher:{appId}`) watches conversations whose channels its sockets subscribed to, after
/// the worker checked each subscriber's membership. No member id starts with it (user ids may not
/// start with `bot:`, bots are `bot:kiloclaw:…`), so no member can pose as a relay.
pub const RELAY_WATCHER_PREFIX: &str = "bot:relay:";

/// Is this watcher a relay (see [`RELAY_WATCHER_PREFIX`])?
pub fn is_relay(watcher: &str) -> bool {
    watcher.starts_with(RELAY_WATCHER_PREFIX)
}

impl<S: Store> Conversation<S> {
    /// A member's hub now watches (or stops watching) this conversation, and is (or is not) present.
    pub(crate) fn watch(&self, caller: &str, watching: bool, present: bool) -> Outcome {
        self.command(|| {
            let was = self.scalar("SELECT present AS v FROM watchers WHERE member_id = ?", &[caller.into()])?;
            let was = was.unwrap_or(0) != 0;
            if !watching && !present {
                // Unwatching needs no membership: a member who left may still be unsubscribing.
                self.cache.watchers.replace(None);
                self.exec("DELETE FROM watchers WHERE member_id = ?", &[caller.into()])?;
                self.pending.borrow_mut().unwatched = Some(caller.to_string());
                if was {
                    self.emit(Event::PresenceLeft { member_id: caller.to_string() })?;
                }
                return Ok(Reply::no_content());
            }
            // A relay (another endpoint's object, which authorized its own sockets) is no member
            // and never present; it only needs the conversation to exist.
            let present = if is_relay(caller) {
                self.meta()?.ok_or_else(|| ApiError::not_found("conversation not found"))?;
                false
            } else {
                self.require_member(caller)?;
                present
            };
            self.cache.watchers.replace(None);
            self.exec(
                "INSERT OR REPLACE INTO watchers (member_id, present) VALUES (?, ?)",
                &[caller.into(), present.into()],
            )?;
            if present && !was {
                self.emit(Event::PresenceJoined { member_id: caller.to_string() })?;
            } else if !present && was {
                self.emit(Event::PresenceLeft { member_id: caller.to_string() })?;
            }
            Ok(Reply::no_content())
        })
    }

    /// `{present: [memberId...]}`: members with a tab or device subscribed to the conversation's
    /// presence.
    pub(crate) fn roster(&self, caller: &str) -> Result<Reply, ApiError> {
        self.require_member(caller)?;
        #[derive(Deserialize)]
        struct W {
            member_id: String,
        }
        let present: Vec<String> = self
            .query::<W>("SELECT member_id FROM watchers WHERE present = 1 ORDER BY member_id", &[])?
            .into_iter()
            .map(|w| w.member_id)
            .collect();
        Ok(Reply::json(200, json!({"present": present})))
    }

    /// `typing` / `typing.stop`: broadcast (throttled per member, whatever stops come between:
    /// `switchboard_core::typing`), and ended by the alarm when the member stops sending `typing`
    /// for the timeout.
    pub(crate) fn typing(&self, caller: &str, stop: bool, now: i64) -> Outcome {
        self.command(|| {
            self.require_member(caller)?;
            #[derive(Deserialize)]
            struct T {
                expires_at: i64,
                last_broadcast_at: i64,
            }
            let current = self
                .query::<T>("SELECT expires_at, last_broadcast_at FROM typing WHERE member_id = ?", &[caller.into()])?
                .into_iter()
                .next()
                .map(|t| typing::Typing { expires_at: t.expires_at, last_broadcast_at: t.last_broadcast_at });
            if stop {
                self.exec("DELETE FROM typing WHERE member_id = ?", &[caller.into()])?;
                if typing::stop(current, now) {
                    self.emit_ephemeral(Event::TypingStop { member_id: caller.to_string() })?;
                }
                return Ok(Reply::no_content());
            }
            let throttle = self.config.limits.typing_throttle_ms;
            let (next, broadcast) = match typing::start(current, self.typing_broadcast_at(caller), now, throttle) {
                typing::Start::Broadcast(t) => (t, true),
                typing::Start::Refresh(t) => (t, false),
                typing::Start::Quiet => return Ok(Reply::no_content()),
            };
            self.exec(
                "INSERT OR REPLACE INTO typing (member_id, expires_at, last_broadcast_at) VALUES (?, ?, ?)",
                &[caller.into(), next.expires_at.into(), next.last_broadcast_at.into()],
            )?;
            if broadcast {
                self.emit_ephemeral(Event::Typing { member_id: caller.to_string() })?;
                self.typing_broadcast(caller, now);
            }
            self.pending.borrow_mut().alarm_by(next.expires_at);
            Ok(Reply::no_content())
        })
    }
}
