//! `MemberObject`: one Durable Object per member (a user, or a sandbox's bot).
//!
//! It holds the member's conversation list, so listing never scans conversations and no global
//! database sits on the message path; it redeems the member's connect tickets exactly once; it keeps
//! a bot's online status; and (`hub`) it holds the member's event-hub sockets, one per tab or device,
//! with their subscribed contexts and the member's own event log for resume.

mod hub;

use crate::http::{error_response, internal, json, no_content};
use crate::platform;
use crate::rpc::MemberCommand;
use crate::sql::Sql;
use hub::HubState;
use serde::Deserialize;
use serde_json::json;
use switchboard_core::cursor::ListCursor;
use switchboard_core::hub::contexts;
use switchboard_core::model::ConversationListItem;
use switchboard_core::ApiError;
use worker::{
    durable_object, wasm_bindgen, DurableObject, Env, Request, Response, SqlStorageValue, State, WebSocket,
    WebSocketIncomingMessage,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conversations (
  conversation_id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL, title TEXT,
  last_activity_at INTEGER, last_read_at INTEGER, joined_at INTEGER NOT NULL, sort_key INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_order ON conversations (sort_key DESC, conversation_id DESC);
CREATE TABLE IF NOT EXISTS tickets (nonce TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bot_status (id INTEGER PRIMARY KEY CHECK (id = 1), online INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hub_state (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hub_identity (id INTEGER PRIMARY KEY CHECK (id = 1), member_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hub_log (seq INTEGER PRIMARY KEY, context TEXT NOT NULL, frame TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hub_sessions (session TEXT PRIMARY KEY, opened_at INTEGER NOT NULL, closed_at INTEGER);
CREATE TABLE IF NOT EXISTS hub_subs (session TEXT NOT NULL, context TEXT NOT NULL, PRIMARY KEY (session, context));
CREATE TABLE IF NOT EXISTS hub_watch (conversation_id TEXT PRIMARY KEY, watching INTEGER NOT NULL, present INTEGER NOT NULL);
";

#[derive(Debug, Deserialize)]
struct Row {
    conversation_id: String,
    sandbox_id: String,
    title: Option<String>,
    last_activity_at: Option<i64>,
    last_read_at: Option<i64>,
    joined_at: i64,
}

#[durable_object]
pub struct MemberObject {
    state: State,
    env: Env,
    sql: Sql,
    /// The JavaScript `DurableObjectState`, for the calls workers-rs does not wrap.
    raw_state: wasm_bindgen::JsValue,
    hub: HubState,
    alarm: switchboard_worker_kit::alarm::AlarmSlot,
}

impl DurableObject for MemberObject {
    fn new(state: State, env: Env) -> Self {
        let raw = state._inner();
        let raw_state: wasm_bindgen::JsValue = raw.clone().into();
        let state = State::from(raw);
        let sql = Sql::new(state.storage().sql());
        if let Err(e) = sql.exec(SCHEMA, vec![]) {
            worker::console_error!("member schema: {e}");
        }
        hub::set_auto_response(&state);
        MemberObject { state, env, sql, raw_state, hub: HubState::default(), alarm: Default::default() }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = if req.path() == "/connect" {
            self.hub_connect(&req).await
        } else {
            match req.text().await {
                Ok(body) => match serde_json::from_str::<MemberCommand>(&body) {
                    Ok(cmd) => self.run(cmd).await,
                    Err(e) => Err(internal("decode member rpc", e)),
                },
                Err(e) => Err(internal("read member rpc", e)),
            }
        };
        match result {
            Ok(r) => Ok(r),
            Err(e) => error_response(&e),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        self.sweep_stale_sockets().await;
        Response::ok("ok")
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> worker::Result<()> {
        self.hub_message(&ws, message).await;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        self.hub_closed(&ws).await;
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.hub_closed(&ws).await;
        let _ = ws.close(Some(switchboard_core::limits::close::INTERNAL), Some("socket error"));
        Ok(())
    }
}

fn sql_err(e: worker::Error) -> ApiError {
    internal("member sql", e)
}

impl MemberObject {
    fn exec(&self, q: &str, b: Vec<SqlStorageValue>) -> Result<usize, ApiError> {
        self.sql.exec(q, b).map_err(sql_err)
    }

    async fn run(&self, cmd: MemberCommand) -> Result<Response, ApiError> {
        match cmd {
            MemberCommand::Deliver { context, event, payload, ephemeral } => {
                self.deliver(&context, &event, &payload, ephemeral);
                no_content()
            }
            MemberCommand::Upsert { conversation_id, sandbox_id, title, joined_at, last_activity_at } => {
                let existed = self.row(&conversation_id)?.is_some();
                let sort_key = last_activity_at.unwrap_or(joined_at).max(joined_at);
                self.exec(
                    "INSERT INTO conversations (conversation_id, sandbox_id, title, last_activity_at, joined_at, sort_key)
                     VALUES (?, ?, ?, ?, ?, ?)
                     ON CONFLICT (conversation_id) DO UPDATE SET title = excluded.title,
                       last_activity_at = excluded.last_activity_at, joined_at = excluded.joined_at, sort_key = excluded.sort_key",
                    vec![
                        conversation_id.as_str().into(),
                        sandbox_id.as_str().into(),
                        title.clone().into(),
                        last_activity_at.into(),
                        joined_at.into(),
                        sort_key.into(),
                    ],
                )?;
                if !existed {
                    let payload = json!({"conversationId": conversation_id, "title": title, "sandboxId": sandbox_id});
                    self.deliver(&contexts::instance(&sandbox_id), "conversation.created", &payload, false);
                }
                no_content()
            }
            MemberCommand::Remove { conversation_id } => {
                let row = self.row(&conversation_id)?;
                self.exec(
                    "DELETE FROM conversations WHERE conversation_id = ?",
                    vec![conversation_id.as_str().into()],
                )?;
                if let Some(r) = row {
                    self.deliver(
                        &contexts::instance(&r.sandbox_id),
                        "conversation.left",
                        &json!({"conversationId": conversation_id}),
                        false,
                    );
                    self.forget_conversation(&r.sandbox_id, &conversation_id).await;
                }
                no_content()
            }
            MemberCommand::Touch { conversation_id, title, last_activity_at } => {
                let before = self.row(&conversation_id)?;
                // Activity only moves forward; a member who left has no row and is not re-added.
                self.exec(
                    "UPDATE conversations SET title = ?1,
                       last_activity_at = CASE WHEN ?2 IS NULL THEN last_activity_at
                                               ELSE MAX(COALESCE(last_activity_at, ?2), ?2) END,
                       sort_key = MAX(sort_key, COALESCE(?2, sort_key))
                     WHERE conversation_id = ?3",
                    vec![title.clone().into(), last_activity_at.into(), conversation_id.as_str().into()],
                )?;
                if let Some(b) = before {
                    let ctx = contexts::instance(&b.sandbox_id);
                    if title.is_some() && b.title != title {
                        self.deliver(
                            &ctx,
                            "conversation.renamed",
                            &json!({"conversationId": conversation_id, "title": title}),
                            false,
                        );
                    }
                    if let Some(at) = last_activity_at.filter(|at| b.last_activity_at.map(|x| *at > x).unwrap_or(true))
                    {
                        self.deliver(
                            &ctx,
                            "conversation.activity",
                            &json!({"conversationId": conversation_id, "lastActivityAt": at}),
                            false,
                        );
                    }
                }
                no_content()
            }
            MemberCommand::List { sandbox_id, limit, cursor } => self.list(sandbox_id, limit, cursor),
            MemberCommand::MarkRead { conversation_id, member_id, last_read_at } => {
                self.exec(
                    "UPDATE conversations SET last_read_at = MAX(COALESCE(last_read_at, 0), ?1) WHERE conversation_id = ?2",
                    vec![last_read_at.into(), conversation_id.as_str().into()],
                )?;
                if let Some(r) = self.row(&conversation_id)? {
                    let payload =
                        json!({"conversationId": conversation_id, "memberId": member_id, "lastReadAt": last_read_at});
                    self.deliver(&contexts::instance(&r.sandbox_id), "conversation.read", &payload, false);
                }
                no_content()
            }
            MemberCommand::SetBotStatus { online, at } => {
                self.exec(
                    "INSERT OR REPLACE INTO bot_status (id, online, at) VALUES (1, ?, ?)",
                    vec![(online as i64).into(), at.into()],
                )?;
                #[derive(Deserialize)]
                struct Id {
                    conversation_id: String,
                }
                let ids: Vec<Id> =
                    self.sql.rows("SELECT conversation_id FROM conversations", vec![]).map_err(sql_err)?;
                let ids: Vec<String> = ids.into_iter().map(|i| i.conversation_id).collect();
                json(200, &json!({"online": online, "at": at, "conversations": ids}))
            }
            MemberCommand::GetBotStatus => {
                #[derive(Deserialize)]
                struct Status {
                    online: i64,
                    at: i64,
                }
                let rows: Vec<Status> =
                    self.sql.rows("SELECT online, at FROM bot_status WHERE id = 1", vec![]).map_err(sql_err)?;
                match rows.first() {
                    Some(s) => json(200, &json!({"online": s.online != 0, "at": s.at})),
                    None => json(200, &json!({"online": false, "at": null})),
                }
            }
            MemberCommand::RedeemTicket { nonce, expires_at_ms } => {
                let now = platform::now_ms();
                self.exec("DELETE FROM tickets WHERE expires_at <= ?", vec![now.into()])?;
                if expires_at_ms <= now {
                    return Err(ApiError::unauthorized("ticket is invalid, used or expired"));
                }
                let written = self.exec(
                    "INSERT OR IGNORE INTO tickets (nonce, expires_at) VALUES (?, ?)",
                    vec![nonce.into(), expires_at_ms.into()],
                )?;
                if written == 0 {
                    return Err(ApiError::unauthorized("ticket is invalid, used or expired"));
                }
                no_content()
            }
        }
    }

    fn row(&self, conversation_id: &str) -> Result<Option<Row>, ApiError> {
        let rows: Vec<Row> = self
            .sql
            .rows(
                "SELECT conversation_id, sandbox_id, title, last_activity_at, last_read_at, joined_at FROM conversations WHERE conversation_id = ?",
                vec![conversation_id.into()],
            )
            .map_err(sql_err)?;
        Ok(rows.into_iter().next())
    }

    /// Does the member have a conversation with this sandbox (or is it this sandbox's bot)?
    fn has_sandbox(&self, sandbox_id: &str) -> bool {
        let rows: Vec<serde_json::Value> = self
            .sql
            .rows("SELECT conversation_id FROM conversations WHERE sandbox_id = ? LIMIT 1", vec![sandbox_id.into()])
            .unwrap_or_default();
        !rows.is_empty()
    }

    fn has_conversation(&self, sandbox_id: &str, conversation_id: &str) -> bool {
        matches!(self.row(conversation_id), Ok(Some(r)) if r.sandbox_id == sandbox_id)
    }

    fn list(&self, sandbox_id: Option<String>, limit: usize, cursor: Option<String>) -> Result<Response, ApiError> {
        let cursor = cursor.as_deref().map(ListCursor::decode).transpose()?;
        let (key, id) = match &cursor {
            Some(c) => (c.sort_key, c.conversation_id.clone()),
            // No cursor: the bound is not used (`?2 = 0`).
            None => (0, String::new()),
        };
        let rows: Vec<Row> = self
            .sql
            .rows(
                "SELECT conversation_id, sandbox_id, title, last_activity_at, last_read_at, joined_at FROM conversations
                 WHERE (?1 IS NULL OR sandbox_id = ?1)
                   AND (?2 = 0 OR sort_key < ?3 OR (sort_key = ?3 AND conversation_id < ?4))
                 ORDER BY sort_key DESC, conversation_id DESC LIMIT ?5",
                vec![
                    sandbox_id.into(),
                    (cursor.is_some() as i64).into(),
                    key.into(),
                    id.into(),
                    ((limit + 1) as i64).into(),
                ],
            )
            .map_err(sql_err)?;
        let has_more = rows.len() > limit;
        let items: Vec<ConversationListItem> = rows
            .into_iter()
            .take(limit)
            .map(|r| ConversationListItem {
                conversation_id: r.conversation_id,
                title: r.title,
                sandbox_id: r.sandbox_id,
                last_activity_at: r.last_activity_at,
                last_read_at: r.last_read_at,
                joined_at: r.joined_at,
            })
            .collect();
        let next_cursor = if has_more {
            items
                .last()
                .map(|i| ListCursor { sort_key: i.sort_key(), conversation_id: i.conversation_id.clone() }.encode())
        } else {
            None
        };
        json(200, &json!({"conversations": items, "hasMore": has_more, "nextCursor": next_cursor}))
    }
}
