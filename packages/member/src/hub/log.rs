//! The user's event log: one `seq` per user, the last `HUB_REPLAY_WINDOW` frames kept for resume,
//! and delivering an event's one encoded frame to every socket whose session subscribes to its
//! context.

use crate::effects::Send;
use crate::store::Store;
use crate::{Ctx, Member, Outcome, Reply};
use serde_json::Value;
use switchboard_core::hub::{self, close, Delivery, MAX_DELIVERIES_PER_CALL};
use switchboard_core::ApiError;

impl<S: Store> Member<S> {
    /// The user's latest seq (0 before any event), from memory after the first read.
    pub fn latest_seq(&self) -> Result<u64, ApiError> {
        if let Some(s) = *self.hub.seq.borrow() {
            return Ok(s);
        }
        let seq = self.scalar("SELECT seq AS v FROM hub_state WHERE id = 1", &[])?.unwrap_or(0).max(0) as u64;
        self.hub.seq.replace(Some(seq));
        Ok(seq)
    }

    fn next_seq(&self) -> Result<u64, ApiError> {
        let next = self.latest_seq()? + 1;
        // Memory is updated before the write: a failure drops it with the whole command.
        self.hub.seq.replace(Some(next));
        self.exec("INSERT OR REPLACE INTO hub_state (id, seq) VALUES (1, ?)", &[(next as i64).into()])?;
        Ok(next)
    }

    /// Logs an event (unless ephemeral) under the next user seq and asks for its one frame to be
    /// sent to every socket whose session subscribes to `context`. A socket that has let more than
    /// `MAX_UNACKED` events go unacked (after a first ack) is closed with 4002.
    pub(crate) fn deliver(
        &self,
        ctx: &Ctx,
        context: &str,
        event: &str,
        payload: &Value,
        ephemeral: bool,
    ) -> Result<(), ApiError> {
        let seq = if ephemeral { None } else { Some(self.next_seq()?) };
        let frame = hub::event_frame(context, event, payload, seq);
        if let Some(seq) = seq {
            self.exec(
                "INSERT INTO hub_log (seq, context, frame) VALUES (?, ?, ?)",
                &[(seq as i64).into(), context.into(), frame.as_str().into()],
            )?;
            if seq > hub::HUB_REPLAY_WINDOW {
                self.exec("DELETE FROM hub_log WHERE seq <= ?", &[((seq - hub::HUB_REPLAY_WINDOW) as i64).into()])?;
            }
        }
        let mut to = Vec::new();
        for i in 0..ctx.sockets.len() {
            let Some(session) = self.live_session(ctx, i) else { continue };
            if !self.subs(session)?.contains(context) {
                continue;
            }
            to.push(i);
            if let Some(seq) = seq {
                let over = self.hub.acks.borrow_mut().entry(session.to_string()).or_default().sent(seq);
                if over {
                    self.pending.borrow_mut().closes.push((i, close::TOO_MANY_UNACKED, "too many unacked events"));
                    self.session_ended(session, ctx.now_ms)?;
                }
            }
        }
        if !to.is_empty() {
            self.pending.borrow_mut().sends.push(Send { frame, to });
        }
        Ok(())
    }

    /// Several events in one command, in order, each as [`Member::deliver`] (`Command::DeliverAll`):
    /// all logged or none. Refused (400, nothing changes) past `MAX_DELIVERIES_PER_CALL`.
    pub(crate) fn deliver_all(&self, ctx: &Ctx, events: &[Delivery]) -> Outcome {
        if events.len() > MAX_DELIVERIES_PER_CALL {
            let e = ApiError::invalid(format!("deliver_all: at most {MAX_DELIVERIES_PER_CALL} events"));
            return (Err(e), Default::default());
        }
        self.command(|| {
            for d in events {
                self.deliver(ctx, &d.context, &d.event, &d.payload, d.ephemeral)?;
            }
            Ok(Reply::no_content())
        })
    }
}
