//! The member's tables. The Durable Object and the native tests run this same text.

pub const SCHEMA: &str = "
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
CREATE TABLE IF NOT EXISTS creations (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sandbox_users (user_id TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sandbox_users_set (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hub_watch (conversation_id TEXT PRIMARY KEY, watching INTEGER NOT NULL, present INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bot_fanout (id INTEGER PRIMARY KEY CHECK (id = 1), sandbox_id TEXT NOT NULL, online INTEGER NOT NULL, at INTEGER NOT NULL, cursor TEXT);
CREATE TABLE IF NOT EXISTS bot_fanout_people (member_id TEXT PRIMARY KEY, told INTEGER NOT NULL);
";
