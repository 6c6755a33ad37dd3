//! A publish in progress: the body's bytes are split into lines as they arrive, each complete
//! valid line goes to every subscriber as one frame (once every subscriber's window has room for
//! it, or the stall grace is over), the most recent lines are kept for late joiners, and the last
//! line `{"final": true, ...}` is committed to the conversation when the body ends.
//!
//! The shell feeds chunks ([`LiveChannel::publish_chunk`]), then calls [`LiveChannel::pump`] until
//! it answers [`Step::Done`], sleeping when it answers [`Step::WaitForRoom`]; the body is not read
//! meanwhile, so a stalled subscriber slows the publisher and loses nothing. A line that does not
//! fit waits at most `live::STALL_GRACE_MS`; the subscribers still full then are closed with 4008.

use crate::{Ctx, Effect, LiveChannel, ROOM_POLL_MS};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use switchboard_core::live::{self, FinalLine, PublishBuffer};
use switchboard_core::ndjson::{Line, LineSplitter, Tally};
use switchboard_core::{ApiError, ErrorCode};

/// A publish in progress, by arrival order.
pub type PublishId = u64;

pub(crate) struct Publish {
    /// Who publishes: every frame names them.
    from: String,
    pub(crate) buffer: PublishBuffer,
    splitter: LineSplitter,
    tally: Tally,
    committed: Option<FinalLine>,
    /// The offline epoch when the publish started.
    epoch: u64,
    /// A refused publish's body is read to its end and dropped.
    discard: bool,
    went_offline: bool,
    /// Complete lines not yet delivered, oldest first.
    queue: VecDeque<Line>,
    /// The line at the head of the queue waits for room until this time.
    stall_deadline: Option<i64>,
}

/// What the shell does next with a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every complete line was delivered: read more of the body.
    Done,
    /// Some subscriber has no room for the next line: sleep this long (acks arrive meanwhile) and
    /// pump again.
    WaitForRoom { retry_in_ms: u64 },
}

/// A publish whose body ended: what it delivered and the line to commit, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub tally: Tally,
    pub committed: Option<FinalLine>,
}

/// How the publisher's body ended (set by the worker that forwarded it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    Complete,
    IdleTimeout,
    /// The publish ran for the longest a publish may (`LIVE_MAX_PUBLISH_MS`).
    MaxDuration,
    Aborted,
}

/// The answer of a publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishAnswer {
    pub delivered: u64,
    pub skipped: u64,
    pub skipped_invalid: u64,
    pub skipped_too_long: u64,
    pub ended: Ended,
    /// The committed message, when a final line was committed.
    pub message_id: Option<String>,
    /// Why the final line could not be committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_error: Option<ApiError>,
}

impl PublishAnswer {
    /// The answer of a publish that delivered `tally`; `commit` is the outcome of committing its
    /// final line (`None`: there was none).
    pub fn new(tally: &Tally, commit: Option<Result<String, ApiError>>) -> Self {
        let (message_id, commit_error) = match commit {
            Some(Ok(id)) => (Some(id), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        PublishAnswer {
            delivered: tally.delivered,
            skipped: tally.skipped(),
            skipped_invalid: tally.skipped_invalid,
            skipped_too_long: tally.skipped_too_long,
            ended: Ended::Complete,
            message_id,
            commit_error,
        }
    }
}

impl LiveChannel {
    /// Whether one more publish may start now (at most `MAX_CONCURRENT_PUBLISHES` at once).
    pub fn room_for_publish(&self) -> Result<(), ApiError> {
        let active = self.publishes.borrow().values().filter(|p| !p.discard).count();
        if active >= live::MAX_CONCURRENT_PUBLISHES {
            return Err(ApiError::new(
                ErrorCode::TooManyPublishes,
                format!(
                    "{} publishes are already in progress on this conversation; retry when one ends",
                    live::MAX_CONCURRENT_PUBLISHES
                ),
            ));
        }
        Ok(())
    }

    /// A publish by `from` starts (`refused`: its caller was not admitted; its body is read and
    /// dropped). Answers its id and, when too many publishes are in progress, the refusal (its body
    /// is then read and dropped too).
    pub fn publish_start(&self, from: &str, refused: bool) -> (PublishId, Option<ApiError>) {
        let too_many = if refused { None } else { self.room_for_publish().err() };
        let id = self.next_publish.get();
        self.next_publish.set(id + 1);
        let publish = Publish {
            from: from.to_string(),
            buffer: PublishBuffer::default(),
            splitter: LineSplitter::new(live::MAX_LINE_BYTES),
            tally: Tally::default(),
            committed: None,
            epoch: self.offline_epoch.get(),
            discard: refused || too_many.is_some(),
            went_offline: false,
            queue: VecDeque::new(),
            stall_deadline: None,
        };
        self.publishes.borrow_mut().insert(id, publish);
        (id, too_many)
    }

    /// A chunk of the body arrived. Once the bot went offline, the rest of the body is dropped.
    pub fn publish_chunk(&self, id: PublishId, chunk: &[u8]) {
        let epoch = self.offline_epoch.get();
        if let Some(p) = self.publishes.borrow_mut().get_mut(&id) {
            if p.epoch != epoch {
                p.went_offline = true;
            }
            if p.discard || p.went_offline {
                return;
            }
            let lines = p.splitter.push(chunk);
            p.queue.extend(lines);
        }
    }

    /// The body ended (or broke off): a last line without a newline still counts.
    pub fn publish_end(&self, id: PublishId) {
        if let Some(p) = self.publishes.borrow_mut().get_mut(&id) {
            if !p.discard && !p.went_offline {
                let last = p.splitter.finish();
                p.queue.extend(last);
            }
        }
    }

    /// Delivers the lines that are complete, as far as the subscribers' windows allow.
    pub fn pump(&self, id: PublishId, ctx: &Ctx) -> (Step, Vec<Effect>) {
        let mut effects = Vec::new();
        loop {
            let (raw, head) = {
                let mut publishes = self.publishes.borrow_mut();
                let Some(p) = publishes.get_mut(&id) else { return (Step::Done, effects) };
                match p.queue.pop_front() {
                    Some(Line::Json(text)) => {
                        let frame = live::line_frame(&p.from, &text);
                        (text, frame)
                    }
                    Some(other) => {
                        p.tally.count(&other);
                        continue;
                    }
                    None => return (Step::Done, effects),
                }
            };
            let full = self.full(head.len(), ctx);
            if !full.is_empty() {
                let mut publishes = self.publishes.borrow_mut();
                let Some(p) = publishes.get_mut(&id) else { return (Step::Done, effects) };
                let deadline = *p.stall_deadline.get_or_insert(ctx.now_ms.saturating_add(live::STALL_GRACE_MS));
                if ctx.now_ms < deadline {
                    p.queue.push_front(Line::Json(raw));
                    return (Step::WaitForRoom { retry_in_ms: ROOM_POLL_MS }, effects);
                }
                drop(publishes);
                for tag in full {
                    self.close_too_slow(tag, ctx, &mut effects);
                }
            }
            effects.push(Effect::Broadcast(head.clone()));
            self.count_broadcast(head.len(), ctx, &mut effects);
            if let Some(p) = self.publishes.borrow_mut().get_mut(&id) {
                p.stall_deadline = None;
                p.tally.delivered += 1;
                p.buffer.push(&head);
                if let Some(f) = live::final_line(&raw) {
                    p.committed = Some(f);
                }
            }
        }
    }

    /// The publish is over: forgets it and answers what it delivered, or 409 if the bot went
    /// offline meanwhile.
    pub fn publish_finish(&self, id: PublishId) -> Result<Finished, ApiError> {
        let p = self.publishes.borrow_mut().remove(&id).ok_or_else(|| ApiError::internal("publish finished twice"))?;
        if p.went_offline {
            return Err(ApiError::new(ErrorCode::BotOffline, "the conversation's bot went offline"));
        }
        Ok(Finished { tally: p.tally, committed: p.committed })
    }

    /// Publishes in progress (test and inspection aid).
    pub fn publishes_in_progress(&self) -> usize {
        self.publishes.borrow().len()
    }
}
