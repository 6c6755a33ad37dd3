//! Which conversations this user's hub follows: a conversation is *watched* while an open session
//! (or one closed within the resume window, so its missed events are logged for it) subscribes to
//! its event or presence context, and the user is *present* in it while an open session subscribes
//! to its presence context. Changes are stored (`hub_watch`) and told to the conversation.

use crate::effects::WatchCall;
use crate::store::Store;
use crate::{Ctx, Member, Outcome};
use serde::Deserialize;
use std::collections::BTreeMap;
use switchboard_core::hub::{self, contexts, Context};
use switchboard_core::ApiError;

impl<S: Store> Member<S> {
    /// Compares what the sessions want with what conversations were told, stores the difference and
    /// asks for a watch call per changed conversation. `open` are the sessions with a socket open.
    pub(crate) fn sync_watches(&self, open: &[String], now: i64) -> Result<(), ApiError> {
        let Some(member) = self.member_id()? else { return Ok(()) };
        #[derive(Deserialize)]
        struct S {
            session: String,
        }
        let resumable: Vec<String> = self
            .query::<S>(
                "SELECT session FROM hub_sessions WHERE closed_at IS NOT NULL AND closed_at > ?",
                &[(now - hub::RESUME_KEEP_MS).into()],
            )?
            .into_iter()
            .map(|s| s.session)
            .collect();
        // conversation → (watching, present)
        let mut wanted: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for (session, is_open) in open.iter().map(|s| (s, true)).chain(resumable.iter().map(|s| (s, false))) {
            for ctx in self.subs(session)?.iter().filter_map(|c| Context::parse(c)) {
                if let Some(conv) = ctx.conversation_id() {
                    let entry = wanted.entry(conv.to_string()).or_insert((false, false));
                    entry.0 = true;
                    if is_open && matches!(ctx, Context::PresenceConversation { .. }) {
                        entry.1 = true;
                    }
                }
            }
        }
        #[derive(Deserialize)]
        struct W {
            conversation_id: String,
            watching: i64,
            present: i64,
        }
        let known: Vec<W> = self.query("SELECT conversation_id, watching, present FROM hub_watch", &[])?;
        let mut changes: Vec<(String, bool, bool)> = Vec::new();
        for w in &known {
            let now = wanted.get(&w.conversation_id).copied().unwrap_or((false, false));
            if now != (w.watching != 0, w.present != 0) {
                changes.push((w.conversation_id.clone(), now.0, now.1));
            }
        }
        for (conv, (watching, present)) in &wanted {
            if !known.iter().any(|w| &w.conversation_id == conv) {
                changes.push((conv.clone(), *watching, *present));
            }
        }
        for (conv, watching, present) in changes {
            if watching || present {
                self.exec(
                    "INSERT OR REPLACE INTO hub_watch (conversation_id, watching, present) VALUES (?, ?, ?)",
                    &[conv.as_str().into(), watching.into(), present.into()],
                )?;
            } else {
                self.exec("DELETE FROM hub_watch WHERE conversation_id = ?", &[conv.as_str().into()])?;
            }
            self.pending.borrow_mut().watches.push(WatchCall {
                member: member.clone(),
                conversation_id: conv,
                watching,
                present,
            });
        }
        Ok(())
    }

    /// The member left a conversation: no session subscribes to it any more.
    pub(crate) fn forget_conversation(
        &self,
        ctx: &Ctx,
        sandbox_id: &str,
        conversation_id: &str,
    ) -> Result<(), ApiError> {
        let event = contexts::conversation(sandbox_id, conversation_id);
        let presence = contexts::presence(&event);
        for c in [&event, &presence] {
            self.exec("DELETE FROM hub_subs WHERE context = ?", &[c.as_str().into()])?;
        }
        for subs in self.hub.subs.borrow_mut().values_mut() {
            subs.remove(&event);
            subs.remove(&presence);
        }
        self.sync_watches(&self.open_sessions(ctx), ctx.now_ms)
    }

    /// A watch call failed (an error or an answer other than 2xx): the conversation may still
    /// believe what it was told before. The stored row is set to a state other than the one the
    /// call carried, so that the next comparison (`sync_watches`: the next change of the hub's
    /// subscriptions, or the sweep, due `WATCH_RETRY_MS` from now) sends the call again. A call
    /// that was applied and only its answer lost is sent again too, which changes nothing.
    pub fn watch_failed(&self, call: &WatchCall, now: i64) -> Outcome<()> {
        self.command(|| {
            let other = match (!call.watching, !call.present) {
                (false, false) => (true, false),
                flipped => flipped,
            };
            self.exec(
                "INSERT OR REPLACE INTO hub_watch (conversation_id, watching, present) VALUES (?, ?, ?)",
                &[call.conversation_id.as_str().into(), other.0.into(), other.1.into()],
            )?;
            self.pending.borrow_mut().alarm_by(now + WATCH_RETRY_MS);
            Ok(())
        })
    }
}

/// A failed watch call is sent again after this long (by the sweep) at the latest.
pub const WATCH_RETRY_MS: i64 = 5_000;
