//! Carrying out what the member's state machine answered: sends (one encoded frame per event, sent
//! to each socket it names; a socket that opted in to batched frames gets a command's frames
//! together, `switchboard_core::batch::PerSocket`), closes, watch calls to conversations, then the
//! alarm.

use super::MemberObject;
use crate::platform::EncodedFrame;
use crate::rpc::{self, ConversationCommand};
use switchboard_member::effects::Send;
use switchboard_member::Effects;
use switchboard_worker_kit::batching::SocketBatcher;
use worker::WebSocket;

impl MemberObject {
    /// `sockets` is the list the command's `Ctx::sockets` described, index for index.
    pub(super) async fn carry_out(&self, sockets: &[WebSocket], effects: Effects) {
        self.send(sockets, &effects.sends);
        for (i, code, reason) in &effects.closes {
            if let Some(ws) = sockets.get(*i) {
                // A closed socket still gets the events sent to it before its close.
                self.batcher.flush(ws);
                let _ = ws.close(Some(*code), Some(*reason));
            }
        }
        let mut alarm_at = effects.alarm_at;
        for w in effects.watches {
            let cmd = ConversationCommand::Watch { watching: w.watching, present: w.present };
            let failure = match rpc::conversation(&self.env, &w.conversation_id, &w.member, cmd).await {
                Ok(r) if r.status_code() < 300 => continue,
                Ok(r) => format!("answered {}", r.status_code()),
                Err(e) => e.to_string(),
            };
            // Told again by the next comparison (the sweep, soon): `Member::watch_failed`.
            worker::console_error!("watch {}: {failure}; told again by the next sweep", w.conversation_id);
            let (r, retry) = self.core.watch_failed(&w, crate::platform::now_ms());
            if let Err(e) = r {
                worker::console_error!("watch {}: could not record the failure: {e:?}", w.conversation_id);
            }
            alarm_at = [alarm_at, retry.alarm_at].into_iter().flatten().min();
        }
        if let Some(at) = alarm_at {
            self.alarm.ensure(&self.state.storage(), at).await;
        }
    }

    /// Each event's frame to the sockets it names, in order: at once to those that did not opt in
    /// (one encoding for all of them); per opted-in socket, all of this command's frames together.
    fn send(&self, sockets: &[WebSocket], sends: &[Send]) {
        let mut batched: Vec<(usize, Vec<String>)> = Vec::new();
        for send in sends {
            let mut encoded: Option<EncodedFrame> = None;
            for &i in &send.to {
                let Some(ws) = sockets.get(i) else { continue };
                if !SocketBatcher::is_batched(ws) {
                    encoded.get_or_insert_with(|| EncodedFrame::new(&send.frame)).send(ws);
                    continue;
                }
                match batched.iter_mut().find(|(j, _)| *j == i) {
                    Some((_, frames)) => frames.push(send.frame.clone()),
                    None => batched.push((i, vec![send.frame.clone()])),
                }
            }
        }
        for (i, frames) in batched {
            if let Some(tick) = sockets.get(i).and_then(|ws| self.batcher.ready(ws, frames)) {
                self.state.wait_until(tick);
            }
        }
    }
}
