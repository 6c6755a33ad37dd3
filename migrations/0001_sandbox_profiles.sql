-- Display names sandboxes set for themselves (PUT /bot/v1/sandboxes/:id/profile).
-- Read when a conversation's push title is built; never on the message path.
CREATE TABLE IF NOT EXISTS sandbox_profiles (
  sandbox_id TEXT PRIMARY KEY,
  label TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
