//! What a (re)connecting socket is sent before anything else: `hello`, then, when it resumes, the
//! events its session missed (or `resync`), then `ready`.

use crate::store::Store;
use crate::Member;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeSet;
use switchboard_core::hub::{self, AckWindow, ResumePlan};
use switchboard_core::limits::MAX_REPLAY_BYTES;
use switchboard_core::{frames, ApiError};

/// Where a connecting socket stands.
pub(crate) struct Opening<'a> {
    pub member: &'a str,
    pub session: &'a str,
    /// The session existed (its subscriptions are restored).
    pub restored: bool,
    pub since: Option<u64>,
    pub subs: &'a BTreeSet<String>,
}

impl<S: Store> Member<S> {
    /// The frames to send a connecting socket first, in order; the replayed events start its
    /// session's ack window.
    pub(crate) fn opening_frames(&self, o: &Opening) -> Result<Vec<String>, ApiError> {
        let latest = self.latest_seq()?;
        let mut out = vec![json!({
            "type": "hello", "sessionId": o.session, "seq": latest, "member": o.member,
            "contexts": o.subs, "restored": o.restored,
        })
        .to_string()];
        if o.since.is_some() && !o.restored {
            // The session to resume is unknown or expired: the client must refetch.
            out.push(frames::resync(latest));
        } else if o.restored {
            let oldest = self.scalar("SELECT MIN(seq) AS v FROM hub_log", &[])?.map(|v| v.max(0) as u64);
            match hub::resume_plan(o.since, latest, oldest) {
                ResumePlan::Live => {}
                ResumePlan::Resync => out.push(frames::resync(latest)),
                ResumePlan::Replay { after } => {
                    // Only the session's contexts are read (`json_each` of its subscriptions), and
                    // their frames are measured before any is read: past `MAX_REPLAY_BYTES`, resync.
                    let subs = serde_json::to_string(o.subs).map_err(|e| ApiError::internal(format!("subs: {e}")))?;
                    let args = [(after as i64).into(), subs.into()];
                    const MINE: &str = "seq > ? AND context IN (SELECT value FROM json_each(?))";
                    let bytes = self
                        .scalar(
                            &format!("SELECT SUM(LENGTH(CAST(frame AS BLOB))) AS v FROM hub_log WHERE {MINE}"),
                            &args,
                        )?
                        .unwrap_or(0);
                    if bytes.max(0) as usize > MAX_REPLAY_BYTES {
                        out.push(frames::resync(latest));
                    } else {
                        #[derive(Deserialize)]
                        struct Logged {
                            seq: i64,
                            frame: String,
                        }
                        let rows: Vec<Logged> =
                            self.query(&format!("SELECT seq, frame FROM hub_log WHERE {MINE} ORDER BY seq"), &args)?;
                        let mut window = AckWindow::default();
                        for r in rows {
                            window.sent(r.seq.max(0) as u64);
                            out.push(r.frame);
                        }
                        self.hub.acks.borrow_mut().insert(o.session.to_string(), window);
                    }
                }
            }
        }
        out.push(frames::ready(latest));
        Ok(out)
    }
}
