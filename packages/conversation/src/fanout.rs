//! Events out: the log and the broadcast frame, deliveries to watching hubs, and the push for
//! members who are not looking.

use crate::cache::MetaRow;
use crate::effects::HubDelivery;
use crate::store::Store;
use crate::Conversation;
use serde::Deserialize;
use std::collections::HashMap;
use switchboard_core::events::Event;
use switchboard_core::hub::contexts;
use switchboard_core::model::Message;
use switchboard_core::{content, frames, replay, ApiError, MemberId};
use switchboard_notify_contract::{Recipient, SendPushForConversation, CONTRACT_VERSION};

impl<S: Store> Conversation<S> {
    /// Appends an event to the log (next seq) and queues its one encoded frame for every socket and
    /// its payload for the hubs that watch. Answers the seq.
    pub(crate) fn emit(&self, event: Event) -> Result<u64, ApiError> {
        let (seq, frame) = self.event_frame(&event)?;
        self.exec("INSERT INTO events (seq, frame) VALUES (?, ?)", &[(seq as i64).into(), frame.as_str().into()])?;
        self.logged(seq, frame, &event)?;
        Ok(seq)
    }

    /// The next seq and the event's one encoded frame, to be logged by the caller's statement
    /// (then [`Conversation::logged`]).
    pub(crate) fn event_frame(&self, event: &Event) -> Result<(u64, String), ApiError> {
        let seq = self.next_seq()?;
        Ok((seq, frames::event(event.name(), &event.payload_json(), seq)))
    }

    /// An event whose frame was just logged at `seq`: the log's trim when due, the broadcast, the
    /// watching hubs.
    pub(crate) fn logged(&self, seq: u64, frame: String, event: &Event) -> Result<(), ApiError> {
        if replay::trim_due(seq) {
            // What fell out of the window since the last trim (resumes never see it: `oldest_kept`).
            self.exec("DELETE FROM events WHERE seq <= ?", &[(replay::trim_below(seq) as i64).into()])?;
        }
        self.pending.borrow_mut().broadcast.push(frame);
        // Hubs get the events committed while they watch; with no watcher nothing is queued (and
        // the payload is never built as a `Value`).
        self.queue_for_hubs(event, false)
    }

    /// An ephemeral event (typing): to sockets and watchers without a seq, never logged.
    pub(crate) fn emit_ephemeral(&self, event: Event) -> Result<(), ApiError> {
        let payload = event.payload();
        self.pending.borrow_mut().broadcast.push(frames::ephemeral_event(event.name(), &payload));
        self.queue_for_hubs(&event, true)
    }

    fn queue_for_hubs(&self, event: &Event, ephemeral: bool) -> Result<(), ApiError> {
        let watchers = self.watcher_ids()?;
        if watchers.is_empty() {
            return Ok(());
        }
        let meta = self.meta()?.ok_or_else(|| ApiError::internal("no conversation row"))?;
        self.pending.borrow_mut().to_hubs.push(HubDelivery {
            context: contexts::conversation(&meta.sandbox_id, &meta.id),
            event: event.name(),
            payload: event.payload(),
            ephemeral,
            watchers,
        });
        Ok(())
    }

    /// Rebuilds the cache of members with a socket open here from the runtime's list when it is
    /// new or old.
    pub(crate) fn refresh_connected(&self, now: i64, socket_members: &dyn Fn() -> Vec<String>) {
        if self.connected.borrow().needs_rebuild(now) {
            let members = socket_members();
            self.connected.borrow_mut().rebuild(members, now);
        }
    }

    /// The push for a new message: human members minus the sender who are not looking at the
    /// conversation (no socket here, not present through their hub), with when they last looked.
    /// `None` when there is nobody to notify. Members who are viewing are left out rather than
    /// sent as `viewing: true`: the notifications worker would only suppress them.
    pub(crate) fn push_request(
        &self,
        meta: &MetaRow,
        message: &Message,
        now: i64,
        socket_members: &dyn Fn() -> Vec<String>,
    ) -> Result<Option<SendPushForConversation>, ApiError> {
        // People who might need a push: no socket open here. When every one of them is connected
        // nothing is read and nothing is sent.
        let absent = {
            let roster = self.active_roster()?;
            self.refresh_connected(now, socket_members);
            self.connected.borrow_mut().absent(roster.iter().map(|(id, is_person)| (id.as_str(), *is_person)))
        };
        if absent.iter().all(|id| *id == message.sender_id) {
            return Ok(None);
        }
        // Their last look and hub presence: one row holding every candidate as a JSON array.
        #[derive(Deserialize)]
        struct Looks {
            looks: Option<String>,
            present: Option<String>,
        }
        let row = self
            .query::<Looks>(
                "SELECT (SELECT json_group_array(json_array(member_id, last_viewed_at)) FROM viewers) AS looks,
                        (SELECT json_group_array(member_id) FROM watchers WHERE present != 0) AS present",
                &[],
            )?
            .into_iter()
            .next();
        let (looks, present) = row.map(|r| (r.looks, r.present)).unwrap_or((None, None));
        let looks: Vec<(String, Option<i64>)> = decode_json_rows(looks.as_deref())?;
        let present: Vec<String> = decode_json_rows(present.as_deref())?;
        let last_viewed: HashMap<String, Option<i64>> = looks.into_iter().collect();
        let recipients: Vec<Recipient> = absent
            .iter()
            .filter(|id| **id != message.sender_id && !present.contains(id))
            .map(|id| Recipient {
                last_viewed_at: last_viewed.get(id).copied().flatten(),
                viewing: false,
                user_id: id.clone(),
            })
            .collect();
        if recipients.is_empty() {
            return Ok(None);
        }
        let sender_is_bot = MemberId::parse(&message.sender_id).map(|m| m.is_bot()).unwrap_or(false);
        Ok(Some(SendPushForConversation {
            version: CONTRACT_VERSION,
            conversation_id: meta.id.clone(),
            message_id: message.id.clone(),
            sandbox_id: meta.sandbox_id.clone(),
            conversation_title: meta.title.clone(),
            conversation_title_auto: meta.title_message_id.is_some(),
            sender_user_id: if sender_is_bot { None } else { Some(message.sender_id.clone()) },
            text: content::plain_text(&message.content),
            recipients,
        }))
    }
}

/// A JSON array made by SQLite's `json_group_array` (absent when the table is empty).
fn decode_json_rows<T: serde::de::DeserializeOwned>(text: Option<&str>) -> Result<Vec<T>, ApiError> {
    match text {
        None | Some("") => Ok(Vec::new()),
        Some(t) => serde_json::from_str(t).map_err(|e| ApiError::internal(format!("decode json rows: {e}"))),
    }
}
