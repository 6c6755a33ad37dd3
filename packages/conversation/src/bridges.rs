//! Rooms of other platforms linked to the conversation (Kick, Kosmi): linking and unlinking,
//! what a bridge brings in (messages exactly once by their external id, deletions, moderation
//! notices, its state), and members' messages going out to the bridges that relay them.
//!
//! A bridged message is written like a member's (same log, frame, hub deliveries and push) with
//! its `source` and the external id as its `client_id`; that id is looked up before inserting, so
//! a reconnect, a replayed frame or two racing bridge objects never make a second copy. Bridged
//! senders (`kick:…`, `kosmi:…`) are not members and never relayed back out.

use crate::effects::{BridgeStart, Effects, OutboundRelay};
use crate::store::Store;
use crate::{Conversation, Ctx, Reply};
use serde::Deserialize;
use serde_json::{json, Value};
use std::rc::Rc;
use switchboard_bridge::link::Link;
use switchboard_core::content::{self, Block};
use switchboard_core::events::Event;
use switchboard_core::ids::{self, MonotonicUlids};
use switchboard_core::limits::{MAX_BRIDGES_PER_CONVERSATION, MAX_TEXT_CHARS};
use switchboard_core::model::Message;
use switchboard_core::ApiError;

use crate::commands::{BridgeStatus, Ingest};

/// The notices a bridge may log, by name.
pub const NOTICES: [&str; 4] =
    ["bridge.user_banned", "bridge.user_unbanned", "bridge.chat_cleared", "bridge.message_pinned"];
/// The states a bridge reports.
pub const STATES: [&str; 4] = ["connecting", "live", "backoff", "failed"];
/// Longest reason a bridge may give for its state.
pub const MAX_REASON_CHARS: usize = 300;

#[derive(Debug, Deserialize)]
struct BridgeRow {
    id: String,
    platform: String,
    room: String,
    options: String,
    state: String,
    reason: Option<String>,
    last_event_at: Option<i64>,
    received: i64,
    relayed: i64,
}

impl BridgeRow {
    fn link(&self) -> Link {
        serde_json::from_str(&self.options).unwrap_or(Link {
            platform: self.platform.clone(),
            room: self.room.clone(),
            relay_outbound: false,
            nick_format: None,
        })
    }

    fn to_json(&self) -> Value {
        let link = self.link();
        let mut v = json!({
            "id": self.id, "platform": self.platform, "room": self.room, "state": self.state,
            "received": self.received, "relayed": self.relayed, "relayOutbound": link.relay_outbound,
        });
        if let Some(r) = &self.reason {
            v["reason"] = json!(r);
        }
        if let Some(t) = self.last_event_at {
            v["lastEventAt"] = json!(t);
        }
        if let Some(f) = &link.nick_format {
            v["nickFormat"] = json!(f);
        }
        v
    }
}

type Outcome = (Result<Reply, ApiError>, Effects);

impl<S: Store> Conversation<S> {
    fn bridge_rows(&self) -> Result<Vec<BridgeRow>, ApiError> {
        self.query("SELECT * FROM bridges ORDER BY created_at, id", &[])
    }

    fn bridge_row(&self, id: &str) -> Result<BridgeRow, ApiError> {
        self.query::<BridgeRow>("SELECT * FROM bridges WHERE id = ?", &[id.into()])?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::not_found("bridge not found"))
    }

    /// The bridges that relay members' messages, from memory after the first read.
    pub(crate) fn outbound_bridges(&self) -> Result<Rc<Vec<String>>, ApiError> {
        if let Some(b) = self.cache.outbound_bridges.borrow().as_ref() {
            return Ok(b.clone());
        }
        let ids: Rc<Vec<String>> =
            Rc::new(self.bridge_rows()?.into_iter().filter(|b| b.link().relay_outbound).map(|b| b.id).collect());
        self.cache.outbound_bridges.replace(Some(ids.clone()));
        Ok(ids)
    }

    /// A member's new message, for the bridges that relay outbound.
    pub(crate) fn relay_out(&self, message: &Message, effects: &mut Effects) -> Result<(), ApiError> {
        let bridges = self.outbound_bridges()?;
        if bridges.is_empty() || message.source.is_some() || is_bridged_sender(&message.sender_id) {
            return Ok(());
        }
        let text = content::plain_text(&message.content);
        if text.trim().is_empty() {
            return Ok(());
        }
        for id in bridges.iter() {
            effects.to_bridges.push(OutboundRelay {
                bridge_id: id.clone(),
                message_id: message.id.clone(),
                sender_id: message.sender_id.clone(),
                text: text.clone(),
            });
        }
        Ok(())
    }

    /// Links a room: 201 with the new bridge, or 200 with the one already linked to that room, which
    /// is started again (a start is idempotent: a running bridge keeps running; one whose first
    /// start was lost starts now).
    pub(crate) fn link_bridge(&self, caller: &str, link: Link, ctx: &Ctx) -> Outcome {
        self.command(|| {
            self.require_member(caller)?;
            let rows = self.bridge_rows()?;
            if let Some(existing) = rows.iter().find(|b| b.platform == link.platform && b.room == link.room) {
                let start = BridgeStart { bridge_id: existing.id.clone(), link: existing.link() };
                self.pending.borrow_mut().bridges_started.push(start);
                return Ok(Reply::json(200, json!({"bridge": existing.to_json()})));
            }
            if rows.len() >= MAX_BRIDGES_PER_CONVERSATION {
                return Err(ApiError::invalid(format!(
                    "a conversation has at most {MAX_BRIDGES_PER_CONVERSATION} bridges"
                )));
            }
            let id = MonotonicUlids::new(None).next(ctx.now_ms.max(0) as u64, ctx.random).to_string();
            let options = serde_json::to_string(&link).map_err(|e| ApiError::internal(format!("encode: {e}")))?;
            self.cache.outbound_bridges.replace(None);
            self.exec(
                "INSERT INTO bridges (id, platform, room, options, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                &[
                    id.as_str().into(),
                    link.platform.as_str().into(),
                    link.room.as_str().into(),
                    options.into(),
                    caller.into(),
                    ctx.now_ms.into(),
                ],
            )?;
            let row = self.bridge_row(&id)?;
            self.emit(Event::Bridge { name: "bridge.state", payload: state_payload(&row) })?;
            self.pending.borrow_mut().bridges_started.push(BridgeStart { bridge_id: id, link });
            Ok(Reply::json(201, json!({"bridge": row.to_json()})))
        })
    }

    pub(crate) fn list_bridges(&self, caller: &str) -> Result<Reply, ApiError> {
        self.require_member(caller)?;
        let bridges: Vec<Value> = self.bridge_rows()?.iter().map(BridgeRow::to_json).collect();
        Ok(Reply::json(200, json!({"bridges": bridges})))
    }

    /// Unlinks a room: its object stops and closes its socket.
    pub(crate) fn unlink_bridge(&self, caller: &str, bridge_id: &str, _now: i64) -> Outcome {
        self.command(|| {
            self.require_member(caller)?;
            let row = self.bridge_row(bridge_id)?;
            self.cache.outbound_bridges.replace(None);
            self.exec("DELETE FROM bridges WHERE id = ?", &[bridge_id.into()])?;
            let mut payload = state_payload(&row);
            payload["state"] = json!("unlinked");
            self.emit(Event::Bridge { name: "bridge.state", payload })?;
            self.pending.borrow_mut().bridges_stopped.push(bridge_id.to_string());
            Ok(Reply::no_content())
        })
    }

    /// One thing from a linked room. Refused (404) once the bridge is unlinked.
    pub(crate) fn ingest(&self, bridge_id: &str, item: Ingest, ctx: &Ctx) -> Outcome {
        let (r, effects) = self.command(|| {
            let row = self.bridge_row(bridge_id)?;
            let meta = self.meta()?.ok_or_else(|| ApiError::not_found("conversation not found"))?;
            self.exec(
                "UPDATE bridges SET received = received + 1, last_event_at = ? WHERE id = ?",
                &[ctx.now_ms.into(), bridge_id.into()],
            )?;
            match item {
                Ingest::Message { idempotency_key, sender_id, text, source, reply_to_key } => {
                    if !is_bridged_sender(&sender_id) || !idempotency_key.starts_with(&format!("{}:", row.platform)) {
                        return Err(ApiError::invalid("a bridged message needs a sender and key of its platform"));
                    }
                    if let Some(id) = self.message_by_key(&idempotency_key)? {
                        let message =
                            self.message(&meta.id, &id)?.ok_or_else(|| ApiError::internal("keyed message vanished"))?;
                        return Ok((
                            Reply::json(200, json!({"messageId": id, "duplicate": true})),
                            Some((message, true)),
                        ));
                    }
                    let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
                    let blocks = vec![Block::Text { text }];
                    let reply_to = match &reply_to_key {
                        Some(k) => self.message_by_key(k)?,
                        None => None,
                    };
                    let message =
                        self.insert_bridged(&meta.id, &sender_id, blocks, reply_to, &idempotency_key, source, ctx)?;
                    self.queue_push(&message, ctx.now_ms, ctx.socket_members)?;
                    Ok((Reply::json(201, json!({"messageId": message.id})), Some((message, false))))
                }
                Ingest::Delete { idempotency_key } => {
                    if let Some(id) = self.message_by_key(&idempotency_key)? {
                        self.soft_delete(&id, ctx.now_ms)?;
                    }
                    Ok((Reply::no_content(), None))
                }
                Ingest::Notice { name, payload } => {
                    let name = NOTICES
                        .iter()
                        .find(|n| **n == name)
                        .ok_or_else(|| ApiError::invalid(format!("{name}: not a bridge notice")))?;
                    let mut payload = payload;
                    if let Value::Object(o) = &mut payload {
                        o.insert("bridgeId".into(), json!(bridge_id));
                        o.insert("platform".into(), json!(row.platform));
                        o.insert("room".into(), json!(row.room));
                    }
                    self.emit(Event::Bridge { name, payload })?;
                    Ok((Reply::no_content(), None))
                }
            }
        });
        let reply = match r {
            Ok((reply, _)) => Ok(reply),
            Err(e) => Err(e),
        };
        (reply, effects)
    }

    /// A bridge's state: stored; a change of state or reason is a `bridge.state` event.
    pub(crate) fn bridge_status(&self, bridge_id: &str, status: BridgeStatus) -> Outcome {
        self.command(|| {
            let row = self.bridge_row(bridge_id)?;
            if !STATES.contains(&status.state.as_str()) {
                return Err(ApiError::invalid(format!("state: \"{}\" is not a bridge state", status.state)));
            }
            let reason: Option<String> = status.reason.map(|r| r.chars().take(MAX_REASON_CHARS).collect());
            self.exec(
                "UPDATE bridges SET state = ?, reason = ?, last_event_at = COALESCE(?, last_event_at), received = MAX(received, ?), relayed = MAX(relayed, ?) WHERE id = ?",
                &[status.state.as_str().into(), reason.clone().into(), status.last_event_at.into(), status.received.into(), status.relayed.into(), bridge_id.into()],
            )?;
            if row.state != status.state || row.reason != reason {
                let row = self.bridge_row(bridge_id)?;
                self.emit(Event::Bridge { name: "bridge.state", payload: state_payload(&row) })?;
            }
            Ok(Reply::no_content())
        })
    }

    /// The bridged message whose external key is `key`. Only bridged rows (with a `source`): a
    /// member's own `clientId` may look like a key (`kick:...`) and must never be taken for one.
    fn message_by_key(&self, key: &str) -> Result<Option<String>, ApiError> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        Ok(self
            .query::<Id>("SELECT id FROM messages WHERE client_id = ? AND source IS NOT NULL LIMIT 1", &[key.into()])?
            .into_iter()
            .next()
            .map(|r| r.id))
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_bridged(
        &self,
        conversation_id: &str,
        sender_id: &str,
        blocks: Vec<Block>,
        in_reply_to: Option<String>,
        key: &str,
        source: Value,
        ctx: &Ctx,
    ) -> Result<Message, ApiError> {
        let now = ctx.now_ms;
        let last = self.last_message_id()?.and_then(|id| ids::parse("id", &id).ok());
        let id = MonotonicUlids::new(last).next(now.max(0) as u64, ctx.random).to_string();
        let content_json = switchboard_core::content::encode(&blocks)?;
        let source_json = source.to_string();
        self.exec(
            "INSERT INTO messages (id, sender_id, content, in_reply_to, created_at, client_id, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
            &[id.as_str().into(), sender_id.into(), content_json.into(), in_reply_to.clone().into(), now.into(), key.into(), source_json.into()],
        )?;
        self.cache.last_message_id.replace(Some(id.clone()));
        self.touch_activity(now)?;
        let message = Message {
            id,
            conversation_id: conversation_id.to_string(),
            sender_id: sender_id.to_string(),
            content: blocks,
            in_reply_to_message_id: in_reply_to,
            created_at: now,
            updated_at: None,
            client_updated_at: None,
            deleted: false,
            delivery_failed: false,
            reactions: vec![],
            source: Some(source),
        };
        self.emit(Event::MessageCreated {
            message: message.clone(),
            client_id: Some(key.to_string()),
            reply_to_sender: None,
        })?;
        self.list_changed(now)?;
        Ok(message)
    }
}

/// Senders that are rooms of other platforms, not members.
pub fn is_bridged_sender(sender_id: &str) -> bool {
    switchboard_bridge::link::PLATFORMS
        .iter()
        .any(|p| sender_id.strip_prefix(p).is_some_and(|rest| rest.starts_with(':')))
}

fn state_payload(row: &BridgeRow) -> Value {
    let mut v = json!({"bridgeId": row.id, "platform": row.platform, "room": row.room, "state": row.state});
    if let Some(r) = &row.reason {
        v["reason"] = json!(r);
    }
    v
}
