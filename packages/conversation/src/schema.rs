//! The conversation's tables. The Durable Object and the native tests run this same text.
//!
//! [`SCHEMA`] is the first version (every statement idempotent); [`MIGRATIONS`] are the changes
//! since, applied in order, each in one transaction with the version it brings the database to
//! (`schema_version`), so an object created before a change is brought up to date on its first
//! start after a deploy.

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
CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
";

/// Changes after [`SCHEMA`]: the n-th entry brings the database to version n + 1.
pub const MIGRATIONS: &[&str] = &[
    // 1: bridged messages carry their source; bridges linked to the conversation.
    "ALTER TABLE messages ADD COLUMN source TEXT;
     CREATE INDEX IF NOT EXISTS messages_client_id ON messages (client_id);
     CREATE TABLE IF NOT EXISTS bridges (
       id TEXT PRIMARY KEY, platform TEXT NOT NULL, room TEXT NOT NULL, options TEXT NOT NULL,
       created_by TEXT NOT NULL, created_at INTEGER NOT NULL,
       state TEXT NOT NULL DEFAULT 'connecting', reason TEXT, last_event_at INTEGER,
       received INTEGER NOT NULL DEFAULT 0, relayed INTEGER NOT NULL DEFAULT 0,
       UNIQUE (platform, room));",
    // 2: an auto-title remembers the message it was taken from (deleting that message renames).
    "ALTER TABLE conversation ADD COLUMN title_message_id TEXT;",
    // 3: who added each member (shown to them; the creator is the owner, who may remove others).
    "ALTER TABLE members ADD COLUMN added_by TEXT;",
    // 4: pushes recorded with their message, delivered by the alarm (`push`).
    "CREATE TABLE IF NOT EXISTS push_outbox (
       message_id TEXT PRIMARY KEY, request TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
       next_at INTEGER NOT NULL, dead_at INTEGER, last_error TEXT);
     CREATE INDEX IF NOT EXISTS push_outbox_due ON push_outbox (next_at) WHERE dead_at IS NULL;",
    // 5: members whose list a flush could not update, retried one by one (`alarm`).
    "CREATE TABLE IF NOT EXISTS list_retry (member_id TEXT PRIMARY KEY, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL);",
    // 6: the background reconcile of members' lists (`alarm`): when the next one is due, and which pass is one.
    "CREATE TABLE IF NOT EXISTS list_reconcile (id INTEGER PRIMARY KEY CHECK (id = 1), due_at INTEGER NOT NULL);
     ALTER TABLE list_flush ADD COLUMN reconcile INTEGER NOT NULL DEFAULT 0;",
];
