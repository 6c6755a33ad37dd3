-- The notifications worker's tables (services/notifications).

-- Expo push tokens: one row per device. A token belongs to one user; registering it for another
-- user moves it. Tokens Expo calls DeviceNotRegistered are deleted.
CREATE TABLE IF NOT EXISTS push_tokens (
  token TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  platform TEXT,
  app_version TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS push_tokens_user ON push_tokens (user_id, updated_at);

-- Notification preferences. A user without a row has the defaults: chat pushes on, preview "generic".
CREATE TABLE IF NOT EXISTS notification_preferences (
  user_id TEXT PRIMARY KEY,
  chat_messages_enabled INTEGER NOT NULL,
  preview TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
