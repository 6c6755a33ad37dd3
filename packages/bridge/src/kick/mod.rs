//! Kick chat events, read over Pusher protocol 7 on the public channel `chatrooms.{chatroomId}.v2`, mapped into
//! [`BridgeEvent`]s.
//!
//! Kick's event shapes are reverse engineered (kient, KickLib, kick-js) and change without notice, so parsing is
//! lenient: unknown fields are ignored, optional fields may be missing, ids may be numbers or strings, and an event
//! name we do not know is `Unknown` without its data even being parsed. What we do parse is bounded
//! (`crate::limits`). Bad JSON or a missing required field is a typed [`KickError`], never a panic.
//!
//! A Kick message id is the idempotency key of our copy (`kick:{id}`): Pusher has no replay, but a reconnect or a
//! second reader may deliver a message again, and the conversation's send ledger then answers the copy it has.
//!
//! Emotes stay inline as `[emote:ID:NAME]` (a client renders them) and are also listed, deduplicated and bounded,
//! in `source.emotes`, so a client that cannot render them can still replace them.
//!
//! Files: `mod.rs` (channel names, event kinds, parsing and mapping), `emotes` (`[emote:ID:NAME]` scanning).

mod emotes;
#[cfg(test)]
mod tests;

pub use emotes::emotes;

use crate::event::{BridgeEvent, ChatCleared, MessagePinned, Notice, UserBanned, UserUnbanned};
use crate::lenient;
use crate::limits::*;
use crate::source::{Author, Badge, BridgedMessage, Platform, ReplyTo, Source, UserRef};
use serde_json::{Map, Value};
use std::fmt;
use switchboard_core::content::preview;
use switchboard_core::limits::MAX_TEXT_CHARS;

const CHANNEL_PREFIX: &str = "chatrooms.";
const CHANNEL_SUFFIX: &str = ".v2";
/// Kick's event names are PHP class names: `App\Events\ChatMessageEvent`.
const EVENT_NAMESPACE: &str = "App\\Events\\";

/// The public Pusher channel of chatroom `chatroom_id`.
pub fn channel(chatroom_id: &str) -> String {
    format!("{CHANNEL_PREFIX}{chatroom_id}{CHANNEL_SUFFIX}")
}

/// The chatroom id of a `chatrooms.{id}.v2` channel.
pub fn chatroom_of(channel: &str) -> Option<&str> {
    let id = channel.strip_prefix(CHANNEL_PREFIX)?.strip_suffix(CHANNEL_SUFFIX)?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// The idempotency key of our copy of Kick message `id`.
pub fn idempotency_key(id: &str) -> String {
    Platform::Kick.idempotency_key(id)
}

/// The events we map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickEventKind {
    ChatMessage,
    MessageDeleted,
    UserBanned,
    UserUnbanned,
    ChatroomClear,
    PinnedMessageCreated,
}

impl KickEventKind {
    /// Recognizes `App\Events\ChatMessageEvent`, or the bare `ChatMessageEvent`.
    pub fn of(event: &str) -> Option<Self> {
        match event.strip_prefix(EVENT_NAMESPACE).unwrap_or(event) {
            "ChatMessageEvent" => Some(Self::ChatMessage),
            "MessageDeletedEvent" => Some(Self::MessageDeleted),
            "UserBannedEvent" => Some(Self::UserBanned),
            "UserUnbannedEvent" => Some(Self::UserUnbanned),
            "ChatroomClearEvent" => Some(Self::ChatroomClear),
            "PinnedMessageCreatedEvent" => Some(Self::PinnedMessageCreated),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KickError {
    /// The data was larger than `MAX_EVENT_BYTES`; not parsed.
    TooLarge { bytes: usize },
    /// The data was not JSON.
    Json(String),
    /// The data was JSON but not an object.
    NotAnObject,
    /// A required field was missing or unusable (named by its path, e.g. `sender.id`).
    Missing(&'static str),
}

impl fmt::Display for KickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KickError::TooLarge { bytes } => write!(f, "kick event data of {bytes} bytes (limit {MAX_EVENT_BYTES})"),
            KickError::Json(e) => write!(f, "kick event data is not JSON: {e}"),
            KickError::NotAnObject => write!(f, "kick event data is not a JSON object"),
            KickError::Missing(field) => write!(f, "kick event data: {field} is missing or invalid"),
        }
    }
}

impl std::error::Error for KickError {}

/// Maps one Kick event read on chatroom `room`'s channel: `event` is the Pusher event name and `data` its data, the
/// JSON text Kick double-encodes into the frame.
pub fn parse(room: &str, event: &str, data: &str) -> Result<BridgeEvent, KickError> {
    let Some(kind) = KickEventKind::of(event) else {
        return Ok(BridgeEvent::Unknown { platform: Platform::Kick, event: lenient::cut(event, MAX_EVENT_NAME_CHARS) });
    };
    let value = decode(data)?;
    let o = value.as_object().ok_or(KickError::NotAnObject)?;
    let room = lenient::cut(room, MAX_ROOM_CHARS);
    match kind {
        KickEventKind::ChatMessage => chat_message(room, o).map(BridgeEvent::Message),
        KickEventKind::MessageDeleted => {
            let external_id = lenient::id(object(o, "message").and_then(|m| m.get("id")), MAX_EXTERNAL_ID_CHARS)
                .ok_or(KickError::Missing("message.id"))?;
            Ok(BridgeEvent::Delete { idempotency_key: idempotency_key(&external_id), external_id })
        }
        KickEventKind::UserBanned => {
            let user = user_ref(object(o, "user")).ok_or(KickError::Missing("user.id"))?;
            let duration_minutes = lenient::uint(o.get("duration"));
            // Kick writes `permanent`; when it does not, a ban without a duration or an end is permanent.
            let expires_at =
                lenient::text(o.get("expires_at"), usize::MAX).filter(|s| s.chars().count() <= MAX_NOTE_CHARS);
            let permanent =
                lenient::boolean(o.get("permanent")).unwrap_or(duration_minutes.is_none() && expires_at.is_none());
            Ok(BridgeEvent::Notice(Notice::UserBanned(UserBanned {
                platform: Platform::Kick,
                room,
                sender_id: Platform::Kick.sender_id(&user.id),
                user,
                banned_by: user_ref(object(o, "banned_by")),
                permanent,
                duration_minutes,
                expires_at,
            })))
        }
        KickEventKind::UserUnbanned => {
            let user = user_ref(object(o, "user")).ok_or(KickError::Missing("user.id"))?;
            Ok(BridgeEvent::Notice(Notice::UserUnbanned(UserUnbanned {
                platform: Platform::Kick,
                room,
                sender_id: Platform::Kick.sender_id(&user.id),
                user,
                unbanned_by: user_ref(object(o, "unbanned_by")),
            })))
        }
        KickEventKind::ChatroomClear => {
            Ok(BridgeEvent::Notice(Notice::ChatCleared(ChatCleared { platform: Platform::Kick, room })))
        }
        KickEventKind::PinnedMessageCreated => {
            let message = object(o, "message").ok_or(KickError::Missing("message"))?;
            let external_id =
                lenient::id(message.get("id"), MAX_EXTERNAL_ID_CHARS).ok_or(KickError::Missing("message.id"))?;
            let excerpt = message.get("content").and_then(Value::as_str).map(excerpt).unwrap_or_default();
            let pinned_by = user_ref(object(o, "pinnedBy").or_else(|| object(o, "pinned_by")));
            Ok(BridgeEvent::Notice(Notice::MessagePinned(MessagePinned {
                platform: Platform::Kick,
                room,
                message_key: idempotency_key(&external_id),
                external_id,
                author: user_ref(object(message, "sender")),
                excerpt,
                duration_seconds: lenient::uint(o.get("duration")),
                pinned_by,
            })))
        }
    }
}

/// Parses the data, once more if it was encoded one time too many (a JSON string holding the object).
fn decode(data: &str) -> Result<Value, KickError> {
    if data.len() > MAX_EVENT_BYTES {
        return Err(KickError::TooLarge { bytes: data.len() });
    }
    let value: Value = serde_json::from_str(data).map_err(|e| KickError::Json(e.to_string()))?;
    match value {
        Value::String(inner) => serde_json::from_str(&inner).map_err(|e| KickError::Json(e.to_string())),
        v => Ok(v),
    }
}

fn object<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    o.get(key)?.as_object()
}

/// `{id, username?, slug?}`: the username falls back to the slug, then to the id.
fn user_ref(o: Option<&Map<String, Value>>) -> Option<UserRef> {
    let o = o?;
    let id = lenient::id(o.get("id"), MAX_EXTERNAL_USER_ID_CHARS)?;
    let username = lenient::text(o.get("username"), MAX_USERNAME_CHARS)
        .or_else(|| lenient::text(o.get("slug"), MAX_USERNAME_CHARS))
        .unwrap_or_else(|| lenient::cut(&id, MAX_USERNAME_CHARS));
    Some(UserRef { id, username })
}

fn excerpt(s: &str) -> String {
    preview(s, MAX_EXCERPT_CHARS)
}

fn chat_message(room: String, o: &Map<String, Value>) -> Result<BridgedMessage, KickError> {
    let external_id = lenient::id(o.get("id"), MAX_EXTERNAL_ID_CHARS).ok_or(KickError::Missing("id"))?;
    let raw = o.get("content").and_then(Value::as_str).ok_or(KickError::Missing("content"))?;
    let clean: String = raw.chars().filter(|c| *c == '\n' || !c.is_control()).collect();
    let text = lenient::cut_with_ellipsis(clean.trim(), MAX_TEXT_CHARS);
    if text.is_empty() {
        return Err(KickError::Missing("content"));
    }
    let sender = object(o, "sender").ok_or(KickError::Missing("sender"))?;
    let UserRef { id: user_id, username } = user_ref(Some(sender)).ok_or(KickError::Missing("sender.id"))?;
    let identity = object(sender, "identity");
    let color = identity
        .and_then(|i| lenient::text(i.get("color"), usize::MAX))
        .filter(|c| c.chars().count() <= MAX_COLOR_CHARS);
    let badges =
        identity.and_then(|i| i.get("badges")).and_then(Value::as_array).map(|b| badges(b)).unwrap_or_default();

    // A reply is whatever names an original message; `type` is not trusted alone.
    let metadata = object(o, "metadata");
    let original = metadata.and_then(|m| object(m, "original_message"));
    let reply_to = original.and_then(|orig| {
        let external_id = lenient::id(orig.get("id"), MAX_EXTERNAL_ID_CHARS)?;
        Some(ReplyTo {
            external_id,
            author: user_ref(metadata.and_then(|m| object(m, "original_sender"))),
            excerpt: orig.get("content").and_then(Value::as_str).map(excerpt).filter(|e| !e.is_empty()),
        })
    });

    Ok(BridgedMessage {
        idempotency_key: idempotency_key(&external_id),
        sender_id: Platform::Kick.sender_id(&user_id),
        reply_to_external_id: reply_to.as_ref().map(|r| r.external_id.clone()),
        source: Source {
            platform: Platform::Kick,
            room,
            external_id,
            author: Author { id: user_id, username, display_name: None, color, badges },
            reply_to,
            emotes: emotes(&text),
        },
        text,
    })
}

fn badges(items: &[Value]) -> Vec<Badge> {
    items
        .iter()
        .filter_map(|b| {
            let b = b.as_object()?;
            let kind = lenient::text(b.get("type"), MAX_BADGE_TEXT_CHARS)?;
            let text = lenient::text(b.get("text"), MAX_BADGE_TEXT_CHARS).unwrap_or_else(|| kind.clone());
            Some(Badge { kind, text, count: lenient::uint(b.get("count")) })
        })
        .take(MAX_BADGES)
        .collect()
}
