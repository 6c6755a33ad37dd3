//! `ConversationObject`: one Durable Object per conversation.
//!
//! It owns, in its SQLite database, the conversation's members, messages, reactions, send-idempotency
//! records and event log, and holds the conversation's hibernatable WebSockets. Every committed change
//! appends one event (next `seq`) to the log and broadcasts the same encoded frame to every socket.
//!
//! Invariants:
//! - a command validates everything before its first write, and writes without an `.await` between the
//!   first and last statement, so racing requests (e.g. repeated sends) never interleave half-written;
//! - the only per-socket memory is the socket's attachment; nothing is lost when the object hibernates;
//! - one alarm serves idempotency cleanup and the flush of activity to members' lists, and is never
//!   postponed (`switchboard_core::alarm`).

use crate::config;
use crate::http::{error_response, internal};
use crate::notifications;
use crate::platform;
use crate::rpc::{self, ConversationCall, ConversationCommand, MemberCommand, MEMBER_HEADER};
use crate::sql::Sql;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use switchboard_core::connected::ConnectedMembers;
use switchboard_core::content::{self, Block};
use switchboard_core::events::Event;
use switchboard_core::frames::{self, ClientFrame, FrameRejection};
use switchboard_core::hub::contexts;
use switchboard_core::idempotency::{self, IdemRecord, SendDecision};
use switchboard_core::ids::{self, MonotonicUlids};
use switchboard_core::limits::{close, AUTO_TITLE_CHARS, MAX_MEMBERS};
use switchboard_core::model::{ConversationDetail, ConversationListItem, MemberInfo, Message};
use switchboard_core::replay::{self, ResumePlan};
use switchboard_core::{alarm, reactions, typing, validate, ApiError, ErrorCode, MemberId};
use switchboard_notify_contract::{Recipient, SendPushForConversation, CONTRACT_VERSION};
use worker::{
    durable_object, wasm_bindgen, DurableObject, Env, Request, Response, ResponseBuilder, ScheduledTime,
    SqlStorageValue, State, Stub, WebSocket, WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conversation (
  id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL, title TEXT, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,
  last_activity_at INTEGER,
  list_version INTEGER NOT NULL DEFAULT 0, list_flushed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS members (
  member_id TEXT PRIMARY KEY, kind TEXT NOT NULL, joined_at INTEGER NOT NULL, left_at INTEGER);
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY, sender_id TEXT NOT NULL, content TEXT NOT NULL, in_reply_to TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER, client_updated_at INTEGER,
  deleted INTEGER NOT NULL DEFAULT 0, delivery_failed INTEGER NOT NULL DEFAULT 0, client_id TEXT);
CREATE TABLE IF NOT EXISTS reactions (
  message_id TEXT NOT NULL, member_id TEXT NOT NULL, emoji TEXT NOT NULL, created_at INTEGER NOT NULL,
  UNIQUE (message_id, member_id, emoji));
CREATE TABLE IF NOT EXISTS idempotency (
  sender_id TEXT NOT NULL, client_id TEXT NOT NULL, message_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (sender_id, client_id));
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, frame TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS read_state (
  member_id TEXT PRIMARY KEY, last_read_message_id TEXT NOT NULL, last_read_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS viewers (member_id TEXT PRIMARY KEY, last_viewed_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS watchers (member_id TEXT PRIMARY KEY, present INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS typing (member_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, last_broadcast_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS list_flush (id INTEGER PRIMARY KEY CHECK (id = 1), pass_version INTEGER NOT NULL, cursor TEXT NOT NULL);
";

/// Members' objects told of new activity at once during a list flush; small, so that other requests
/// keep being answered while a big room's flush runs.
const FLUSH_CONCURRENCY: usize = 8;
/// Members told per alarm run, so one run stays far below the per-invocation subrequest limit. The
/// batches of a pass are spread over a flush period (`alarm::flush_batch_gap_ms`).
const FLUSH_BATCH: usize = 50;

/// What one alarm run's list-flush step did.
enum FlushStep {
    Idle,
    More,
    Done,
    Failed,
}

/// Per-socket state, kept in the socket's attachment so it survives hibernation.
#[derive(Debug, Serialize, Deserialize)]
struct Attachment {
    member: String,
    connected_at: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct MetaRow {
    id: String,
    sandbox_id: String,
    title: Option<String>,
    created_by: String,
    created_at: i64,
    last_activity_at: Option<i64>,
    seq: i64,
}

#[derive(Debug, Deserialize)]
struct MemberRow {
    member_id: String,
    kind: String,
    joined_at: i64,
}

#[derive(Debug, Deserialize)]
struct MessageRow {
    id: String,
    sender_id: String,
    content: String,
    in_reply_to: Option<String>,
    created_at: i64,
    updated_at: Option<i64>,
    client_updated_at: Option<i64>,
    deleted: i64,
    delivery_failed: i64,
}

#[derive(Debug, Deserialize)]
struct ReactionRow {
    message_id: String,
    emoji: String,
    member_id: String,
}

/// What a command answers: HTTP status and JSON body (None for 204).
type Answer = Result<(u16, Option<Value>), ApiError>;

fn sql_err(e: worker::Error) -> ApiError {
    internal("conversation sql", e)
}

#[durable_object]
pub struct ConversationObject {
    state: State,
    /// The JavaScript `DurableObjectState`, for the one-call broadcast.
    raw_state: wasm_bindgen::JsValue,
    env: Env,
    sql: Sql,
    /// The alarm time we last set or read; `None` = unknown or none.
    alarm_at: Cell<Option<i64>>,
    /// Events waiting to go to the hubs of members who watch this conversation, in order.
    outbox: RefCell<VecDeque<Outgoing>>,
    /// A pump is draining the outbox (at most one at a time keeps each hub's order).
    pumping: Cell<bool>,
    /// One stub per watcher, reused so calls to one hub are delivered in order.
    stubs: RefCell<HashMap<String, Rc<Stub>>>,
    /// Members with a socket open here (a cache of the runtime's socket list; see `connected`).
    connected: RefCell<ConnectedMembers>,
    /// Storage read once and kept in memory until this object changes it (see `Cached`).
    cached: Cached,
    /// `IDEM_TTL_MS` and `ACTIVITY_FLUSH_MS`, read once (vars change only with a new deployment).
    idem_ttl_ms: i64,
    activity_flush_ms: i64,
}

/// What the send path would otherwise read from SQLite on every message. Each field is `None` until
/// first read, and is dropped (set to `None`) by every command that writes what it mirrors, before
/// it writes: only this object writes its storage, so memory and storage cannot disagree for longer
/// than one synchronous command.
#[derive(Default)]
struct Cached {
    /// Active members: id → is a person (not the bot). Dropped by create, add member and leave.
    roster: RefCell<Option<Rc<HashMap<String, bool>>>>,
    /// Members whose hubs watch this conversation. Dropped by watch and leave.
    watchers: RefCell<Option<Rc<Vec<String>>>>,
    /// The newest message id (for the next monotonic ULID). Set by each insert.
    last_message_id: RefCell<Option<String>>,
    /// The conversation row, with the seq of the newest logged event. Dropped by every write to the
    /// row through `exec`; a send's activity and each event's seq update it in place instead
    /// (`touch_activity`, `next_seq`).
    meta: RefCell<Option<MetaRow>>,
}

/// Whether a statement writes the conversation row (and so invalidates `Cached::meta`).
fn writes_conversation_row(query: &str) -> bool {
    query.starts_with("UPDATE conversation ")
        || query.starts_with("INSERT INTO conversation ")
        || query.starts_with("DELETE FROM conversation")
}

/// An event on its way to watchers' hubs.
struct Outgoing {
    event: &'static str,
    payload: Value,
    ephemeral: bool,
}

/// Clears the pumping flag however the pump ends.
struct PumpGuard<'a>(&'a Cell<bool>);

impl Drop for PumpGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl DurableObject for ConversationObject {
    fn new(state: State, env: Env) -> Self {
        let raw = state._inner();
        let raw_state: wasm_bindgen::JsValue = raw.clone().into();
        let state = State::from(raw);
        let sql = Sql::new(state.storage().sql());
        if let Err(e) = sql.exec(SCHEMA, vec![]) {
            worker::console_error!("conversation schema: {e}");
        }
        // `ping` is answered by the runtime without waking the object.
        match WebSocketRequestResponsePair::new("ping", "pong") {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => worker::console_error!("auto-response: {e:?}"),
        }
        ConversationObject {
            state,
            raw_state,
            sql,
            alarm_at: Cell::new(None),
            outbox: RefCell::new(VecDeque::new()),
            pumping: Cell::new(false),
            stubs: RefCell::new(HashMap::new()),
            connected: RefCell::new(ConnectedMembers::new()),
            cached: Cached::default(),
            idem_ttl_ms: config::idem_ttl_ms(&env),
            activity_flush_ms: config::activity_flush_ms(&env),
            env,
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = if req.path() == "/ws" {
            self.accept_socket(&req)
        } else {
            match req.text().await {
                Ok(body) => self.rpc(&body).await,
                Err(e) => Err(internal("read rpc", e)),
            }
        };
        match result {
            Ok(resp) => Ok(resp),
            Err(e) => error_response(&e),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm_at.set(None);
        self.run_alarm().await;
        self.pump().await;
        Response::ok("ok")
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> worker::Result<()> {
        let text = match message {
            WebSocketIncomingMessage::String(t) => t,
            WebSocketIncomingMessage::Binary(b) => {
                self.reject(&ws, frames::binary(b.len()));
                return Ok(());
            }
        };
        match frames::parse_client(&text) {
            Err(rejection) => self.reject(&ws, rejection),
            Ok(ClientFrame::MessageCreate { request_id, content, in_reply_to_message_id, client_id }) => {
                let member = match platform::socket_member(&ws) {
                    Some(m) => m,
                    None => {
                        let _ = ws.close(Some(close::INTERNAL), Some("socket state lost"));
                        return Ok(());
                    }
                };
                let outcome = self.send_message(&member, &content, in_reply_to_message_id, client_id);
                let frame = match &outcome {
                    Ok(sent) => frames::message_ack(request_id.as_deref(), &sent.message, sent.duplicate),
                    Err(e) => e.to_frame(request_id.as_deref()),
                };
                let _ = ws.send_with_str(frame);
                if let Ok(sent) = outcome {
                    self.after_send(&sent).await;
                }
                self.pump().await;
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        self.socket_gone(&ws);
        // Complete the closing handshake; the runtime forgets the socket.
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.socket_gone(&ws);
        let _ = ws.close(Some(close::INTERNAL), Some("socket error"));
        Ok(())
    }
}

/// A message that `send_message` created or found again.
struct Sent {
    message: Message,
    client_id: Option<String>,
    duplicate: bool,
    /// The conversation as the message left it (its title may have just been set from the message).
    meta: MetaRow,
}

impl ConversationObject {
    // ----------------------------------------------------------------------------------------------
    // Commands
    // ----------------------------------------------------------------------------------------------

    async fn rpc(&self, body: &str) -> Result<Response, ApiError> {
        let call: ConversationCall = serde_json::from_str(body).map_err(|e| internal("decode conversation rpc", e))?;
        let caller = call.caller;
        let answer = match call.command {
            ConversationCommand::Create { conversation_id, sandbox_id, title, members } => {
                self.create(&conversation_id, &sandbox_id, title, &caller, &members)
            }
            ConversationCommand::Get => self.detail(&caller),
            ConversationCommand::Rename { title } => self.rename(&caller, &title),
            ConversationCommand::AddMember { member } => self.add_member(&caller, &member),
            ConversationCommand::Leave => self.leave(&caller),
            ConversationCommand::ListMessages { before, limit } => {
                self.list_messages(&caller, before.as_deref(), limit)
            }
            ConversationCommand::SendMessage { content, in_reply_to_message_id, client_id } => {
                match self.send_message(&caller, &content, in_reply_to_message_id, client_id) {
                    Ok(sent) => {
                        let status = if sent.duplicate { 200 } else { 201 };
                        let mut body = json!({"messageId": sent.message.id, "message": sent.message});
                        if let Some(c) = &sent.client_id {
                            body["clientId"] = Value::String(c.clone());
                        }
                        self.after_send(&sent).await;
                        Ok((status, Some(body)))
                    }
                    Err(e) => Err(e),
                }
            }
            ConversationCommand::EditMessage { message_id, content, timestamp } => {
                self.edit_message(&caller, &message_id, &content, timestamp)
            }
            ConversationCommand::DeleteMessage { message_id } => self.delete_message(&caller, &message_id),
            ConversationCommand::AddReaction { message_id, emoji } => self.add_reaction(&caller, &message_id, &emoji),
            ConversationCommand::RemoveReaction { message_id, emoji } => {
                self.remove_reaction(&caller, &message_id, &emoji)
            }
            ConversationCommand::MarkRead { message_id } => self.mark_read(&caller, &message_id),
            ConversationCommand::Watch { watching, present } => self.watch(&caller, watching, present),
            ConversationCommand::Presence => self.roster(&caller),
            ConversationCommand::Typing { stop } => self.typing(&caller, stop).await,
        };
        self.pump().await;
        let (status, body) = answer?;
        // Renames and new activity reach members' lists through the alarm's flush.
        if self.scalar("SELECT list_version > list_flushed AS v FROM conversation", vec![]).ok().flatten().unwrap_or(0)
            != 0
        {
            self.ensure_alarm(platform::now_ms() + self.flush_delay_ms()).await;
        }
        match body {
            Some(v) => crate::http::json(status, &v),
            None => crate::http::no_content(),
        }
    }

    fn create(&self, id: &str, sandbox_id: &str, title: Option<String>, creator: &str, humans: &[String]) -> Answer {
        if self.meta()?.is_some() {
            return Err(ApiError::internal("conversation id collision"));
        }
        self.forget_roster();
        let now = platform::now_ms();
        let bot = MemberId::bot(sandbox_id)?.to_string();
        self.exec(
            "INSERT INTO conversation (id, sandbox_id, title, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
            vec![id.into(), sandbox_id.into(), title.clone().into(), creator.into(), now.into()],
        )?;
        self.exec(
            "INSERT INTO members (member_id, kind, joined_at) VALUES (?, 'bot', ?)",
            vec![bot.into(), now.into()],
        )?;
        for m in humans {
            self.exec(
                "INSERT OR IGNORE INTO members (member_id, kind, joined_at) VALUES (?, 'user', ?)",
                vec![m.as_str().into(), now.into()],
            )?;
        }
        Ok((201, Some(json!({"createdAt": now}))))
    }

    fn detail(&self, caller: &str) -> Answer {
        let meta = self.require_member(caller)?;
        Ok((200, Some(to_value(&self.detail_of(&meta)?)?)))
    }

    fn detail_of(&self, meta: &MetaRow) -> Result<ConversationDetail, ApiError> {
        let members = self.active_members()?;
        Ok(ConversationDetail {
            id: meta.id.clone(),
            title: meta.title.clone(),
            sandbox_id: meta.sandbox_id.clone(),
            created_by: meta.created_by.clone(),
            created_at: meta.created_at,
            members: members
                .into_iter()
                .map(|m| MemberInfo { id: m.member_id, kind: m.kind, joined_at: m.joined_at })
                .collect(),
        })
    }

    fn rename(&self, caller: &str, title: &str) -> Answer {
        let meta = self.require_member(caller)?;
        let title = validate::title(title)?;
        if meta.title.as_deref() != Some(title.as_str()) {
            self.exec(
                "UPDATE conversation SET title = ?, list_version = list_version + 1",
                vec![title.as_str().into()],
            )?;
            self.emit(Event::ConversationRenamed { conversation_id: meta.id.clone(), title: title.clone() })?;
        }
        Ok((200, Some(json!({"id": meta.id, "title": title}))))
    }

    fn add_member(&self, caller: &str, member: &str) -> Answer {
        let meta = self.require_member(caller)?;
        let new = MemberId::user(member)?.to_string();
        let members = self.active_members()?;
        let existing = members.iter().any(|m| m.member_id == new);
        if !existing {
            if members.len() >= MAX_MEMBERS {
                return Err(ApiError::invalid(format!("a conversation has at most {MAX_MEMBERS} members")));
            }
            self.forget_roster();
            let now = platform::now_ms();
            self.exec(
                "INSERT INTO members (member_id, kind, joined_at, left_at) VALUES (?, 'user', ?, NULL)
                 ON CONFLICT (member_id) DO UPDATE SET joined_at = excluded.joined_at, left_at = NULL",
                vec![new.as_str().into(), now.into()],
            )?;
            self.emit(Event::MemberJoined { conversation_id: meta.id.clone(), member_id: new.clone() })?;
        }
        let detail = self.detail_of(&meta)?;
        let joined_at = detail.members.iter().find(|m| m.id == new).map(|m| m.joined_at).unwrap_or(0);
        let item = ConversationListItem {
            conversation_id: meta.id.clone(),
            title: meta.title.clone(),
            sandbox_id: meta.sandbox_id.clone(),
            last_activity_at: meta.last_activity_at,
            last_read_at: None,
            joined_at,
        };
        // `listItem` is for the worker (it updates the new member's list) and is removed before answering.
        Ok((if existing { 200 } else { 201 }, Some(json!({"members": detail.members, "listItem": item}))))
    }

    fn leave(&self, caller: &str) -> Answer {
        let meta = self.require_member(caller)?;
        if MemberId::parse(caller).map(|m| m.is_bot()).unwrap_or(false) {
            return Err(ApiError::forbidden("the conversation's bot cannot leave it"));
        }
        let was_present =
            self.scalar("SELECT present AS v FROM watchers WHERE member_id = ?", vec![caller.into()])?.unwrap_or(0)
                != 0;
        self.forget_roster();
        self.cached.watchers.replace(None);
        self.exec(
            "UPDATE members SET left_at = ? WHERE member_id = ?",
            vec![platform::now_ms().into(), caller.into()],
        )?;
        self.exec("DELETE FROM watchers WHERE member_id = ?", vec![caller.into()])?;
        self.exec("DELETE FROM typing WHERE member_id = ?", vec![caller.into()])?;
        self.emit(Event::MemberLeft { conversation_id: meta.id.clone(), member_id: caller.to_string() })?;
        if was_present {
            self.emit(Event::PresenceLeft { member_id: caller.to_string() })?;
        }
        platform::close_sockets_of(&self.raw_state, caller, close::MEMBERSHIP_ENDED, "left the conversation");
        self.connected.borrow_mut().gone(caller);
        Ok((204, None))
    }

    fn list_messages(&self, caller: &str, before: Option<&str>, limit: usize) -> Answer {
        let meta = self.require_member(caller)?;
        let fetch = (limit + 1) as i64;
        let rows: Vec<MessageRow> = match before {
            Some(b) => self
                .query("SELECT * FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?", vec![b.into(), fetch.into()])?,
            None => self.query("SELECT * FROM messages ORDER BY id DESC LIMIT ?", vec![fetch.into()])?,
        };
        let has_more = rows.len() > limit;
        let rows = &rows[..rows.len().min(limit)];
        let messages = self.hydrate(&meta.id, rows)?;
        let next_cursor = if has_more { messages.last().map(|m| m.id.clone()) } else { None };
        Ok((200, Some(json!({"messages": messages, "hasMore": has_more, "nextCursor": next_cursor}))))
    }

    /// The send path: validate, check the idempotency ledger, write message + record + event, broadcast.
    /// Synchronous from the first read to the last write, so racing repeats cannot both create.
    fn send_message(
        &self,
        caller: &str,
        content: &Value,
        in_reply_to: Option<String>,
        client_id: Option<String>,
    ) -> Result<Sent, ApiError> {
        let mut meta = self.require_member(caller)?;
        let blocks = content::parse(content)?;
        if let Some(c) = &client_id {
            validate::client_id(c)?;
        }
        let reply_sender = match &in_reply_to {
            Some(r) => {
                ids::parse("inReplyToMessageId", r)?;
                let found: Vec<MessageRow> =
                    self.query("SELECT * FROM messages WHERE id = ?", vec![r.as_str().into()])?;
                match found.into_iter().next() {
                    Some(row) => Some(row.sender_id),
                    None => return Err(ApiError::invalid("inReplyToMessageId: no such message in this conversation")),
                }
            }
            None => None,
        };
        let now = platform::now_ms();
        let ttl = self.idem_ttl_ms;
        let mut record_expiry = None;
        if let Some(c) = &client_id {
            #[derive(Deserialize)]
            struct Rec {
                message_id: String,
                expires_at: i64,
            }
            let found: Vec<Rec> = self.query(
                "SELECT message_id, expires_at FROM idempotency WHERE sender_id = ? AND client_id = ?",
                vec![caller.into(), c.as_str().into()],
            )?;
            let found =
                found.into_iter().next().map(|r| IdemRecord { message_id: r.message_id, expires_at: r.expires_at });
            match idempotency::decide(found.as_ref(), now, ttl) {
                SendDecision::Replay { message_id } => {
                    if let Some(message) = self.message(&meta.id, &message_id)? {
                        return Ok(Sent { message, client_id, duplicate: true, meta });
                    }
                    // The record outlived its message (cannot happen: messages are never hard-deleted).
                    return Err(ApiError::internal("idempotency record without message"));
                }
                SendDecision::Create { expires_at } => record_expiry = Some(expires_at),
            }
        }
        let last = self.last_message_id()?.and_then(|id| ids::parse("id", &id).ok());
        let id = MonotonicUlids::new(last).next(now.max(0) as u64, platform::random_u128()).to_string();
        let content_json = serde_json::to_string(&blocks).map_err(|e| internal("encode content", e))?;

        // Writes: nothing above has written; nothing below awaits.
        self.exec(
            "INSERT INTO messages (id, sender_id, content, in_reply_to, created_at, client_id) VALUES (?, ?, ?, ?, ?, ?)",
            vec![id.as_str().into(), caller.into(), content_json.into(), in_reply_to.clone().into(), now.into(), client_id.clone().into()],
        )?;
        self.cached.last_message_id.replace(Some(id.clone()));
        if let (Some(c), Some(expires_at)) = (&client_id, record_expiry) {
            self.exec(
                "INSERT OR REPLACE INTO idempotency (sender_id, client_id, message_id, expires_at) VALUES (?, ?, ?, ?)",
                vec![caller.into(), c.as_str().into(), id.as_str().into(), expires_at.into()],
            )?;
        }
        self.touch_activity(now)?;
        let message = Message {
            id: id.clone(),
            conversation_id: meta.id.clone(),
            sender_id: caller.to_string(),
            content: blocks,
            in_reply_to_message_id: in_reply_to,
            created_at: now,
            updated_at: None,
            client_updated_at: None,
            deleted: false,
            delivery_failed: false,
            reactions: vec![],
        };
        self.emit(Event::MessageCreated {
            message: message.clone(),
            client_id: client_id.clone(),
            reply_to_sender: reply_sender,
        })?;
        if meta.title.is_none() {
            let text = content::plain_text(&message.content);
            let title = content::preview(&text, AUTO_TITLE_CHARS);
            if !title.is_empty() {
                self.exec("UPDATE conversation SET title = ? WHERE title IS NULL", vec![title.as_str().into()])?;
                self.emit(Event::ConversationRenamed { conversation_id: meta.id.clone(), title: title.clone() })?;
                meta.title = Some(title);
            }
        }
        Ok(Sent { message, client_id, duplicate: false, meta })
    }

    /// After a send commits: hand the push to the notifications worker (in the background; its failure
    /// never fails the send), and make sure the alarm will flush activity and later sweep the record.
    async fn after_send(&self, sent: &Sent) {
        if sent.duplicate {
            return;
        }
        match self.push_request(&sent.meta, &sent.message) {
            Ok(Some(request)) => {
                let env = self.env.clone();
                self.state.wait_until(async move {
                    match notifications::send_push(&env, &request).await {
                        Ok(result) => {
                            notifications::announce_badges(&env, &request.sandbox_id, &request.conversation_id, &result)
                                .await
                        }
                        Err(e) => worker::console_error!("push for message {}: {e}", request.message_id),
                    }
                });
            }
            Ok(None) => {}
            Err(e) => worker::console_error!("push request: {e}"),
        }
        self.ensure_alarm(platform::now_ms() + self.flush_delay_ms()).await;
    }

    /// The push for a new message: human members minus the sender who are not looking at the
    /// conversation (no socket here, not present through their hub), with when they last looked.
    /// `None` when there is nobody to notify. Members who are viewing are left out rather than sent
    /// as `viewing: true`: the notifications worker would only suppress them, and in a busy room that
    /// is most of the audience.
    fn push_request(&self, meta: &MetaRow, message: &Message) -> Result<Option<SendPushForConversation>, ApiError> {
        // People who might need a push: no socket open here. When every one of them is connected (a
        // busy room, a conversation both people have open) nothing is read and nothing is sent.
        let absent = {
            let roster = self.active_roster()?;
            self.refresh_connected();
            self.connected.borrow_mut().absent(roster.iter().map(|(id, is_person)| (id.as_str(), *is_person)))
        };
        if absent.iter().all(|id| *id == message.sender_id) {
            return Ok(None);
        }
        // Their last look and hub presence: one row holding every candidate as a JSON array, so one
        // string crosses into Rust rather than one JavaScript object per member.
        #[derive(Deserialize)]
        struct Looks {
            looks: Option<String>,
            present: Option<String>,
        }
        let row = self
            .query::<Looks>(
                "SELECT (SELECT json_group_array(json_array(member_id, last_viewed_at)) FROM viewers) AS looks,
                        (SELECT json_group_array(member_id) FROM watchers WHERE present != 0) AS present",
                vec![],
            )?
            .into_iter()
            .next();
        let (looks, present) = row.map(|r| (r.looks, r.present)).unwrap_or((None, None));
        let looks: Vec<(String, Option<i64>)> = decode_json_rows(looks.as_deref())?;
        let present: Vec<String> = decode_json_rows(present.as_deref())?;
        let last_viewed: HashMap<String, Option<i64>> = looks.into_iter().collect();
        let recipients: Vec<Recipient> = absent
            .iter()
            .filter(|id| **id != message.sender_id && !present.contains(id))
            .map(|id| Recipient {
                last_viewed_at: last_viewed.get(id).copied().flatten(),
                viewing: false,
                user_id: id.clone(),
            })
            .collect();
        if recipients.is_empty() {
            return Ok(None);
        }
        let sender_is_bot = MemberId::parse(&message.sender_id).map(|m| m.is_bot()).unwrap_or(false);
        Ok(Some(SendPushForConversation {
            version: CONTRACT_VERSION,
            conversation_id: meta.id.clone(),
            message_id: message.id.clone(),
            sandbox_id: meta.sandbox_id.clone(),
            conversation_title: meta.title.clone(),
            sender_user_id: if sender_is_bot { None } else { Some(message.sender_id.clone()) },
            text: content::plain_text(&message.content),
            recipients,
        }))
    }

    /// Rebuilds the cache of members with a socket open here from the sockets' attachments (one call
    /// into the runtime) when it is new or old.
    fn refresh_connected(&self) {
        let now = platform::now_ms();
        if self.connected.borrow().needs_rebuild(now) {
            let members = platform::socket_members(&self.raw_state);
            self.connected.borrow_mut().rebuild(members, now);
        }
    }

    /// Moves the caller's read position forward (never back) and tells the members. Answers whether
    /// the caller has now read the newest message, so the worker can clear their badge bucket.
    fn mark_read(&self, caller: &str, message_id: &str) -> Answer {
        let meta = self.require_member(caller)?;
        self.require_message(message_id)?;
        #[derive(Deserialize)]
        struct ReadRow {
            last_read_message_id: String,
            last_read_at: i64,
        }
        let current: Option<ReadRow> = self
            .query(
                "SELECT last_read_message_id, last_read_at FROM read_state WHERE member_id = ?",
                vec![caller.into()],
            )?
            .into_iter()
            .next();
        let (last_id, last_at) = match current {
            Some(r) if r.last_read_message_id.as_str() >= message_id => (r.last_read_message_id, r.last_read_at),
            _ => {
                let now = platform::now_ms();
                self.exec(
                    "INSERT OR REPLACE INTO read_state (member_id, last_read_message_id, last_read_at) VALUES (?, ?, ?)",
                    vec![caller.into(), message_id.into(), now.into()],
                )?;
                self.emit(Event::ConversationRead {
                    conversation_id: meta.id.clone(),
                    member_id: caller.to_string(),
                    last_read_at: now,
                    last_read_message_id: message_id.to_string(),
                })?;
                (message_id.to_string(), now)
            }
        };
        let caught_up = self.last_message_id()?.map(|newest| newest.as_str() <= last_id.as_str()).unwrap_or(true);
        Ok((
            200,
            Some(json!({
                "conversationId": meta.id,
                "sandboxId": meta.sandbox_id,
                "lastReadAt": last_at,
                "lastReadMessageId": last_id,
                "caughtUp": caught_up,
            })),
        ))
    }

    /// A socket closed: the member may no longer be viewing, and when they stopped is recorded for the
    /// push grace period.
    fn socket_gone(&self, ws: &WebSocket) {
        if let Some(member) = platform::socket_member(ws) {
            self.connected.borrow_mut().closed(&member);
            let _ = self.exec(
                "INSERT OR REPLACE INTO viewers (member_id, last_viewed_at) VALUES (?, ?)",
                vec![member.as_str().into(), platform::now_ms().into()],
            );
        }
    }

    fn edit_message(&self, caller: &str, message_id: &str, content: &Value, timestamp: i64) -> Answer {
        let meta = self.require_member(caller)?;
        let row = self.require_message(message_id)?;
        if row.sender_id != caller {
            return Err(ApiError::forbidden("only the sender may edit a message"));
        }
        if row.deleted != 0 {
            return Err(ApiError::new(ErrorCode::MessageDeleted, "the message was deleted"));
        }
        if let Some(stored) = row.client_updated_at {
            if timestamp < stored {
                return Err(ApiError::new(
                    ErrorCode::EditConflict,
                    "Edit conflict: the message was edited more recently",
                ));
            }
        }
        let blocks = content::parse(content)?;
        let content_json = serde_json::to_string(&blocks).map_err(|e| internal("encode content", e))?;
        let now = platform::now_ms();
        self.exec(
            "UPDATE messages SET content = ?, updated_at = ?, client_updated_at = ? WHERE id = ?",
            vec![content_json.into(), now.into(), timestamp.into(), message_id.into()],
        )?;
        let message =
            self.message(&meta.id, message_id)?.ok_or_else(|| ApiError::internal("edited message vanished"))?;
        self.emit(Event::MessageUpdated { message: message.clone() })?;
        Ok((200, Some(json!({"messageId": message.id, "message": message}))))
    }

    fn delete_message(&self, caller: &str, message_id: &str) -> Answer {
        self.require_member(caller)?;
        let row = self.require_message(message_id)?;
        if row.sender_id != caller {
            return Err(ApiError::forbidden("only the sender may delete a message"));
        }
        if row.deleted == 0 {
            self.exec(
                "UPDATE messages SET deleted = 1, content = '[]', updated_at = ? WHERE id = ?",
                vec![platform::now_ms().into(), message_id.into()],
            )?;
            self.exec("DELETE FROM reactions WHERE message_id = ?", vec![message_id.into()])?;
            self.emit(Event::MessageDeleted { message_id: message_id.to_string() })?;
        }
        Ok((204, None))
    }

    fn add_reaction(&self, caller: &str, message_id: &str, emoji: &str) -> Answer {
        self.require_member(caller)?;
        validate::emoji(emoji)?;
        let row = self.require_message(message_id)?;
        if row.deleted != 0 {
            return Err(ApiError::new(ErrorCode::MessageDeleted, "the message was deleted"));
        }
        let written = self
            .sql
            .exec(
                "INSERT OR IGNORE INTO reactions (message_id, member_id, emoji, created_at) VALUES (?, ?, ?, ?)",
                vec![message_id.into(), caller.into(), emoji.into(), platform::now_ms().into()],
            )
            .map_err(sql_err)?;
        if written > 0 {
            self.emit(Event::ReactionAdded {
                message_id: message_id.into(),
                member_id: caller.into(),
                emoji: emoji.into(),
            })?;
        }
        let summary = self.reactions_of(message_id)?;
        Ok((if written > 0 { 201 } else { 200 }, Some(json!({"id": message_id, "reactions": summary}))))
    }

    fn remove_reaction(&self, caller: &str, message_id: &str, emoji: &str) -> Answer {
        self.require_member(caller)?;
        validate::emoji(emoji)?;
        self.require_message(message_id)?;
        let written = self
            .sql
            .exec(
                "DELETE FROM reactions WHERE message_id = ? AND member_id = ? AND emoji = ?",
                vec![message_id.into(), caller.into(), emoji.into()],
            )
            .map_err(sql_err)?;
        if written > 0 {
            self.emit(Event::ReactionRemoved {
                message_id: message_id.into(),
                member_id: caller.into(),
                emoji: emoji.into(),
            })?;
        }
        let summary = self.reactions_of(message_id)?;
        Ok((200, Some(json!({"id": message_id, "reactions": summary}))))
    }

    // ----------------------------------------------------------------------------------------------
    // Sockets
    // ----------------------------------------------------------------------------------------------

    /// Accepts a member's socket as hibernatable, replays what it missed (`?since=`), then `ready`.
    fn accept_socket(&self, req: &Request) -> Result<Response, ApiError> {
        let member =
            req.headers().get(MEMBER_HEADER).ok().flatten().ok_or_else(|| ApiError::unauthorized("no member"))?;
        let url = req.url().map_err(|e| internal("socket url", e))?;
        let since_raw = url.query_pairs().find(|(k, _)| k == "since").map(|(_, v)| v.into_owned());
        let since = replay::parse_since(since_raw.as_deref())?;
        let meta = self.require_member(&member)?;

        let pair = WebSocketPair::new().map_err(|e| internal("socket pair", e))?;
        let server = pair.server;
        // Untagged: the attachment names the member, and a tag would cost the runtime memory per
        // socket (~10 KiB measured with 5,000 idle sockets) for lookups that are rare here.
        self.state.accept_web_socket(&server);
        self.connected.borrow_mut().opened(&member);
        server
            .serialize_attachment(Attachment { member: member.clone(), connected_at: platform::now_ms() })
            .map_err(|e| internal("socket attachment", e))?;

        let latest = meta.seq.max(0) as u64;
        let min_in_log = self.scalar("SELECT MIN(seq) AS v FROM events", vec![])?.map(|v| v.max(0) as u64);
        match replay::plan(since, latest, replay::oldest_kept(latest, min_in_log)) {
            ResumePlan::Live => {}
            ResumePlan::Resync => {
                let _ = server.send_with_str(frames::resync(latest));
            }
            ResumePlan::Replay { after } => {
                #[derive(Deserialize)]
                struct Frame {
                    frame: String,
                }
                let rows: Vec<Frame> =
                    self.query("SELECT frame FROM events WHERE seq > ? ORDER BY seq", vec![(after as i64).into()])?;
                for row in rows {
                    let _ = server.send_with_str(&row.frame);
                }
            }
        }
        let _ = server.send_with_str(frames::ready(latest));
        Ok(ResponseBuilder::new().with_status(101).with_websocket(pair.client).empty())
    }

    fn reject(&self, ws: &WebSocket, rejection: FrameRejection) {
        match rejection {
            FrameRejection::Reply { error, request_id } => {
                let _ = ws.send_with_str(error.to_frame(request_id.as_deref()));
            }
            FrameRejection::Close { code, reason } => {
                let _ = ws.close(Some(code), Some(reason));
            }
        }
    }

    /// Appends an event to the log (next seq) and sends the one encoded frame to every socket.
    fn emit(&self, event: Event) -> Result<u64, ApiError> {
        let seq = self.next_seq()?;
        let frame = frames::event(event.name(), &event.payload_json(), seq);
        if let Err(e) =
            self.exec("INSERT INTO events (seq, frame) VALUES (?, ?)", vec![(seq as i64).into(), frame.as_str().into()])
        {
            self.cached.meta.replace(None);
            return Err(e);
        }
        if replay::trim_due(seq) {
            // What fell out of the window since the last trim (resumes never see it: `oldest_kept`).
            self.exec("DELETE FROM events WHERE seq <= ?", vec![(replay::trim_below(seq) as i64).into()])?;
        }
        platform::broadcast(&self.raw_state, &frame);
        // Hubs get the events committed while they watch; with no watcher, nothing is queued (and the
        // payload is never built as a `Value`).
        if !matches!(self.watcher_ids(), Ok(w) if w.is_empty()) {
            self.outbox.borrow_mut().push_back(Outgoing {
                event: event.name(),
                payload: event.payload(),
                ephemeral: false,
            });
        }
        Ok(seq)
    }

    /// An ephemeral event (typing): sent to sockets and watchers without a seq, never logged.
    fn emit_ephemeral(&self, event: Event) {
        let payload = event.payload();
        platform::broadcast(&self.raw_state, &frames::ephemeral_event(event.name(), &payload));
        self.outbox.borrow_mut().push_back(Outgoing { event: event.name(), payload, ephemeral: true });
    }

    /// Drains the outbox to the hubs of watching members, one event at a time so each hub sees this
    /// conversation's events in order. A pump already running picks up what we queued.
    async fn pump(&self) {
        if self.pumping.get() || self.outbox.borrow().is_empty() {
            return;
        }
        self.pumping.set(true);
        let _guard = PumpGuard(&self.pumping);
        loop {
            let next = self.outbox.borrow_mut().pop_front();
            let Some(out) = next else { break };
            let watchers = match self.watcher_ids() {
                Ok(w) if !w.is_empty() => w,
                _ => continue,
            };
            let context = match self.meta() {
                Ok(Some(m)) => contexts::conversation(&m.sandbox_id, &m.id),
                _ => continue,
            };
            let command = MemberCommand::Deliver {
                context,
                event: out.event.to_string(),
                payload: out.payload,
                ephemeral: out.ephemeral,
            };
            let body = match serde_json::to_string(&command) {
                Ok(b) => b,
                Err(_) => continue,
            };
            let calls: Vec<_> = watchers
                .iter()
                .filter_map(|w| self.stub_for(w))
                .map(|s| {
                    let body = body.clone();
                    async move { rpc::post_to(&s, body).await }
                })
                .collect();
            for r in join_all(calls).await {
                if let Err(e) = r {
                    worker::console_error!("deliver to hub: {e}");
                }
            }
        }
    }

    fn stub_for(&self, member: &str) -> Option<Rc<Stub>> {
        if let Some(s) = self.stubs.borrow().get(member) {
            return Some(s.clone());
        }
        let stub = Rc::new(rpc::member_stub(&self.env, member).ok()?);
        self.stubs.borrow_mut().insert(member.to_string(), stub.clone());
        Some(stub)
    }

    fn watcher_ids(&self) -> Result<Rc<Vec<String>>, ApiError> {
        if let Some(w) = self.cached.watchers.borrow().as_ref() {
            return Ok(w.clone());
        }
        #[derive(Deserialize)]
        struct W {
            member_id: String,
        }
        let ids: Rc<Vec<String>> = Rc::new(
            self.query::<W>("SELECT member_id FROM watchers", vec![])?.into_iter().map(|w| w.member_id).collect(),
        );
        self.cached.watchers.replace(Some(ids.clone()));
        Ok(ids)
    }

    /// A member's hub now watches (or stops watching) this conversation, and is (or is not) present.
    fn watch(&self, caller: &str, watching: bool, present: bool) -> Answer {
        if !watching && !present {
            // Unwatching needs no membership: a member who left may still be unsubscribing.
            let was = self.scalar("SELECT present AS v FROM watchers WHERE member_id = ?", vec![caller.into()])?;
            self.cached.watchers.replace(None);
            self.exec("DELETE FROM watchers WHERE member_id = ?", vec![caller.into()])?;
            self.stubs.borrow_mut().remove(caller);
            if was.unwrap_or(0) != 0 {
                self.emit(Event::PresenceLeft { member_id: caller.to_string() })?;
            }
            return Ok((204, None));
        }
        self.require_member(caller)?;
        let was =
            self.scalar("SELECT present AS v FROM watchers WHERE member_id = ?", vec![caller.into()])?.unwrap_or(0)
                != 0;
        self.cached.watchers.replace(None);
        self.exec(
            "INSERT OR REPLACE INTO watchers (member_id, present) VALUES (?, ?)",
            vec![caller.into(), (present as i64).into()],
        )?;
        if present && !was {
            self.emit(Event::PresenceJoined { member_id: caller.to_string() })?;
        } else if !present && was {
            self.emit(Event::PresenceLeft { member_id: caller.to_string() })?;
        }
        Ok((204, None))
    }

    /// `{present: [memberId...]}`: members with a tab or device subscribed to this conversation's presence.
    fn roster(&self, caller: &str) -> Answer {
        self.require_member(caller)?;
        #[derive(Deserialize)]
        struct W {
            member_id: String,
        }
        let present: Vec<String> = self
            .query::<W>("SELECT member_id FROM watchers WHERE present = 1 ORDER BY member_id", vec![])?
            .into_iter()
            .map(|w| w.member_id)
            .collect();
        Ok((200, Some(json!({"present": present}))))
    }

    /// `typing` / `typing.stop`: broadcast (throttled) and ended by the alarm after the timeout.
    async fn typing(&self, caller: &str, stop: bool) -> Answer {
        self.require_member(caller)?;
        let now = platform::now_ms();
        #[derive(Deserialize)]
        struct T {
            expires_at: i64,
            last_broadcast_at: i64,
        }
        let current = self
            .query::<T>("SELECT expires_at, last_broadcast_at FROM typing WHERE member_id = ?", vec![caller.into()])?
            .into_iter()
            .next()
            .map(|t| typing::Typing { expires_at: t.expires_at, last_broadcast_at: t.last_broadcast_at });
        if stop {
            self.exec("DELETE FROM typing WHERE member_id = ?", vec![caller.into()])?;
            if typing::stop(current, now) {
                self.emit_ephemeral(Event::TypingStop { member_id: caller.to_string() });
            }
            return Ok((204, None));
        }
        let (next, broadcast) = typing::start(current, now);
        self.exec(
            "INSERT OR REPLACE INTO typing (member_id, expires_at, last_broadcast_at) VALUES (?, ?, ?)",
            vec![caller.into(), next.expires_at.into(), next.last_broadcast_at.into()],
        )?;
        if broadcast {
            self.emit_ephemeral(Event::Typing { member_id: caller.to_string() });
        }
        self.ensure_alarm(next.expires_at).await;
        Ok((204, None))
    }

    // ----------------------------------------------------------------------------------------------
    // Alarm: idempotency cleanup and the flush of activity to members' lists
    // ----------------------------------------------------------------------------------------------

    async fn ensure_alarm(&self, wanted: i64) {
        if let Some(current) = self.alarm_at.get() {
            if !alarm::should_set(Some(current), Some(wanted)) {
                return;
            }
        }
        let storage = self.state.storage();
        let current = storage.get_alarm().await.ok().flatten();
        if alarm::should_set(current, Some(wanted)) {
            let at = ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(wanted as f64)));
            match storage.set_alarm(at).await {
                Ok(()) => self.alarm_at.set(Some(wanted)),
                Err(e) => worker::console_error!("set alarm: {e}"),
            }
        } else {
            self.alarm_at.set(current);
        }
    }

    async fn run_alarm(&self) {
        let now = platform::now_ms();
        #[derive(Deserialize)]
        struct Expired {
            member_id: String,
        }
        let expired: Vec<Expired> =
            self.query("SELECT member_id FROM typing WHERE expires_at <= ?", vec![now.into()]).unwrap_or_default();
        if !expired.is_empty() {
            let _ = self.exec("DELETE FROM typing WHERE expires_at <= ?", vec![now.into()]);
            for e in expired {
                self.emit_ephemeral(Event::TypingStop { member_id: e.member_id });
            }
        }
        if let Err(e) = self.exec("DELETE FROM idempotency WHERE expires_at <= ?", vec![now.into()]) {
            worker::console_error!("sweep idempotency: {e}");
        }
        // One batch of the list flush per alarm run (bounded calls per invocation); a pass that
        // still has members to tell, or failed, re-arms soon.
        let mut flush_at = None;
        if let Ok(Some(meta)) = self.meta() {
            match self.flush_batch(&meta).await {
                FlushStep::Idle => {}
                FlushStep::More => {
                    let members = self.active_roster().map(|r| r.len()).unwrap_or(0);
                    flush_at = Some(
                        platform::now_ms() + alarm::flush_batch_gap_ms(members, FLUSH_BATCH, self.flush_delay_ms()),
                    );
                }
                FlushStep::Failed => flush_at = Some(platform::now_ms() + self.flush_delay_ms().max(1000) * 5),
                FlushStep::Done => {
                    let dirty = self
                        .scalar("SELECT list_version > list_flushed AS v FROM conversation", vec![])
                        .ok()
                        .flatten()
                        .unwrap_or(0);
                    if dirty != 0 {
                        flush_at = Some(platform::now_ms() + self.flush_delay_ms());
                    }
                }
            }
        }
        // Re-arm: the earliest remaining record or typing state, and the flush's next step.
        let earliest = self.scalar("SELECT MIN(expires_at) AS v FROM idempotency", vec![]).unwrap_or_default();
        let typing_end = self.scalar("SELECT MIN(expires_at) AS v FROM typing", vec![]).unwrap_or_default();
        if let Some(at) = alarm::next_fire(alarm::next_fire(earliest, typing_end), flush_at) {
            self.ensure_alarm(at).await;
        }
    }

    /// Tells the next batch of members' objects the conversation's current title and last activity.
    /// A pass starts when the list is dirty, remembers the version it serves, walks the members in id
    /// order `FLUSH_BATCH` at a time (the cursor is stored, so hibernation loses nothing), and when it
    /// reaches the end marks that version flushed.
    async fn flush_batch(&self, meta: &MetaRow) -> FlushStep {
        #[derive(Deserialize)]
        struct Pass {
            pass_version: i64,
            cursor: Option<String>,
        }
        let pass = self
            .query::<Pass>("SELECT pass_version, cursor FROM list_flush WHERE id = 1", vec![])
            .ok()
            .and_then(|p| p.into_iter().next());
        let (version, cursor) = match pass {
            Some(p) => (p.pass_version, p.cursor.unwrap_or_default()),
            None => {
                let dirty = self
                    .scalar("SELECT list_version AS v FROM conversation WHERE list_version > list_flushed", vec![])
                    .ok()
                    .flatten();
                match dirty {
                    Some(v) => {
                        let _ = self.exec(
                            "INSERT OR REPLACE INTO list_flush (id, pass_version, cursor) VALUES (1, ?, '')",
                            vec![v.into()],
                        );
                        (v, String::new())
                    }
                    None => return FlushStep::Idle,
                }
            }
        };
        #[derive(Deserialize)]
        struct M {
            member_id: String,
        }
        let batch: Vec<M> = match self.query(
            "SELECT member_id FROM members WHERE left_at IS NULL AND member_id > ? ORDER BY member_id LIMIT ?",
            vec![cursor.as_str().into(), (FLUSH_BATCH as i64).into()],
        ) {
            Ok(b) => b,
            Err(_) => return FlushStep::Failed,
        };
        let mut ok = true;
        for chunk in batch.chunks(FLUSH_CONCURRENCY) {
            let calls = chunk.iter().map(|m| {
                let touch = MemberCommand::Touch {
                    conversation_id: meta.id.clone(),
                    title: meta.title.clone(),
                    last_activity_at: meta.last_activity_at,
                };
                rpc::member(&self.env, &m.member_id, touch)
            });
            for r in join_all(calls).await {
                match r {
                    Ok(resp) if resp.status_code() < 300 => {}
                    Ok(resp) => {
                        worker::console_error!("list flush answered {}", resp.status_code());
                        ok = false;
                    }
                    Err(e) => {
                        worker::console_error!("list flush: {e}");
                        ok = false;
                    }
                }
            }
        }
        if !ok {
            // The same batch is tried again later.
            return FlushStep::Failed;
        }
        match batch.last() {
            Some(last) if batch.len() == FLUSH_BATCH => {
                let _ =
                    self.exec("UPDATE list_flush SET cursor = ? WHERE id = 1", vec![last.member_id.as_str().into()]);
                FlushStep::More
            }
            _ => {
                let _ = self.exec("DELETE FROM list_flush WHERE id = 1", vec![]);
                let _ = self.exec("UPDATE conversation SET list_flushed = MAX(list_flushed, ?)", vec![version.into()]);
                FlushStep::Done
            }
        }
    }

    /// How long new activity waits before members' lists learn of it (`alarm::flush_period_ms`).
    fn flush_delay_ms(&self) -> i64 {
        let members = self.active_roster().map(|r| r.len()).unwrap_or(0);
        alarm::flush_period_ms(self.activity_flush_ms, members)
    }

    // ----------------------------------------------------------------------------------------------
    // Storage helpers
    // ----------------------------------------------------------------------------------------------

    fn exec(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<(), ApiError> {
        if writes_conversation_row(query) {
            self.cached.meta.replace(None);
        }
        self.sql.exec(query, bindings).map(|_| ()).map_err(sql_err)
    }

    /// Assigns the next event seq. A conversation's seq is its newest logged event's (`events` is
    /// never trimmed up to its newest row), kept in the cached conversation row: the event's insert
    /// is its only write. A failed insert drops the cache, so the seq is read again from the log.
    fn next_seq(&self) -> Result<u64, ApiError> {
        if self.cached.meta.borrow().is_none() {
            self.meta()?;
        }
        let mut cached = self.cached.meta.borrow_mut();
        let meta = cached.as_mut().ok_or_else(|| ApiError::internal("no conversation row"))?;
        meta.seq += 1;
        Ok(meta.seq.max(0) as u64)
    }

    /// Records new activity (a message) on the conversation row and in the cached copy.
    fn touch_activity(&self, now: i64) -> Result<(), ApiError> {
        if let Err(e) = self
            .sql
            .exec("UPDATE conversation SET last_activity_at = ?, list_version = list_version + 1", vec![now.into()])
        {
            self.cached.meta.replace(None);
            return Err(sql_err(e));
        }
        if let Some(m) = self.cached.meta.borrow_mut().as_mut() {
            m.last_activity_at = Some(now);
        }
        Ok(())
    }

    /// Members joined or left: the cached roster and who of it is absent are recomputed on next use.
    fn forget_roster(&self) {
        self.cached.roster.replace(None);
        self.connected.borrow_mut().roster_changed();
    }

    fn query<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        bindings: Vec<SqlStorageValue>,
    ) -> Result<Vec<T>, ApiError> {
        self.sql.rows(query, bindings).map_err(sql_err)
    }

    /// The first row's integer column `v` (None when there is no row or it is NULL).
    fn scalar(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<Option<i64>, ApiError> {
        self.sql.scalar(query, bindings).map_err(sql_err)
    }

    /// The conversation row, from memory after the first read (see `Cached::meta`).
    fn meta(&self) -> Result<Option<MetaRow>, ApiError> {
        if let Some(m) = self.cached.meta.borrow().as_ref() {
            return Ok(Some(m.clone()));
        }
        let row = self
            .query::<MetaRow>(
                "SELECT id, sandbox_id, title, created_by, created_at, last_activity_at,
                   COALESCE((SELECT MAX(seq) FROM events), 0) AS seq FROM conversation LIMIT 1",
                vec![],
            )?
            .into_iter()
            .next();
        if let Some(m) = &row {
            self.cached.meta.replace(Some(m.clone()));
        }
        Ok(row)
    }

    /// The conversation, if `caller` is one of its current members: 404 when it does not exist,
    /// 403 when the caller is not (or no longer) a member.
    fn require_member(&self, caller: &str) -> Result<MetaRow, ApiError> {
        let meta = self.meta()?.ok_or_else(|| ApiError::not_found("conversation not found"))?;
        if !self.active_roster()?.contains_key(caller) {
            return Err(ApiError::forbidden("not a member of this conversation"));
        }
        Ok(meta)
    }

    /// The newest message's id, from memory after the first read.
    fn last_message_id(&self) -> Result<Option<String>, ApiError> {
        if let Some(id) = self.cached.last_message_id.borrow().as_ref() {
            return Ok(Some(id.clone()));
        }
        #[derive(Deserialize)]
        struct LastId {
            id: String,
        }
        let last = self
            .query::<LastId>("SELECT id FROM messages ORDER BY id DESC LIMIT 1", vec![])?
            .into_iter()
            .next()
            .map(|r| r.id);
        self.cached.last_message_id.replace(last.clone());
        Ok(last)
    }

    /// Active members (id → is a person), from memory after the first read.
    fn active_roster(&self) -> Result<Rc<HashMap<String, bool>>, ApiError> {
        if let Some(r) = self.cached.roster.borrow().as_ref() {
            return Ok(r.clone());
        }
        #[derive(Deserialize)]
        struct R {
            member_id: String,
            kind: String,
        }
        let rows: Vec<R> = self.query("SELECT member_id, kind FROM members WHERE left_at IS NULL", vec![])?;
        let roster: Rc<HashMap<String, bool>> =
            Rc::new(rows.into_iter().map(|r| (r.member_id, r.kind == "user")).collect());
        self.cached.roster.replace(Some(roster.clone()));
        Ok(roster)
    }

    fn active_members(&self) -> Result<Vec<MemberRow>, ApiError> {
        self.query(
            "SELECT member_id, kind, joined_at FROM members WHERE left_at IS NULL ORDER BY joined_at, member_id",
            vec![],
        )
    }

    fn require_message(&self, message_id: &str) -> Result<MessageRow, ApiError> {
        let rows: Vec<MessageRow> = self.query("SELECT * FROM messages WHERE id = ?", vec![message_id.into()])?;
        rows.into_iter().next().ok_or_else(|| ApiError::not_found("message not found"))
    }

    fn message(&self, conversation_id: &str, message_id: &str) -> Result<Option<Message>, ApiError> {
        let rows: Vec<MessageRow> = self.query("SELECT * FROM messages WHERE id = ?", vec![message_id.into()])?;
        Ok(self.hydrate(conversation_id, &rows)?.into_iter().next())
    }

    fn reactions_of(&self, message_id: &str) -> Result<Vec<switchboard_core::model::ReactionSummary>, ApiError> {
        let rows: Vec<ReactionRow> = self.query(
            "SELECT message_id, emoji, member_id FROM reactions WHERE message_id = ? ORDER BY rowid",
            vec![message_id.into()],
        )?;
        Ok(reactions::summarize(rows.iter().map(|r| (r.emoji.as_str(), r.member_id.as_str()))))
    }

    /// Rows to client messages, with their reaction summaries (one query for the page).
    fn hydrate(&self, conversation_id: &str, rows: &[MessageRow]) -> Result<Vec<Message>, ApiError> {
        let mut reaction_rows: Vec<ReactionRow> = Vec::new();
        if !rows.is_empty() {
            let marks = vec!["?"; rows.len()].join(",");
            let q = format!(
                "SELECT message_id, emoji, member_id FROM reactions WHERE message_id IN ({marks}) ORDER BY rowid"
            );
            reaction_rows = self.query(&q, rows.iter().map(|r| SqlStorageValue::from(r.id.as_str())).collect())?;
        }
        rows.iter()
            .map(|r| {
                let content: Vec<Block> =
                    serde_json::from_str(&r.content).map_err(|e| internal("stored content", e))?;
                let mine = reaction_rows.iter().filter(|x| x.message_id == r.id);
                Ok(Message {
                    id: r.id.clone(),
                    conversation_id: conversation_id.to_string(),
                    sender_id: r.sender_id.clone(),
                    content,
                    in_reply_to_message_id: r.in_reply_to.clone(),
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                    client_updated_at: r.client_updated_at,
                    deleted: r.deleted != 0,
                    delivery_failed: r.delivery_failed != 0,
                    reactions: reactions::summarize(mine.map(|x| (x.emoji.as_str(), x.member_id.as_str()))),
                })
            })
            .collect()
    }
}

/// A JSON array built by SQLite (`json_group_array`); nothing (no row) is an empty list.
fn decode_json_rows<T: serde::de::DeserializeOwned>(text: Option<&str>) -> Result<Vec<T>, ApiError> {
    match text {
        None | Some("") => Ok(Vec::new()),
        Some(t) => serde_json::from_str(t).map_err(|e| internal("decode json rows", e)),
    }
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| internal("encode", e))
}
