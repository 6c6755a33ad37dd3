//! A publish: the body is read to its end, each chunk handed to the core, and the core pumped
//! (sleeping while it waits for a subscriber's acks) before the next chunk is read; then the final
//! line, if any, is committed to the conversation as a normal message.

use super::{caller, LiveChannelObject};
use crate::http::{internal, json};
use crate::platform;
use crate::rpc::{self, ConversationCommand};
use futures::StreamExt;
use serde::Deserialize;
use switchboard_core::live::FinalLine;
use switchboard_core::ApiError;
use switchboard_live::{PublishAnswer, PublishId, Step};
use switchboard_worker_kit::call::error_of;
use worker::{Request, Response};

/// What a publish reads of the conversation's answer to the committed line.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sent {
    message_id: String,
}

impl LiveChannelObject {
    pub(super) async fn publish(&self, req: &mut Request) -> Result<Response, ApiError> {
        let (member, conversation) = caller(req)?;
        // Checked again (the bot may have gone offline since the preflight). A refused body is still
        // read to its end, so the answer never comes before the body is consumed.
        let refused = self.admit_publisher(&conversation, &member).await.err();
        let (id, too_many) = self.core.publish_start(&member, refused.is_some());
        let refused = refused.or(too_many);
        let streamed = self.stream_body(req, id).await;
        let finished = self.core.publish_finish(id);
        if let Some(e) = refused {
            return Err(e);
        }
        streamed?;
        let finished = finished?;
        let commit = match finished.committed {
            Some(line) => Some(self.commit(&conversation, &member, line).await?),
            None => None,
        };
        json(200, &PublishAnswer::new(&finished.tally, commit))
    }

    /// Reads the body to its end, delivering as it goes. The worker ends the body on the
    /// publisher's idle timeout or broken connection, so this never waits forever.
    async fn stream_body(&self, req: &mut Request, id: PublishId) -> Result<(), ApiError> {
        let mut stream = req.stream().map_err(|e| ApiError::invalid(format!("no body to publish: {e}")))?;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => self.core.publish_chunk(id, &c),
                Err(e) => {
                    worker::console_warn!("publish body broke off: {e}");
                    break;
                }
            }
            self.pump(id).await;
        }
        self.core.publish_end(id);
        self.pump(id).await;
        Ok(())
    }

    /// Delivers what the core can, sleeping while it waits for room.
    async fn pump(&self, id: PublishId) {
        loop {
            let (step, effects) = self.with_ctx(|ctx| self.core.pump(id, ctx));
            self.carry_out(None, effects);
            match step {
                Step::Done => return,
                Step::WaitForRoom { retry_in_ms } => platform::sleep_ms(retry_in_ms).await,
            }
        }
    }

    /// Commits the final line as a message from the publisher: the new message's id, or why the
    /// conversation refused it. A failure to reach the conversation fails the publish.
    async fn commit(
        &self,
        conversation: &str,
        member: &str,
        line: FinalLine,
    ) -> Result<Result<String, ApiError>, ApiError> {
        let cmd = ConversationCommand::SendMessage {
            content: line.content,
            in_reply_to_message_id: None,
            client_id: line.client_id,
        };
        let mut resp = rpc::conversation(&self.env, conversation, member, cmd).await?;
        let status = resp.status_code();
        let text = resp.text().await.map_err(|e| internal("read commit answer", e))?;
        if status >= 300 {
            return Ok(Err(error_of(status, &text)));
        }
        Ok(serde_json::from_str::<Sent>(&text).map(|s| s.message_id).map_err(|e| internal("decode commit answer", e)))
    }
}
