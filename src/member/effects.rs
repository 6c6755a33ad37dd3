//! Carrying out what the member's state machine answered: sends (one encoded frame per event, sent
//! to each socket it names), closes, watch calls to conversations, then the alarm.

use super::MemberObject;
use crate::platform::EncodedFrame;
use crate::rpc::{self, ConversationCommand};
use switchboard_member::Effects;
use worker::WebSocket;

impl MemberObject {
    /// `sockets` is the list the command's `Ctx::sockets` described, index for index.
    pub(super) async fn carry_out(&self, sockets: &[WebSocket], effects: Effects) {
        for send in &effects.sends {
            let frame = EncodedFrame::new(&send.frame);
            for ws in send.to.iter().filter_map(|i| sockets.get(*i)) {
                frame.send(ws);
            }
        }
        for (i, code, reason) in &effects.closes {
            if let Some(ws) = sockets.get(*i) {
                let _ = ws.close(Some(*code), Some(*reason));
            }
        }
        for w in effects.watches {
            let cmd = ConversationCommand::Watch { watching: w.watching, present: w.present };
            match rpc::conversation(&self.env, &w.conversation_id, &w.member, cmd).await {
                Ok(r) if r.status_code() < 300 => {}
                Ok(r) => worker::console_warn!("watch {}: {}", w.conversation_id, r.status_code()),
                Err(e) => worker::console_error!("watch {}: {e}", w.conversation_id),
            }
        }
        if let Some(at) = effects.alarm_at {
            self.alarm.ensure(&self.state.storage(), at).await;
        }
    }
}
