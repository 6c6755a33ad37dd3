//! The alarm: a socket that stops pinging leaves within `STALE_SOCKET_MS + SWEEP_EVERY_MS`, a
//! session closed longer than `RESUME_KEEP_MS` is forgotten (a later resume of it gets `resync`), and
//! what conversations were told is compared again with what the sessions want (a failed watch call
//! goes again).

use crate::store::Store;
use crate::{Ctx, Member, Outcome};
use serde::Deserialize;
use switchboard_core::hub::{self, close};

impl<S: Store> Member<S> {
    /// Runs the sweep at `ctx.now_ms`. `pinged(i)` is when the runtime last answered the `ping` of
    /// the socket at index `i` of `ctx.sockets` (asked only for sockets that may be stale).
    pub fn sweep(&self, ctx: &Ctx, pinged: &dyn Fn(usize) -> Option<i64>) -> Outcome<()> {
        let now = ctx.now_ms;
        self.command(|| {
            let mut any_open = false;
            for (i, socket) in ctx.sockets.iter().enumerate() {
                let Some(s) = socket else { continue };
                if s.replaced {
                    // Already told to close; if its client vanished, say it again and move on.
                    self.pending.borrow_mut().closes.push((i, close::REPLACED, "replaced by a newer connection"));
                    continue;
                }
                if self.hub.closed.borrow().contains(&s.session) {
                    continue;
                }
                let seen = self.hub.last_seen.borrow().get(&s.session).copied();
                let last = [Some(s.connected_at), seen].into_iter().flatten().max().unwrap_or(s.connected_at);
                let last = if now - last > hub::STALE_SOCKET_MS { last.max(pinged(i).unwrap_or(last)) } else { last };
                if now - last > hub::STALE_SOCKET_MS {
                    self.pending.borrow_mut().closes.push((i, close::STALE, "no ping"));
                    self.session_ended(&s.session, now)?;
                } else {
                    any_open = true;
                }
            }
            #[derive(Deserialize)]
            struct S {
                session: String,
            }
            let expired: Vec<S> = self.query(
                "SELECT session FROM hub_sessions WHERE closed_at IS NOT NULL AND closed_at <= ?",
                &[(now - hub::RESUME_KEEP_MS).into()],
            )?;
            for s in &expired {
                self.exec("DELETE FROM hub_subs WHERE session = ?", &[s.session.as_str().into()])?;
                self.exec("DELETE FROM hub_sessions WHERE session = ?", &[s.session.as_str().into()])?;
                self.hub.forget_session(&s.session);
            }
            // Every sweep compares what the sessions want with what conversations were told (cheap
            // when nothing changed): a watch call that failed is sent again (`watch_failed`), even
            // after the object slept in between.
            self.sync_watches(&self.open_sessions(ctx), now)?;
            let mut pending = self.pending.borrow_mut();
            if any_open {
                pending.alarm_by(now + hub::SWEEP_EVERY_MS);
            }
            if let Some(closed) =
                self.scalar("SELECT MIN(closed_at) AS v FROM hub_sessions WHERE closed_at IS NOT NULL", &[])?
            {
                pending.alarm_by(closed + hub::RESUME_KEEP_MS + 1);
            }
            Ok(())
        })
    }
}
