//! Who may use a sandbox (the member object of `bot:kiloclaw:{sandboxId}` holds the list): the
//! people who may create a conversation with its bot. The sandbox's bot, or an operator, replaces
//! the list; conversation creation asks it (creation is not the message path, so no global database
//! sits on a hot path). A sandbox whose list was never set is open only when the deployment says so
//! (local mode), never in production.

use crate::store::Store;
use crate::{Member, Outcome, Reply};
use serde_json::json;
use switchboard_core::limits::MAX_SANDBOX_USERS;
use switchboard_core::{ApiError, MemberId};

/// The validated list: people's ids (never `bot:…`), once each, in the order given.
pub fn validate_users(users: &[String]) -> Result<Vec<String>, ApiError> {
    if users.len() > MAX_SANDBOX_USERS {
        return Err(ApiError::invalid(format!("users: at most {MAX_SANDBOX_USERS}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        let id = MemberId::user(u).map_err(|e| ApiError::invalid(format!("users[{i}]: {}", e.message)))?.to_string();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

impl<S: Store> Member<S> {
    /// Replaces the sandbox's allowed users; answers `{users}` as stored.
    pub(crate) fn set_sandbox_users(&self, users: &[String]) -> Outcome {
        let users = match validate_users(users) {
            Ok(u) => u,
            Err(e) => return (Err(e), Default::default()),
        };
        self.command(|| {
            self.exec("DELETE FROM sandbox_users", &[])?;
            for (i, u) in users.iter().enumerate() {
                self.exec(
                    "INSERT INTO sandbox_users (user_id, position) VALUES (?, ?)",
                    &[u.as_str().into(), (i as i64).into()],
                )?;
            }
            self.exec(
                "INSERT OR REPLACE INTO sandbox_users_set (id, count) VALUES (1, ?)",
                &[(users.len() as i64).into()],
            )?;
            Ok(Reply::json(200, json!({"users": users})))
        })
    }

    /// May `user` create a conversation with this sandbox's bot? 204, or 403 saying why.
    /// `open_unlisted`: a sandbox whose list was never set admits everyone (local mode only).
    pub(crate) fn sandbox_access(&self, sandbox_id: &str, user: &str, open_unlisted: bool) -> Result<Reply, ApiError> {
        let listed =
            self.exists()? && self.scalar("SELECT COUNT(*) AS v FROM sandbox_users_set", &[])?.unwrap_or(0) > 0;
        if !listed {
            if open_unlisted {
                return Ok(Reply::no_content());
            }
            return Err(ApiError::forbidden(format!(
                "sandbox {sandbox_id} has no allowed users yet: its bot lists them with PUT /bot/v1/sandboxes/{sandbox_id}/users"
            )));
        }
        if self.scalar("SELECT 1 AS v FROM sandbox_users WHERE user_id = ?", &[user.into()])?.is_none() {
            return Err(ApiError::forbidden(format!(
                "you may not use sandbox {sandbox_id}: only the users its bot allows may start a conversation with it"
            )));
        }
        Ok(Reply::no_content())
    }
}
