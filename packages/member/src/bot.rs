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
    /// Records the status; answers `{online, at, conversations}` (the bot's conversation ids, so the
    /// worker can tell their live channels and members).
    pub(crate) fn set_bot_status(&self, online: bool, at: i64) -> Outcome {
        self.command(|| {
            self.exec(
                "INSERT OR REPLACE INTO bot_status (id, online, at) VALUES (1, ?, ?)",
                &[online.into(), at.into()],
            )?;
            #[derive(Deserialize)]
            struct Id {
                conversation_id: String,
            }
            let ids: Vec<String> = self
                .query::<Id>("SELECT conversation_id FROM conversations", &[])?
                .into_iter()
                .map(|i| i.conversation_id)
                .collect();
            Ok(Reply::json(200, to_value(&BotStatusAnswer { online, at: Some(at), conversations: ids })?))
        })
    }

    /// `{online, at}`; a bot never heard from is offline since never (`at: null`).
    pub(crate) fn bot_status(&self) -> Result<Reply, ApiError> {
        #[derive(Deserialize)]
        struct Status {
            online: i64,
            at: i64,
        }
        let rows: Vec<Status> = self.query("SELECT online, at FROM bot_status WHERE id = 1", &[])?;
        let answer = match rows.first() {
            Some(s) => BotStatusAnswer { online: s.online != 0, at: Some(s.at), conversations: vec![] },
            None => BotStatusAnswer { online: false, at: None, conversations: vec![] },
        };
        Ok(Reply::json(200, to_value(&answer)?))
    }
}
