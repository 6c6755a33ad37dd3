//! The user's object's tables.

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
  key TEXT PRIMARY KEY, status TEXT NOT NULL, counted INTEGER NOT NULL, bucket TEXT NOT NULL,
  expires_at INTEGER NOT NULL, lease_until INTEGER NOT NULL, deadline INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS records_deadline ON records (deadline);
CREATE TABLE IF NOT EXISTS badges (bucket TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS badge_total (id INTEGER PRIMARY KEY CHECK (id = 1), total INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (
  ticket_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, token TEXT NOT NULL,
  due_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS receipts_due ON receipts (due_at);
";
