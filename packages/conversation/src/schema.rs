//! The conversation's tables. The Durable Object and the native tests run this same text.

pub const SCHEMA: &str = "
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
