//! The member's event hub: kilo-chat's event service, one object per user.
//!
//! A user keeps one hibernatable socket per tab or device (`GET /connect`, subprotocol
//! `kilo.events.v1`). Each socket belongs to a *session* whose subscribed contexts are stored in
//! SQLite, so a reconnect with `?session=&since=` restores them and replays exactly the events it
//! missed from the user's log (one `seq` per user). Conversation events arrive from the conversation
//! objects that this user watches; instance events are made here from list changes.
//!
//! Invariants: a socket's attachment holds only `{session, connectedAt}`; the in-memory caches
//! (subscriptions, ack windows) can be rebuilt from storage, and losing the ack windows to
//! hibernation can only make the 4002 rule more lenient, never wrong.

use super::{sql_err, MemberObject};
use crate::http::internal;
use crate::platform::{self, EncodedFrame};
use crate::rpc::{self, ConversationCommand, MEMBER_HEADER};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use switchboard_core::hub::{self, close, contexts, AckWindow, Context, HubFrame, ResumePlan};
use switchboard_core::{frames, replay, ApiError, ErrorCode};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{
    Request, Response, ResponseBuilder, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
    WebSocketRequestResponsePair,
};

#[wasm_bindgen]
extern "C" {
    type RawState;
    /// When the runtime last answered this socket's `ping` (a `Date`), or null.
    #[wasm_bindgen(method, catch, js_name = getWebSocketAutoResponseTimestamp)]
    fn auto_response_timestamp(this: &RawState, ws: &JsValue) -> Result<JsValue, JsValue>;
}

#[derive(Debug, Serialize, Deserialize)]
struct Attachment {
    session: String,
    connected_at: i64,
    /// Set when a newer connection of the same session took over; such a socket is closing and no
    /// longer speaks for the session.
    #[serde(default)]
    replaced: bool,
}

/// Memory the hub may lose at any time (it is rebuilt from storage or only relaxes limits).
#[derive(Default)]
pub struct HubState {
    subs: RefCell<HashMap<String, BTreeSet<String>>>,
    acks: RefCell<HashMap<String, AckWindow>>,
    /// Sessions whose socket we closed ourselves and no longer deliver to.
    closed: RefCell<HashSet<String>>,
    last_seen: RefCell<HashMap<String, i64>>,
}

pub fn set_auto_response(state: &State) {
    match WebSocketRequestResponsePair::new("ping", "pong") {
        Ok(pair) => state.set_websocket_auto_response(&pair),
        Err(e) => worker::console_error!("auto-response: {e:?}"),
    }
}

fn session_tag(session: &str) -> String {
    format!("s:{session}")
}

impl MemberObject {
    /// The member this object belongs to, recorded at the first connect.
    fn member_id(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct M {
            member_id: String,
        }
        self.query::<M>("SELECT member_id FROM hub_identity WHERE id = 1", vec![])
            .ok()?
            .into_iter()
            .next()
            .map(|m| m.member_id)
    }

    // ----------------------------------------------------------------------------------------------
    // Connect and resume
    // ----------------------------------------------------------------------------------------------

    pub(super) async fn hub_connect(&self, req: &Request) -> Result<Response, ApiError> {
        let url = req.url().map_err(|e| internal("connect url", e))?;
        let q = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let since = replay::parse_since(q("since").as_deref())?;
        let asked_session = q("session");
        if let Some(s) = &asked_session {
            if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::invalid("session: not a session this service gave out"));
            }
        }
        let member =
            req.headers().get(MEMBER_HEADER).ok().flatten().ok_or_else(|| ApiError::unauthorized("no member"))?;
        let now = platform::now_ms();
        self.exec("INSERT OR REPLACE INTO hub_identity (id, member_id) VALUES (1, ?)", vec![member.as_str().into()])?;

        // Which session: the one asked for, else (when resuming) the most recently closed one, else new.
        #[derive(Deserialize)]
        struct S {
            session: String,
        }
        let existing: Option<String> = match (&asked_session, since) {
            (Some(s), _) => self
                .query::<S>("SELECT session FROM hub_sessions WHERE session = ?", vec![s.as_str().into()])?
                .into_iter()
                .next()
                .map(|r| r.session),
            (None, Some(_)) => self
                .query::<S>(
                    "SELECT session FROM hub_sessions WHERE closed_at IS NOT NULL ORDER BY closed_at DESC LIMIT 1",
                    vec![],
                )?
                .into_iter()
                .next()
                .map(|r| r.session),
            (None, None) => None,
        };
        let (session, restored) = match existing {
            Some(s) => (s, true),
            None => (platform::nonce(), false),
        };
        // A session has one socket: a reconnect replaces a half-open old one.
        for old in self.state.get_websockets_with_tag(&session_tag(&session)) {
            if let Ok(Some(mut a)) = old.deserialize_attachment::<Attachment>() {
                a.replaced = true;
                let _ = old.serialize_attachment(a);
            }
            let _ = old.close(Some(close::REPLACED), Some("replaced by a newer connection"));
        }
        self.exec(
            "INSERT INTO hub_sessions (session, opened_at, closed_at) VALUES (?, ?, NULL)
             ON CONFLICT (session) DO UPDATE SET closed_at = NULL",
            vec![session.as_str().into(), now.into()],
        )?;
        self.hub.closed.borrow_mut().remove(&session);
        self.hub.acks.borrow_mut().remove(&session);
        let subs = self.load_subs(&session)?;

        let pair = WebSocketPair::new().map_err(|e| internal("socket pair", e))?;
        let server = pair.server;
        self.state.accept_websocket_with_tags(&server, &[session_tag(&session).as_str()]);
        server
            .serialize_attachment(Attachment { session: session.clone(), connected_at: now, replaced: false })
            .map_err(|e| internal("socket attachment", e))?;

        let latest = self.hub_seq()?;
        let _ = server.send_with_str(
            json!({"type": "hello", "sessionId": session, "seq": latest, "member": member, "contexts": subs, "restored": restored}).to_string(),
        );
        if since.is_some() && !restored {
            // The session to resume is unknown or expired: the client must refetch.
            let _ = server.send_with_str(frames::resync(latest));
        } else if restored {
            let oldest = self.scalar("SELECT MIN(seq) AS v FROM hub_log", vec![])?.map(|v| v.max(0) as u64);
            match hub::resume_plan(since, latest, oldest) {
                ResumePlan::Live => {}
                ResumePlan::Resync => {
                    let _ = server.send_with_str(frames::resync(latest));
                }
                ResumePlan::Replay { after } => {
                    #[derive(Deserialize)]
                    struct Logged {
                        seq: i64,
                        context: String,
                        frame: String,
                    }
                    let rows: Vec<Logged> = self.query(
                        "SELECT seq, context, frame FROM hub_log WHERE seq > ? ORDER BY seq",
                        vec![(after as i64).into()],
                    )?;
                    let mut window = AckWindow::default();
                    for r in rows.into_iter().filter(|r| subs.contains(&r.context)) {
                        let _ = server.send_with_str(&r.frame);
                        window.sent(r.seq.max(0) as u64);
                    }
                    self.hub.acks.borrow_mut().insert(session.clone(), window);
                }
            }
        }
        let _ = server.send_with_str(frames::ready(latest));
        self.sync_watches().await;
        self.ensure_sweep().await;

        let mut builder = ResponseBuilder::new().with_status(101).with_websocket(pair.client);
        let asked = req.headers().get("sec-websocket-protocol").ok().flatten().unwrap_or_default();
        if asked.split(',').any(|p| p.trim() == hub::SUBPROTOCOL) {
            builder = builder
                .with_header("sec-websocket-protocol", hub::SUBPROTOCOL)
                .map_err(|e| internal("subprotocol header", e))?;
        }
        Ok(builder.empty())
    }

    // ----------------------------------------------------------------------------------------------
    // Frames from clients
    // ----------------------------------------------------------------------------------------------

    pub(super) async fn hub_message(&self, ws: &WebSocket, message: WebSocketIncomingMessage) {
        let Some(session) = live_session_of(ws) else {
            let _ = ws.close(Some(switchboard_core::limits::close::INTERNAL), Some("socket state lost"));
            return;
        };
        self.hub.last_seen.borrow_mut().insert(session.clone(), platform::now_ms());
        let text = match message {
            WebSocketIncomingMessage::String(t) => t,
            WebSocketIncomingMessage::Binary(_) => {
                let e = ApiError::new(ErrorCode::BinaryNotSupported, "binary frames are not supported");
                let _ = ws.send_with_str(e.to_frame(None));
                return;
            }
        };
        let frame = match hub::parse_frame(&text) {
            Ok(f) => f,
            Err(e) => {
                let _ = ws.send_with_str(e.to_frame(None));
                return;
            }
        };
        let result = match frame {
            HubFrame::Subscribe(list) => self.subscribe(ws, &session, &list).await,
            HubFrame::Unsubscribe(list) => self.unsubscribe(ws, &session, &list).await,
            HubFrame::Ack(seq) => {
                self.hub.acks.borrow_mut().entry(session.clone()).or_default().ack(seq);
                Ok(())
            }
            HubFrame::Typing { conversation_id, stop } => self.typing(&conversation_id, stop).await,
        };
        if let Err(e) = result {
            let _ = ws.send_with_str(e.to_frame(None));
        }
    }

    async fn subscribe(&self, ws: &WebSocket, session: &str, list: &[String]) -> Result<(), ApiError> {
        let current = self.load_subs(session)?;
        let outcome = hub::subscribe(&current, list, |ctx| match Context::parse(ctx) {
            Some(c) => hub::may_subscribe(&c, |sb| self.has_sandbox(sb), |sb, conv| self.has_conversation(sb, conv)),
            None => false,
        });
        for ctx in &outcome.added {
            self.exec(
                "INSERT OR IGNORE INTO hub_subs (session, context) VALUES (?, ?)",
                vec![session.into(), ctx.as_str().into()],
            )?;
        }
        self.hub.subs.borrow_mut().entry(session.to_string()).or_default().extend(outcome.added.iter().cloned());
        for e in &outcome.errors {
            let _ = ws.send_with_str(e.to_string());
        }
        let _ = ws.send_with_str(json!({"type": "context.subscribed", "contexts": outcome.added}).to_string());
        self.sync_watches().await;
        Ok(())
    }

    async fn unsubscribe(&self, ws: &WebSocket, session: &str, list: &[String]) -> Result<(), ApiError> {
        self.load_subs(session)?;
        for ctx in list {
            self.exec(
                "DELETE FROM hub_subs WHERE session = ? AND context = ?",
                vec![session.into(), ctx.as_str().into()],
            )?;
            if let Some(s) = self.hub.subs.borrow_mut().get_mut(session) {
                s.remove(ctx);
            }
        }
        let _ = ws.send_with_str(json!({"type": "context.unsubscribed", "contexts": list}).to_string());
        self.sync_watches().await;
        Ok(())
    }

    async fn typing(&self, conversation_id: &str, stop: bool) -> Result<(), ApiError> {
        let member = self.member_id().ok_or_else(|| ApiError::internal("member object without a name"))?;
        let (status, body) = rpc::read(
            rpc::conversation(&self.env, conversation_id, &member, ConversationCommand::Typing { stop }).await?,
        )
        .await?;
        if status >= 300 {
            return Err(rpc::as_error(status, &body));
        }
        Ok(())
    }

    pub(super) async fn hub_closed(&self, ws: &WebSocket) {
        // A replaced socket closing says nothing about its session, which lives on in the newer one.
        if let Some(session) = live_session_of(ws) {
            self.session_ended(&session);
            self.sync_watches().await;
            // The sweep ends the session's resume window (and its watches) later.
            self.ensure_sweep_at(platform::now_ms() + hub::RESUME_KEEP_MS + 1).await;
        }
    }

    fn session_ended(&self, session: &str) {
        let _ = self.exec(
            "UPDATE hub_sessions SET closed_at = ? WHERE session = ?",
            vec![platform::now_ms().into(), session.into()],
        );
        self.hub.closed.borrow_mut().insert(session.to_string());
        self.hub.acks.borrow_mut().remove(session);
    }

    // ----------------------------------------------------------------------------------------------
    // Events to clients
    // ----------------------------------------------------------------------------------------------

    /// Logs an event (unless ephemeral) under the next user seq and sends one encoded frame to every
    /// socket whose session subscribes to `context`.
    pub(super) fn deliver(&self, context: &str, event: &str, payload: &Value, ephemeral: bool) {
        let seq = if ephemeral {
            None
        } else {
            match self.next_seq() {
                Ok(s) => Some(s),
                Err(e) => {
                    worker::console_error!("hub seq: {e}");
                    return;
                }
            }
        };
        let text = hub::event_frame(context, event, payload, seq);
        if let Some(seq) = seq {
            let _ = self.exec(
                "INSERT INTO hub_log (seq, context, frame) VALUES (?, ?, ?)",
                vec![(seq as i64).into(), context.into(), text.as_str().into()],
            );
            if seq > hub::HUB_REPLAY_WINDOW {
                let _ = self
                    .exec("DELETE FROM hub_log WHERE seq <= ?", vec![((seq - hub::HUB_REPLAY_WINDOW) as i64).into()]);
            }
        }
        let frame = EncodedFrame::new(&text);
        for ws in self.state.get_websockets() {
            let Some(session) = live_session_of(&ws) else { continue };
            if self.hub.closed.borrow().contains(&session) {
                continue;
            }
            let subscribed = match self.load_subs(&session) {
                Ok(s) => s.contains(context),
                Err(_) => false,
            };
            if !subscribed {
                continue;
            }
            frame.send(&ws);
            if let Some(seq) = seq {
                let over = self.hub.acks.borrow_mut().entry(session.clone()).or_default().sent(seq);
                if over {
                    let _ = ws.close(Some(close::TOO_MANY_UNACKED), Some("too many unacked events"));
                    self.session_ended(&session);
                }
            }
        }
    }

    /// Tells each conversation whether this user now watches it (any open session subscribed to its
    /// event or presence context) and is present in it (subscribed to its presence context).
    async fn sync_watches(&self) {
        let Some(member) = self.member_id() else { return };
        // Open sessions watch and make the user present; sessions closed within the resume window
        // keep watching (so their missed events are logged for resume) but are not present.
        let open = self.open_sessions();
        #[derive(Deserialize)]
        struct S {
            session: String,
        }
        let resumable: Vec<String> = self
            .query::<S>(
                "SELECT session FROM hub_sessions WHERE closed_at IS NOT NULL AND closed_at > ?",
                vec![(platform::now_ms() - hub::RESUME_KEEP_MS).into()],
            )
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.session)
            .collect();
        let mut wanted: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for (session, is_open) in open.iter().map(|s| (s, true)).chain(resumable.iter().map(|s| (s, false))) {
            if let Ok(subs) = self.load_subs(session) {
                for ctx in subs.iter().filter_map(|c| Context::parse(c)) {
                    if let Some(conv) = ctx.conversation_id() {
                        let entry = wanted.entry(conv.to_string()).or_insert((false, false));
                        entry.0 = true;
                        if is_open && matches!(ctx, Context::PresenceConversation { .. }) {
                            entry.1 = true;
                        }
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
        let known: Vec<W> =
            self.query("SELECT conversation_id, watching, present FROM hub_watch", vec![]).unwrap_or_default();
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
                let _ = self.exec(
                    "INSERT OR REPLACE INTO hub_watch (conversation_id, watching, present) VALUES (?, ?, ?)",
                    vec![conv.as_str().into(), (watching as i64).into(), (present as i64).into()],
                );
            } else {
                let _ = self.exec("DELETE FROM hub_watch WHERE conversation_id = ?", vec![conv.as_str().into()]);
            }
            let cmd = ConversationCommand::Watch { watching, present };
            match rpc::conversation(&self.env, &conv, &member, cmd).await {
                Ok(r) if r.status_code() < 300 => {}
                Ok(r) => worker::console_warn!("watch {conv}: {}", r.status_code()),
                Err(e) => worker::console_error!("watch {conv}: {e}"),
            }
        }
    }

    /// The member left a conversation: drop subscriptions to it from every session.
    pub(super) async fn forget_conversation(&self, sandbox_id: &str, conversation_id: &str) {
        let event = contexts::conversation(sandbox_id, conversation_id);
        let presence = contexts::presence(&event);
        for ctx in [&event, &presence] {
            let _ = self.exec("DELETE FROM hub_subs WHERE context = ?", vec![ctx.as_str().into()]);
        }
        for subs in self.hub.subs.borrow_mut().values_mut() {
            subs.remove(&event);
            subs.remove(&presence);
        }
        self.sync_watches().await;
    }

    // ----------------------------------------------------------------------------------------------
    // Stale sockets: a socket that stops pinging leaves within STALE_SOCKET_MS + SWEEP_EVERY_MS
    // ----------------------------------------------------------------------------------------------

    /// Arms the sweep for `at`, unless it is already due sooner.
    async fn ensure_sweep_at(&self, at: i64) {
        self.alarm.ensure(&self.state.storage(), at).await;
    }

    async fn ensure_sweep(&self) {
        self.ensure_sweep_at(platform::now_ms() + hub::SWEEP_EVERY_MS).await;
    }

    pub(super) async fn sweep_stale_sockets(&self) {
        let now = platform::now_ms();
        let raw: &RawState = self.raw_state.unchecked_ref();
        let mut any_open = false;
        let mut dropped = false;
        for ws in self.state.get_websockets() {
            let Some(a) = ws.deserialize_attachment::<Attachment>().ok().flatten() else { continue };
            if a.replaced {
                // Already told to close; if its client vanished, say it again and move on.
                let _ = ws.close(Some(close::REPLACED), Some("replaced by a newer connection"));
                continue;
            }
            if self.hub.closed.borrow().contains(&a.session) {
                continue;
            }
            let pinged = raw
                .auto_response_timestamp(ws.as_ref())
                .ok()
                .filter(|v| !v.is_null() && !v.is_undefined())
                .map(|v| js_sys::Date::from(v).get_time() as i64);
            let seen = self.hub.last_seen.borrow().get(&a.session).copied();
            let last = [Some(a.connected_at), pinged, seen].into_iter().flatten().max().unwrap_or(a.connected_at);
            if now - last > hub::STALE_SOCKET_MS {
                let _ = ws.close(Some(close::STALE), Some("no ping"));
                self.session_ended(&a.session);
                dropped = true;
            } else {
                any_open = true;
            }
        }
        // Sessions closed longer than the resume window are forgotten (a later resume gets `resync`).
        let cutoff = now - hub::RESUME_KEEP_MS;
        #[derive(Deserialize)]
        struct S {
            session: String,
        }
        let expired: Vec<S> = self
            .query(
                "SELECT session FROM hub_sessions WHERE closed_at IS NOT NULL AND closed_at <= ?",
                vec![cutoff.into()],
            )
            .unwrap_or_default();
        for s in &expired {
            let _ = self.exec("DELETE FROM hub_subs WHERE session = ?", vec![s.session.as_str().into()]);
            let _ = self.exec("DELETE FROM hub_sessions WHERE session = ?", vec![s.session.as_str().into()]);
            self.hub.subs.borrow_mut().remove(&s.session);
        }
        if dropped || !expired.is_empty() {
            self.sync_watches().await;
        }
        if any_open {
            self.ensure_sweep().await;
        }
        if let Some(closed) = self
            .scalar("SELECT MIN(closed_at) AS v FROM hub_sessions WHERE closed_at IS NOT NULL", vec![])
            .ok()
            .flatten()
        {
            self.ensure_sweep_at(closed + hub::RESUME_KEEP_MS + 1).await;
        }
    }

    // ----------------------------------------------------------------------------------------------
    // Storage
    // ----------------------------------------------------------------------------------------------

    fn open_sessions(&self) -> Vec<String> {
        let closed = self.hub.closed.borrow();
        let mut out: Vec<String> =
            self.state.get_websockets().iter().filter_map(live_session_of).filter(|s| !closed.contains(s)).collect();
        out.sort();
        out.dedup();
        out
    }

    fn load_subs(&self, session: &str) -> Result<BTreeSet<String>, ApiError> {
        if let Some(s) = self.hub.subs.borrow().get(session) {
            return Ok(s.clone());
        }
        #[derive(Deserialize)]
        struct C {
            context: String,
        }
        let rows: Vec<C> = self.query("SELECT context FROM hub_subs WHERE session = ?", vec![session.into()])?;
        let set: BTreeSet<String> = rows.into_iter().map(|r| r.context).collect();
        self.hub.subs.borrow_mut().insert(session.to_string(), set.clone());
        Ok(set)
    }

    fn hub_seq(&self) -> Result<u64, ApiError> {
        Ok(self.scalar("SELECT seq AS v FROM hub_state WHERE id = 1", vec![])?.unwrap_or(0).max(0) as u64)
    }

    fn next_seq(&self) -> Result<u64, ApiError> {
        self.exec(
            "INSERT INTO hub_state (id, seq) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET seq = seq + 1",
            vec![],
        )?;
        self.hub_seq()
    }

    fn query<T: serde::de::DeserializeOwned>(
        &self,
        q: &str,
        b: Vec<worker::SqlStorageValue>,
    ) -> Result<Vec<T>, ApiError> {
        self.sql.rows(q, b).map_err(sql_err)
    }

    fn scalar(&self, q: &str, b: Vec<worker::SqlStorageValue>) -> Result<Option<i64>, ApiError> {
        self.sql.scalar(q, b).map_err(sql_err)
    }
}

/// The session a socket speaks for; `None` for a socket a newer connection replaced.
fn live_session_of(ws: &WebSocket) -> Option<String> {
    ws.deserialize_attachment::<Attachment>().ok().flatten().filter(|a| !a.replaced).map(|a| a.session)
}
