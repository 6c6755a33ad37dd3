//! The conversation's own sockets: accept and resume, incoming frames, closes.
//!
//! The shell accepts the socket with the hibernation API and keeps `{member, connectedAt}` in its
//! attachment (the only per-socket memory); everything a socket is told comes from here.

use crate::effects::Effects;
use crate::store::Store;
use crate::{Conversation, Ctx};
use serde::Deserialize;
use switchboard_core::frames::{self, ClientFrame, FrameRejection};
use switchboard_core::limits::MAX_REPLAY_BYTES;
use switchboard_core::replay::{self, ResumePlan};
use switchboard_core::ApiError;

/// What to do with a socket after one of its frames.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketReply {
    /// Send this frame to the socket.
    Send(String),
    /// Close it with this code and reason.
    Close(u16, &'static str),
}

impl<S: Store> Conversation<S> {
    /// A member opens a socket, optionally resuming after `since`: answers the frames to send it
    /// before anything else (missed events or `resync`, then `ready`; `resync` too when the missed
    /// frames are over `MAX_REPLAY_BYTES`). Refused (and nothing
    /// changes) when the member may not follow the conversation.
    pub fn accept(&self, member: &str, since: Option<u64>) -> Result<Vec<String>, ApiError> {
        self.require_storage()?;
        let meta = self.require_member(member)?;
        let latest = meta.seq.max(0) as u64;
        let min_in_log = self.scalar("SELECT MIN(seq) AS v FROM events", &[])?.map(|v| v.max(0) as u64);
        let mut out = Vec::new();
        match replay::plan(since, latest, replay::oldest_kept(latest, min_in_log)) {
            ResumePlan::Live => {}
            ResumePlan::Resync => out.push(frames::resync(latest)),
            ResumePlan::Replay { after } => {
                // Counted before anything is read: past `MAX_REPLAY_BYTES`, resync.
                let bytes = self
                    .scalar(
                        "SELECT SUM(LENGTH(CAST(frame AS BLOB))) AS v FROM events WHERE seq > ?",
                        &[(after as i64).into()],
                    )?
                    .unwrap_or(0);
                if bytes.max(0) as usize > MAX_REPLAY_BYTES {
                    out.push(frames::resync(latest));
                } else {
                    #[derive(Deserialize)]
                    struct Frame {
                        frame: String,
                    }
                    let rows: Vec<Frame> =
                        self.query("SELECT frame FROM events WHERE seq > ? ORDER BY seq", &[(after as i64).into()])?;
                    out.extend(rows.into_iter().map(|r| r.frame));
                }
            }
        }
        out.push(frames::ready(latest));
        self.connected.borrow_mut().opened(member);
        Ok(out)
    }

    /// A text frame from `member`'s socket (`None`: the socket lost its attachment). Sends go the
    /// one send path ([`Conversation::send`]); the answer is an ack or an error frame.
    pub fn socket_text(&self, member: Option<&str>, text: &str, ctx: &Ctx) -> (SocketReply, Effects) {
        match frames::parse_client(text) {
            Err(rejection) => (rejected(rejection), Effects::default()),
            Ok(ClientFrame::MessageCreate { request_id, content, in_reply_to_message_id, client_id }) => {
                let Some(member) = member else {
                    return (
                        SocketReply::Close(switchboard_core::limits::close::INTERNAL, "socket state lost"),
                        Effects::default(),
                    );
                };
                let (outcome, effects) = self.send(member, &content, in_reply_to_message_id, client_id, ctx);
                let frame = match &outcome {
                    Ok(sent) => frames::message_ack(request_id.as_deref(), &sent.message, sent.duplicate),
                    Err(e) => e.to_frame(request_id.as_deref()),
                };
                (SocketReply::Send(frame), effects)
            }
        }
    }

    /// A binary frame: we only speak text.
    pub fn socket_binary(&self, len: usize) -> SocketReply {
        rejected(frames::binary(len))
    }

    /// A socket of `member` closed: they may no longer be viewing, and when they stopped is
    /// recorded for the push grace period.
    pub fn socket_closed(&self, member: &str, now: i64) -> Result<(), ApiError> {
        self.connected.borrow_mut().closed(member);
        self.require_storage()?;
        self.exec(
            "INSERT OR REPLACE INTO viewers (member_id, last_viewed_at) VALUES (?, ?)",
            &[member.into(), now.into()],
        )?;
        Ok(())
    }
}

fn rejected(rejection: FrameRejection) -> SocketReply {
    match rejection {
        FrameRejection::Reply { error, request_id } => SocketReply::Send(error.to_frame(request_id.as_deref())),
        FrameRejection::Close { code, reason } => SocketReply::Close(code, reason),
    }
}

impl SocketReply {
    /// The frame to send, if this is one.
    pub fn sent(&self) -> Option<&str> {
        match self {
            SocketReply::Send(f) => Some(f),
            SocketReply::Close(..) => None,
        }
    }
}
