//! A bot's online status (the member object of `bot:kiloclaw:{sandboxId}`).

use crate::commands::BotStatusAnswer;
use crate::store::Store;
use crate::{Member, Outcome, Reply};
use serde::Deserialize;
use switchboard_core::ApiError;

fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(format!("encode: {e}")))
}

impl<S: Store> Member<S> {
    /// Records the status and starts telling the bot's conversations and the people in them
    /// (`bot_fanout`, from the alarm); answers `{online, at}`. `at` must be within a day of `now`
    /// (`validate::client_time`). A report older (`at`) than the stored status changes nothing: it
    /// answers the stored status with `stale: true`.
    pub(crate) fn set_bot_status(&self, online: bool, at: i64, now: i64) -> Outcome {
        self.command(|| {
            let at = switchboard_core::validate::client_time("at", at, now)?;
            if let Some(stored) = self.stored_bot_status()? {
                if at < stored.at {
                    let answer = BotStatusAnswer { online: stored.online != 0, at: Some(stored.at), stale: true };
                    return Ok(Reply::json(200, to_value(&answer)?));
                }
            }
            self.exec(
                "INSERT OR REPLACE INTO bot_status (id, online, at) VALUES (1, ?, ?)",
                &[online.into(), at.into()],
            )?;
            self.start_bot_fanout(online, at, now)?;
            Ok(Reply::json(200, to_value(&BotStatusAnswer { online, at: Some(at), stale: false })?))
        })
    }

    /// `{online, at}`; a bot never heard from is offline since never (`at: null`).
    pub(crate) fn bot_status(&self) -> Result<Reply, ApiError> {
        let answer = match self.stored_bot_status()? {
            Some(s) => BotStatusAnswer { online: s.online != 0, at: Some(s.at), stale: false },
            None => BotStatusAnswer { online: false, at: None, stale: false },
        };
        Ok(Reply::json(200, to_value(&answer)?))
    }

    fn stored_bot_status(&self) -> Result<Option<StoredStatus>, ApiError> {
        if !self.exists()? {
            return Ok(None);
        }
        let rows: Vec<StoredStatus> = self.query("SELECT online, at FROM bot_status WHERE id = 1", &[])?;
        Ok(rows.into_iter().next())
    }
}

#[derive(Deserialize)]
struct StoredStatus {
    online: i64,
    at: i64,
}
