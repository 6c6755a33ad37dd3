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

use crate::event::{BridgeEvent, ChatCleared, MessagePinned, Notice, UserBanned, UserUnbanned};
use crate::lenient;
use crate::limits::*;
use crate::source::{Author, Badge, BridgedMessage, Emote, Platform, ReplyTo, Source, UserRef};
use serde_json::{Map, Value};
use std::fmt;
use switchboard_core::content::preview;
use switchboard_core::limits::MAX_TEXT_CHARS;

const CHANNEL_PREFIX: &str = "chatrooms.";
const CHANNEL_SUFFIX: &str = ".v2";
/// Kick's event names are PHP class names: `App\Events\ChatMessageEvent`.
const EVENT_NAMESPACE: &str = "App\\Events\\";
const EMOTE_OPEN: &str = "[emote:";

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

/// The distinct emotes written `[emote:ID:NAME]` in `text`, in order of first use, at most `MAX_EMOTES`.
/// An id is 1..=`MAX_EMOTE_ID_CHARS` digits; a name 1..=`MAX_EMOTE_NAME_CHARS` characters without spaces,
/// brackets or colons. Anything else is left as plain text.
pub fn emotes(text: &str) -> Vec<Emote> {
    let mut out: Vec<Emote> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(EMOTE_OPEN) {
        rest = &rest[start + EMOTE_OPEN.len()..];
        let Some(emote) = emote_at(rest) else { continue };
        if !out.iter().any(|e| e.id == emote.id) {
            out.push(emote);
            if out.len() == MAX_EMOTES {
                break;
            }
        }
    }
    out
}

/// Reads `ID:NAME]` at the start of `s`.
fn emote_at(s: &str) -> Option<Emote> {
    let (id, after) = s.split_once(':')?;
    let (name, _) = after.split_once(']')?;
    let id_ok = !id.is_empty() && id.len() <= MAX_EMOTE_ID_CHARS && id.bytes().all(|b| b.is_ascii_digit());
    let name_ok = !name.is_empty()
        && name.chars().count() <= MAX_EMOTE_NAME_CHARS
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '[' | ']' | ':'));
    (id_ok && name_ok).then(|| Emote { id: id.to_string(), name: name.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Reads a fixture as Kick sends it (a Pusher frame with its data double-encoded) and maps it.
    fn fixture(frame: &str) -> Result<BridgeEvent, KickError> {
        let f: Value = serde_json::from_str(frame).unwrap();
        let room = chatroom_of(f["channel"].as_str().unwrap()).unwrap();
        parse(room, f["event"].as_str().unwrap(), f["data"].as_str().unwrap())
    }

    fn message(ev: BridgeEvent) -> BridgedMessage {
        match ev {
            BridgeEvent::Message(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn notice(ev: BridgeEvent) -> Notice {
        match ev {
            BridgeEvent::Notice(n) => n,
            other => panic!("expected a notice, got {other:?}"),
        }
    }

    #[test]
    fn channel_names() {
        assert_eq!(channel("2507974"), "chatrooms.2507974.v2");
        assert_eq!(chatroom_of("chatrooms.2507974.v2"), Some("2507974"));
        assert_eq!(chatroom_of("chatrooms..v2"), None);
        assert_eq!(chatroom_of("chatrooms.12a.v2"), None);
        assert_eq!(chatroom_of("channel.12"), None);
    }

    #[test]
    fn a_chat_message_with_emotes_and_badges() {
        let m = message(fixture(include_str!("../tests/fixtures/kick/chat_message.json")).unwrap());
        assert_eq!(m.idempotency_key, "kick:0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10");
        assert_eq!(m.sender_id, "kick:1234567");
        assert_eq!(m.text, "hello [emote:37226:KEKW] and [emote:39261:kkHuh] again [emote:37226:KEKW]");
        assert_eq!(m.reply_to_external_id, None);
        assert_eq!(
            m.source_json(),
            json!({
                "platform": "kick", "room": "2507974", "externalId": "0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10",
                "author": {"id": "1234567", "username": "Ann_Lee", "color": "#FF9D00", "badges": [
                    {"type": "moderator", "text": "Moderator"},
                    {"type": "subscriber", "text": "Subscriber", "count": 6}]},
                "emotes": [{"id": "37226", "name": "KEKW"}, {"id": "39261", "name": "kkHuh"}]
            })
        );
    }

    #[test]
    fn a_reply_names_the_original_and_keeps_its_author_and_excerpt() {
        let m = message(fixture(include_str!("../tests/fixtures/kick/reply.json")).unwrap());
        assert_eq!(m.sender_id, "kick:7654321", "a string sender id is accepted");
        assert_eq!(m.reply_to_external_id.as_deref(), Some("0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10"));
        assert_eq!(m.reply_to_key().as_deref(), Some("kick:0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10"));
        assert_eq!(
            m.source_json()["replyTo"],
            json!({"externalId": "0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10",
                   "author": {"id": "1234567", "username": "Ann_Lee"},
                   "excerpt": "hello [emote:37226:KEKW] there"})
        );
        assert!(m.source_json()["author"].get("badges").is_none(), "no badges, no field");
    }

    #[test]
    fn missing_optional_fields_and_numeric_ids_are_tolerated() {
        let m = message(fixture(include_str!("../tests/fixtures/kick/minimal_message.json")).unwrap());
        assert_eq!(m.idempotency_key, "kick:99");
        assert_eq!(m.sender_id, "kick:5");
        assert_eq!(m.text, "just text");
        assert_eq!(
            m.source_json(),
            json!({"platform": "kick", "room": "2507974", "externalId": "99",
                   "author": {"id": "5", "username": "only-slug"}})
        );
    }

    #[test]
    fn a_deletion_names_our_copy() {
        let ev = fixture(include_str!("../tests/fixtures/kick/message_deleted.json")).unwrap();
        assert_eq!(
            ev,
            BridgeEvent::Delete {
                idempotency_key: "kick:0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10".into(),
                external_id: "0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10".into()
            }
        );
    }

    #[test]
    fn moderation_events_become_notices() {
        let n = notice(fixture(include_str!("../tests/fixtures/kick/user_banned.json")).unwrap());
        assert_eq!(n.event_type(), "bridge.user_banned");
        assert_eq!(
            n.payload(),
            json!({"platform": "kick", "room": "2507974", "user": {"id": "666", "username": "troll"},
                   "senderId": "kick:666", "bannedBy": {"id": "1234567", "username": "Ann_Lee"},
                   "permanent": false, "durationMinutes": 10, "expiresAt": "2026-04-19T12:10:00+00:00"})
        );
        let n = notice(fixture(include_str!("../tests/fixtures/kick/user_unbanned.json")).unwrap());
        assert_eq!(n.event_type(), "bridge.user_unbanned");
        assert_eq!(
            n.payload(),
            json!({"platform": "kick", "room": "2507974", "user": {"id": "666", "username": "troll"},
                   "senderId": "kick:666", "unbannedBy": {"id": "1234567", "username": "Ann_Lee"}})
        );
        let n = notice(fixture(include_str!("../tests/fixtures/kick/chatroom_clear.json")).unwrap());
        assert_eq!(
            (n.event_type(), n.payload()),
            ("bridge.chat_cleared", json!({"platform": "kick", "room": "2507974"}))
        );
        let n = notice(fixture(include_str!("../tests/fixtures/kick/pinned_message.json")).unwrap());
        assert_eq!(n.event_type(), "bridge.message_pinned");
        assert_eq!(
            n.payload(),
            json!({"platform": "kick", "room": "2507974", "externalId": "0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10",
                   "messageKey": "kick:0f3b2c1a-6d2e-4a55-9c1e-2b8f8d1e7a10",
                   "author": {"id": "1234567", "username": "Ann_Lee"}, "excerpt": "read the rules",
                   "durationSeconds": 1200, "pinnedBy": {"id": "1", "username": "owner"}})
        );
    }

    #[test]
    fn a_ban_without_duration_or_flag_is_permanent() {
        let n = notice(parse("7", "App\\Events\\UserBannedEvent", r#"{"user":{"id":3}}"#).unwrap());
        assert_eq!(n.payload()["permanent"], true);
        assert_eq!(n.payload()["user"], json!({"id": "3", "username": "3"}));
    }

    #[test]
    fn unknown_events_are_unknown_even_with_junk_data() {
        let ev = fixture(include_str!("../tests/fixtures/kick/subscription.json")).unwrap();
        assert_eq!(
            ev,
            BridgeEvent::Unknown { platform: Platform::Kick, event: "App\\Events\\SubscriptionEvent".into() }
        );
        let ev = parse("7", "App\\Events\\PollUpdateEvent", "not json").unwrap();
        assert!(matches!(ev, BridgeEvent::Unknown { .. }));
    }

    #[test]
    fn junk_is_a_typed_error() {
        let chat = "App\\Events\\ChatMessageEvent";
        assert!(matches!(parse("7", chat, "{"), Err(KickError::Json(_))));
        assert_eq!(parse("7", chat, "[1]"), Err(KickError::NotAnObject));
        assert_eq!(parse("7", chat, r#""\"x\"""#), Err(KickError::NotAnObject));
        assert_eq!(parse("7", chat, r#"{"content":"a","sender":{"id":1}}"#), Err(KickError::Missing("id")));
        assert_eq!(parse("7", chat, r#"{"id":1,"sender":{"id":1}}"#), Err(KickError::Missing("content")));
        assert_eq!(
            parse("7", chat, r#"{"id":1,"content":"  ","sender":{"id":1}}"#),
            Err(KickError::Missing("content"))
        );
        assert_eq!(parse("7", chat, r#"{"id":1,"content":"a"}"#), Err(KickError::Missing("sender")));
        assert_eq!(
            parse("7", chat, r#"{"id":1,"content":"a","sender":{"id":1.5}}"#),
            Err(KickError::Missing("sender.id"))
        );
        assert_eq!(parse("7", chat, r#"{"id":true,"content":"a","sender":{"id":1}}"#), Err(KickError::Missing("id")));
        let del = "App\\Events\\MessageDeletedEvent";
        assert_eq!(parse("7", del, r#"{"id":"x"}"#), Err(KickError::Missing("message.id")));
        let big = format!(r#"{{"id":1,"content":"{}","sender":{{"id":1}}}}"#, "a".repeat(MAX_EVENT_BYTES));
        assert_eq!(parse("7", chat, &big), Err(KickError::TooLarge { bytes: big.len() }));
    }

    #[test]
    fn double_encoded_data_is_accepted_once_more() {
        let inner = r#"{"id":1,"content":"hi","sender":{"id":2,"username":"u"}}"#;
        let twice = serde_json::to_string(inner).unwrap();
        let m = message(parse("7", "ChatMessageEvent", &twice).unwrap());
        assert_eq!((m.idempotency_key.as_str(), m.text.as_str()), ("kick:1", "hi"));
    }

    #[test]
    fn an_over_long_id_is_refused_so_keys_stay_valid_client_ids() {
        let long = "x".repeat(MAX_EXTERNAL_ID_CHARS + 1);
        let data = json!({"id": long, "content": "a", "sender": {"id": 1}}).to_string();
        assert_eq!(parse("7", "ChatMessageEvent", &data), Err(KickError::Missing("id")));
        let fits = "x".repeat(MAX_EXTERNAL_ID_CHARS);
        let data = json!({"id": fits, "content": "a", "sender": {"id": "y".repeat(MAX_EXTERNAL_USER_ID_CHARS)}});
        let m = message(parse("7", "ChatMessageEvent", &data.to_string()).unwrap());
        assert!(switchboard_core::validate::client_id(&m.idempotency_key).is_ok());
        assert!(switchboard_core::validate::user_id(&m.sender_id).is_ok());
    }

    #[test]
    fn long_text_is_cut_to_a_valid_block_and_badges_are_bounded() {
        let badges: Vec<Value> = (0..20).map(|i| json!({"type": format!("b{i}")})).collect();
        let data = json!({"id": 1, "content": "é".repeat(MAX_TEXT_CHARS + 5),
                          "sender": {"id": 1, "identity": {"color": "x".repeat(MAX_COLOR_CHARS + 1), "badges": badges}}});
        let m = message(parse("7", "ChatMessageEvent", &data.to_string()).unwrap());
        assert_eq!(m.text.chars().count(), MAX_TEXT_CHARS);
        assert!(m.text.ends_with('…'));
        assert!(switchboard_core::content::parse(&serde_json::to_value(m.content()).unwrap()).is_ok());
        assert_eq!(m.source.author.badges.len(), MAX_BADGES);
        assert_eq!(m.source.author.badges[0], Badge { kind: "b0".into(), text: "b0".into(), count: None });
        assert_eq!(m.source.author.color, None, "an over-long colour is dropped, not cut");
    }

    #[test]
    fn emote_scanning() {
        let e = |id: &str, name: &str| Emote { id: id.into(), name: name.into() };
        assert_eq!(emotes("[emote:1:a][emote:2:b] [emote:1:a]"), vec![e("1", "a"), e("2", "b")]);
        assert_eq!(emotes("[emote:x:a] [emote:1:] [emote:1:a b] [emote:3:ok"), vec![]);
        assert_eq!(emotes("[emote:[emote:4:four]"), vec![e("4", "four")]);
        let many: String = (0..40).map(|i| format!("[emote:{i}:e{i}]")).collect();
        let found = emotes(&many);
        assert_eq!(found.len(), MAX_EMOTES);
        assert_eq!(found[MAX_EMOTES - 1], e("15", "e15"));
    }

    proptest! {
        #[test]
        fn any_input_maps_or_errors_without_panicking(event in "(App\\\\Events\\\\)?[A-Za-z]{0,30}", data in "\\PC{0,200}") {
            let _ = parse("7", &event, &data);
            let _ = parse("7", "ChatMessageEvent", &data);
        }

        #[test]
        fn any_chat_message_maps_to_a_valid_message(
            id in "[a-z0-9-]{1,40}", user in 0u64..u64::MAX, content in "\\PC{1,300}", name in "\\PC{0,80}"
        ) {
            let data = json!({"id": id, "content": content, "sender": {"id": user, "username": name}}).to_string();
            match parse("7", "ChatMessageEvent", &data) {
                Ok(BridgeEvent::Message(m)) => {
                    prop_assert_eq!(&m.idempotency_key, &format!("kick:{id}"));
                    prop_assert!(switchboard_core::content::parse(&serde_json::to_value(m.content()).unwrap()).is_ok());
                    prop_assert!(m.source.author.username.chars().count() <= MAX_USERNAME_CHARS);
                    prop_assert!(m.source.emotes.len() <= MAX_EMOTES);
                }
                Err(KickError::Missing("content")) => prop_assert!(content.chars().all(|c| c.is_whitespace() || c.is_control())),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}
