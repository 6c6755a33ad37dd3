//! Sessions: a socket connects (a new session, or one it resumes), speaks (subscribe, unsubscribe,
//! ack, typing), and closes (its session stays resumable for `RESUME_KEEP_MS`).

use super::resume::Opening;
use crate::limits::FrameCheck;
use crate::store::Store;
use crate::{Ctx, Member, Outcome};
use serde::Deserialize;
use serde_json::json;
use switchboard_core::hub::{self, Context, HubFrame};
use switchboard_core::limits::close::INTERNAL;
use switchboard_core::{replay, ApiError, ErrorCode};

/// The length of a session id: hex of 128 random bits.
pub const SESSION_ID_LEN: usize = 32;

/// Whether `session` could be a session id this service gave out (checked before a connect ticket
/// is spent, and by [`Member::connect`]).
pub fn valid_session_id(session: &str) -> bool {
    session.len() == SESSION_ID_LEN && session.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A socket the shell is about to accept.
#[derive(Debug, Clone, PartialEq)]
pub struct Connected {
    pub session: String,
    /// Older sockets of the same session (indices into `Ctx::sockets`): mark them replaced and
    /// close them with 4009 before accepting the new one.
    pub replace: Vec<usize>,
    /// What the new socket is sent first, in order.
    pub frames: Vec<String>,
}

/// A frame a socket sent.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    Text(&'a str),
    Binary,
}

/// What to do with the socket that sent a frame.
#[derive(Debug, Default, PartialEq)]
pub struct SocketReply {
    /// Frames for this socket, in order.
    pub frames: Vec<String>,
    pub close: Option<(u16, &'static str)>,
    /// Tell this conversation the member is (or stopped) typing; a refusal is answered to the
    /// socket as an error frame.
    pub typing: Option<Typing>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Typing {
    pub member: String,
    pub conversation_id: String,
    pub stop: bool,
}

impl<S: Store> Member<S> {
    /// `GET /connect?[session=&since=]` for `member`: which session the socket speaks for and what
    /// it is sent first. Refused (400, nothing changes) for a bad `since` or `session`.
    pub fn connect(&self, member: &str, since: Option<&str>, session: Option<&str>, ctx: &Ctx) -> Outcome<Connected> {
        let since = match replay::parse_since(since) {
            Ok(s) => s,
            Err(e) => return (Err(e), Default::default()),
        };
        if let Some(s) = session {
            if !valid_session_id(s) {
                return (Err(ApiError::invalid("session: not a session this service gave out")), Default::default());
            }
        }
        // A connection is stored (its session, what it follows): the tables are made if missing.
        if let Err(e) = self.ensure_schema() {
            return (Err(e.into()), Default::default());
        }
        // At most `max_hub_sessions` open sockets; a reconnect of a session that has one replaces it.
        let open = ctx.sockets.iter().flatten().filter(|s| !s.replaced);
        let (mut count, mut replaces) = (0u32, false);
        for s in open {
            count += 1;
            replaces |= session == Some(s.session.as_str());
        }
        let cap = self.limits.max_hub_sessions;
        if count >= cap && !replaces {
            return (
                Err(ApiError::new(
                    ErrorCode::TooManyConnections,
                    format!("at most {cap} hub sockets per user; close one first"),
                )),
                Default::default(),
            );
        }
        self.command(|| {
            self.exec("INSERT OR REPLACE INTO hub_identity (id, member_id) VALUES (1, ?)", &[member.into()])?;
            // Which session: the one asked for, else (when resuming) the most recently closed one, else new.
            // A session closed `RESUME_KEEP_MS` ago or longer is unknown, swept or not: its
            // conversations may no longer be watched (`sync_watches`), so it may have missed events.
            #[derive(Deserialize)]
            struct S {
                session: String,
            }
            let expired_by = ctx.now_ms - hub::RESUME_KEEP_MS;
            let existing: Option<String> = match (session, since) {
                (Some(s), _) => self
                    .query::<S>(
                        "SELECT session FROM hub_sessions WHERE session = ? AND (closed_at IS NULL OR closed_at > ?)",
                        &[s.into(), expired_by.into()],
                    )?
                    .pop(),
                (None, Some(_)) => self
                    .query::<S>(
                        "SELECT session FROM hub_sessions WHERE closed_at IS NOT NULL AND closed_at > ?
                         ORDER BY closed_at DESC LIMIT 1",
                        &[expired_by.into()],
                    )?
                    .pop(),
                (None, None) => None,
            }
            .map(|r| r.session);
            let restored = existing.is_some();
            let session = existing.unwrap_or_else(|| format!("{:0width$x}", ctx.random, width = SESSION_ID_LEN));
            // A session has one socket: a reconnect replaces a half-open old one.
            let replace: Vec<usize> = ctx
                .sockets
                .iter()
                .enumerate()
                .filter(|(_, s)| s.as_ref().is_some_and(|s| s.session == session))
                .map(|(i, _)| i)
                .collect();
            self.exec(
                "INSERT INTO hub_sessions (session, opened_at, closed_at) VALUES (?, ?, NULL)
                 ON CONFLICT (session) DO UPDATE SET closed_at = NULL",
                &[session.as_str().into(), ctx.now_ms.into()],
            )?;
            self.hub.closed.borrow_mut().remove(&session);
            self.hub.acks.borrow_mut().remove(&session);
            let subs = self.subs(&session)?;
            let frames = self.opening_frames(&Opening { member, session: &session, restored, since, subs: &subs })?;
            let mut open = self.open_sessions(ctx);
            if let Err(at) = open.binary_search(&session) {
                open.insert(at, session.clone());
            }
            self.sync_watches(&open, ctx.now_ms)?;
            self.pending.borrow_mut().alarm_by(ctx.now_ms + hub::SWEEP_EVERY_MS);
            Ok(Connected { session, replace, frames })
        })
    }

    /// A frame from the socket at `index` of `ctx.sockets`.
    pub fn socket_frame(&self, index: usize, frame: Incoming, ctx: &Ctx) -> (SocketReply, crate::Effects) {
        let Some(session) = ctx.sockets.get(index).and_then(|s| s.as_ref()).filter(|s| !s.replaced) else {
            return (
                SocketReply { close: Some((INTERNAL, "socket state lost")), ..Default::default() },
                Default::default(),
            );
        };
        let parsed = match frame {
            Incoming::Text(t) => Some(hub::parse_frame(t)),
            Incoming::Binary => None,
        };
        // An ack that releases events sent to this socket is the flow control the hub asks for
        // (4002 past 50 unacked): it does not count against the frame rate. There is at most one
        // per event sent, so it cannot flood, and a client keeping up with a busy stream is never
        // closed for acking.
        let releases = matches!(&parsed, Some(Ok(HubFrame::Ack(seq)))
            if self.hub.acks.borrow().get(&session.session).is_some_and(|w| w.releases(*seq)));
        if !releases {
            match self.frame_allowed(&session.session, session.connected_at, ctx.now_ms) {
                FrameCheck::Pass => {}
                FrameCheck::Refuse(frame) => {
                    return (SocketReply { frames: vec![frame], ..Default::default() }, Default::default())
                }
                FrameCheck::Close(code, reason) => {
                    return (SocketReply { close: Some((code, reason)), ..Default::default() }, Default::default())
                }
            }
        }
        let session = session.session.as_str();
        self.hub.last_seen.borrow_mut().insert(session.to_string(), ctx.now_ms);
        let error =
            |e: ApiError| (SocketReply { frames: vec![e.to_frame(None)], ..Default::default() }, Default::default());
        let parsed = match parsed {
            Some(Ok(f)) => f,
            Some(Err(e)) => return error(e),
            None => return error(ApiError::new(ErrorCode::BinaryNotSupported, "binary frames are not supported")),
        };
        match parsed {
            HubFrame::Subscribe(list) => {
                let (r, effects) = self.command(|| self.subscribe(session, &list, ctx));
                match r {
                    Ok(frames) => (SocketReply { frames, ..Default::default() }, effects),
                    Err(e) => error(e),
                }
            }
            HubFrame::Unsubscribe(list) => {
                let (r, effects) = self.command(|| self.unsubscribe(session, &list, ctx));
                match r {
                    Ok(frames) => (SocketReply { frames, ..Default::default() }, effects),
                    Err(e) => error(e),
                }
            }
            HubFrame::Ack(seq) => {
                self.hub.acks.borrow_mut().entry(session.to_string()).or_default().ack(seq);
                (SocketReply::default(), Default::default())
            }
            HubFrame::Typing { conversation_id, stop } => match self.member_id() {
                Ok(Some(member)) => (
                    SocketReply { typing: Some(Typing { member, conversation_id, stop }), ..Default::default() },
                    Default::default(),
                ),
                Ok(None) => error(ApiError::internal("member object without a name")),
                Err(e) => error(e),
            },
        }
    }

    fn subscribe(&self, session: &str, list: &[String], ctx: &Ctx) -> Result<Vec<String>, ApiError> {
        let current = self.subs(session)?;
        // A storage failure while deciding fails the whole frame, not just that context.
        let failure = std::cell::RefCell::new(None);
        let answer = |r: Result<bool, ApiError>| {
            r.unwrap_or_else(|e| {
                failure.borrow_mut().get_or_insert(e);
                false
            })
        };
        let outcome = hub::subscribe(&current, list, |c| match Context::parse(c) {
            Some(c) => hub::may_subscribe(
                &c,
                |sb| answer(self.has_sandbox(sb)),
                |sb, conv| answer(self.has_conversation(sb, conv)),
            ),
            None => false,
        });
        if let Some(e) = failure.into_inner() {
            return Err(e);
        }
        for c in &outcome.added {
            self.exec("INSERT OR IGNORE INTO hub_subs (session, context) VALUES (?, ?)", &[session.into(), c.into()])?;
        }
        self.hub.subs.borrow_mut().entry(session.to_string()).or_default().extend(outcome.added.iter().cloned());
        let mut frames: Vec<String> = outcome.errors.iter().map(|e| e.to_string()).collect();
        frames.push(json!({"type": "context.subscribed", "contexts": outcome.added}).to_string());
        self.sync_watches(&self.open_sessions(ctx), ctx.now_ms)?;
        Ok(frames)
    }

    /// Drops the listed contexts (at most `MAX_CONTEXTS`, each once: `hub::parse_frame`); only those
    /// the session holds cost a statement. Answers the list as given.
    fn unsubscribe(&self, session: &str, list: &[String], ctx: &Ctx) -> Result<Vec<String>, ApiError> {
        let held = self.subs(session)?;
        for c in list.iter().filter(|c| held.contains(*c)) {
            self.exec("DELETE FROM hub_subs WHERE session = ? AND context = ?", &[session.into(), c.into()])?;
            if let Some(s) = self.hub.subs.borrow_mut().get_mut(session) {
                s.remove(c);
            }
        }
        self.sync_watches(&self.open_sessions(ctx), ctx.now_ms)?;
        Ok(vec![json!({"type": "context.unsubscribed", "contexts": list}).to_string()])
    }

    /// The socket at `index` closed (or failed). A replaced socket closing says nothing about its
    /// session, which lives on in the newer one; otherwise the session ends now, is resumable for
    /// `RESUME_KEEP_MS`, and the sweep forgets it after that.
    pub fn socket_closed(&self, index: usize, ctx: &Ctx) -> Outcome<()> {
        let Some(session) = ctx.sockets.get(index).and_then(|s| s.as_ref()).filter(|s| !s.replaced) else {
            return (Ok(()), Default::default());
        };
        self.connection_closed(&session.session, session.connected_at);
        self.command(|| {
            self.session_ended(&session.session, ctx.now_ms)?;
            self.sync_watches(&self.open_sessions(ctx), ctx.now_ms)?;
            self.pending.borrow_mut().alarm_by(ctx.now_ms + hub::RESUME_KEEP_MS + 1);
            Ok(())
        })
    }
}
