//! A bridge object's SQLite: its one configuration row (conversation, bridge id, link, Kosmi token) and its
//! counters, so that a restart (eviction, deploy) resumes the same link with the same token and totals.

use crate::sql::Sql;
use serde::Deserialize;
use switchboard_bridge::link::Link;
use worker::SqlStorageValue as V;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS bridge (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  conversation_id TEXT NOT NULL,
  bridge_id TEXT NOT NULL,
  link TEXT NOT NULL,
  token TEXT,
  received INTEGER NOT NULL DEFAULT 0,
  relayed INTEGER NOT NULL DEFAULT 0,
  last_event_at INTEGER
);
CREATE TABLE IF NOT EXISTS bridge_own_ids (user_id TEXT PRIMARY KEY)";

/// The stored configuration and counters.
#[derive(Debug, Clone)]
pub struct Config {
    pub conversation_id: String,
    pub bridge_id: String,
    pub link: Link,
    pub token: Option<String>,
    pub received: i64,
    pub relayed: i64,
    pub last_event_at: Option<i64>,
}

#[derive(Deserialize)]
struct Row {
    conversation_id: String,
    bridge_id: String,
    link: String,
    token: Option<String>,
    received: i64,
    relayed: i64,
    last_event_at: Option<i64>,
}

pub struct BridgeStore {
    sql: Sql,
}

fn log<T>(what: &str, r: worker::Result<T>) -> Option<T> {
    r.map_err(|e| worker::console_error!("bridge store, {what}: {e}")).ok()
}

impl BridgeStore {
    pub fn new(sql: Sql) -> Self {
        let store = BridgeStore { sql };
        log("schema", store.sql.exec(SCHEMA, vec![]));
        store
    }

    /// The configuration, if this object holds a link.
    pub fn load(&self) -> Option<Config> {
        let rows: Vec<Row> = log("load", self.sql.rows("SELECT * FROM bridge WHERE id = 1", vec![]))?;
        let row = rows.into_iter().next()?;
        let link: Link = match serde_json::from_str(&row.link) {
            Ok(l) => l,
            Err(e) => {
                worker::console_error!("bridge store: stored link unreadable: {e}");
                return None;
            }
        };
        Some(Config {
            conversation_id: row.conversation_id,
            bridge_id: row.bridge_id,
            link,
            token: row.token,
            received: row.received,
            relayed: row.relayed,
            last_event_at: row.last_event_at,
        })
    }

    /// Stores a new link (a repeated start of the same link keeps the token and counters).
    pub fn save_link(&self, conversation_id: &str, bridge_id: &str, link: &Link) -> bool {
        let Ok(text) = serde_json::to_string(link) else { return false };
        log(
            "save link",
            self.sql.exec(
                "INSERT INTO bridge (id, conversation_id, bridge_id, link) VALUES (1, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET conversation_id = excluded.conversation_id,
                   bridge_id = excluded.bridge_id, link = excluded.link",
                vec![V::from(conversation_id), V::from(bridge_id), V::from(text)],
            ),
        )
        .is_some()
    }

    pub fn save_token(&self, token: Option<&str>) {
        let v = token.map_or(V::Null, V::from);
        log("save token", self.sql.exec("UPDATE bridge SET token = ? WHERE id = 1", vec![v]));
    }

    pub fn save_counters(&self, received: i64, relayed: i64, last_event_at: Option<i64>) {
        let at = last_event_at.map_or(V::Null, V::from);
        log(
            "save counters",
            self.sql.exec(
                "UPDATE bridge SET received = ?, relayed = ?, last_event_at = ? WHERE id = 1",
                vec![V::from(received), V::from(relayed), at],
            ),
        );
    }

    /// The user ids the bridge posted as (Kosmi's anonymous logins): their messages are ours.
    pub fn own_ids(&self) -> Vec<String> {
        #[derive(Deserialize)]
        struct Id {
            user_id: String,
        }
        let rows: Vec<Id> =
            log("own ids", self.sql.rows("SELECT user_id FROM bridge_own_ids", vec![])).unwrap_or_default();
        rows.into_iter().map(|r| r.user_id).collect()
    }

    /// Keeps exactly `ids` (a bounded list: `switchboard_bridge::limits::MAX_PAST_OWN_IDS` and the current one).
    pub fn save_own_ids(&self, ids: &[String]) {
        log("clear own ids", self.sql.exec("DELETE FROM bridge_own_ids", vec![]));
        for id in ids {
            log(
                "save own id",
                self.sql.exec("INSERT OR IGNORE INTO bridge_own_ids (user_id) VALUES (?)", vec![V::from(id.as_str())]),
            );
        }
    }

    /// Forgets everything (the link was removed).
    pub fn clear(&self) {
        log("clear", self.sql.exec("DELETE FROM bridge", vec![]));
        log("clear own ids", self.sql.exec("DELETE FROM bridge_own_ids", vec![]));
    }
}
