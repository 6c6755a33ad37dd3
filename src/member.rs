//! `MemberObject`: one Durable Object per member (a user, or a sandbox's bot).
//!
//! It holds the member's conversation list, so listing never scans conversations and no global
//! database sits on the message path, and it redeems the member's connect tickets exactly once.

use crate::http::{error_response, internal, json, no_content};
use crate::platform;
use crate::rpc::MemberCommand;
use serde::Deserialize;
use serde_json::json;
use switchboard_core::cursor::ListCursor;
use switchboard_core::model::ConversationListItem;
use switchboard_core::ApiError;
use worker::{durable_object, wasm_bindgen, DurableObject, Env, Request, Response, SqlStorage, SqlStorageValue, State};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conversations (
  conversation_id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL, title TEXT,
  last_activity_at INTEGER, last_read_at INTEGER, joined_at INTEGER NOT NULL, sort_key INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_order ON conversations (sort_key DESC, conversation_id DESC);
CREATE TABLE IF NOT EXISTS tickets (nonce TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bot_status (id INTEGER PRIMARY KEY CHECK (id = 1), online INTEGER NOT NULL, at INTEGER NOT NULL);
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
    sql: SqlStorage,
}

impl DurableObject for MemberObject {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(SCHEMA, None) {
            worker::console_error!("member schema: {e}");
        }
        MemberObject { sql }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match req.text().await {
            Ok(body) => match serde_json::from_str::<MemberCommand>(&body) {
                Ok(cmd) => self.run(cmd),
                Err(e) => Err(internal("decode member rpc", e)),
            },
            Err(e) => Err(internal("read member rpc", e)),
        };
        match result {
            Ok(r) => Ok(r),
            Err(e) => error_response(&e),
        }
    }
}

fn sql_err(e: worker::Error) -> ApiError {
    internal("member sql", e)
}

impl MemberObject {
    fn exec(&self, q: &str, b: Vec<SqlStorageValue>) -> Result<usize, ApiError> {
        self.sql.exec(q, b).map(|c| c.rows_written()).map_err(sql_err)
    }

    fn run(&self, cmd: MemberCommand) -> Result<Response, ApiError> {
        match cmd {
            MemberCommand::Upsert { conversation_id, sandbox_id, title, joined_at, last_activity_at } => {
                let sort_key = last_activity_at.unwrap_or(joined_at).max(joined_at);
                self.exec(
                    "INSERT INTO conversations (conversation_id, sandbox_id, title, last_activity_at, joined_at, sort_key)
                     VALUES (?, ?, ?, ?, ?, ?)
                     ON CONFLICT (conversation_id) DO UPDATE SET title = excluded.title,
                       last_activity_at = excluded.last_activity_at, joined_at = excluded.joined_at, sort_key = excluded.sort_key",
                    vec![
                        conversation_id.into(),
                        sandbox_id.into(),
                        title.into(),
                        last_activity_at.into(),
                        joined_at.into(),
                        sort_key.into(),
                    ],
                )?;
                no_content()
            }
            MemberCommand::Remove { conversation_id } => {
                self.exec("DELETE FROM conversations WHERE conversation_id = ?", vec![conversation_id.into()])?;
                no_content()
            }
            MemberCommand::Touch { conversation_id, title, last_activity_at } => {
                // Activity only moves forward; a member who left has no row and is not re-added.
                self.exec(
                    "UPDATE conversations SET title = ?1,
                       last_activity_at = CASE WHEN ?2 IS NULL THEN last_activity_at
                                               ELSE MAX(COALESCE(last_activity_at, ?2), ?2) END,
                       sort_key = MAX(sort_key, COALESCE(?2, sort_key))
                     WHERE conversation_id = ?3",
                    vec![title.into(), last_activity_at.into(), conversation_id.into()],
                )?;
                no_content()
            }
            MemberCommand::List { sandbox_id, limit, cursor } => self.list(sandbox_id, limit, cursor),
            MemberCommand::MarkRead { conversation_id, last_read_at } => {
                self.exec(
                    "UPDATE conversations SET last_read_at = MAX(COALESCE(last_read_at, 0), ?1) WHERE conversation_id = ?2",
                    vec![last_read_at.into(), conversation_id.into()],
                )?;
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
                let ids: Vec<Id> = self.sql.exec("SELECT conversation_id FROM conversations", None).and_then(|c| c.to_array()).map_err(sql_err)?;
                let ids: Vec<String> = ids.into_iter().map(|i| i.conversation_id).collect();
                json(200, &json!({"online": online, "at": at, "conversations": ids}))
            }
            MemberCommand::GetBotStatus => {
                #[derive(Deserialize)]
                struct Status {
                    online: i64,
                    at: i64,
                }
                let rows: Vec<Status> = self.sql.exec("SELECT online, at FROM bot_status WHERE id = 1", None).and_then(|c| c.to_array()).map_err(sql_err)?;
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
                let written = self.exec("INSERT OR IGNORE INTO tickets (nonce, expires_at) VALUES (?, ?)", vec![nonce.into(), expires_at_ms.into()])?;
                if written == 0 {
                    return Err(ApiError::unauthorized("ticket is invalid, used or expired"));
                }
                no_content()
            }
        }
    }

    fn list(&self, sandbox_id: Option<String>, limit: usize, cursor: Option<String>) -> Result<Response, ApiError> {
        let cursor = cursor.as_deref().map(ListCursor::decode).transpose()?;
        let (key, id) = match &cursor {
            Some(c) => (c.sort_key, c.conversation_id.clone()),
            None => (i64::MAX, String::new()),
        };
        let rows: Vec<Row> = self
            .sql
            .exec(
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
            .and_then(|c| c.to_array())
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
            items.last().map(|i| ListCursor { sort_key: i.sort_key(), conversation_id: i.conversation_id.clone() }.encode())
        } else {
            None
        };
        json(200, &json!({"conversations": items, "hasMore": has_more, "nextCursor": next_cursor}))
    }
}
