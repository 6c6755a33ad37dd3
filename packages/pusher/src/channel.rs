//! Channel names and event names.
//!
//! A channel's kind is in its name: `private-` needs a signed `auth`, `presence-` needs `auth` and
//! `channel_data` (who the member is), anything else is public. `private-encrypted-` channels are
//! recognized so that they can be refused by name: end-to-end encrypted channels need the server to
//! hand out per-channel shared secrets, which we do not support (a subscription answers
//! `pusher:subscription_error`, an HTTP publish 400).
//!
//! Our conversations appear as `private-conversation-{id}` (events) and `presence-conversation-{id}`
//! (who is looking), where `{id}` is the conversation's ULID.

use crate::limits::{MAX_CHANNEL_NAME_CHARS, MAX_EVENT_NAME_CHARS};
use std::fmt;

pub const PRIVATE_PREFIX: &str = "private-";
pub const PRESENCE_PREFIX: &str = "presence-";
pub const PRIVATE_ENCRYPTED_PREFIX: &str = "private-encrypted-";
pub const CLIENT_EVENT_PREFIX: &str = "client-";
pub const PRIVATE_CONVERSATION_PREFIX: &str = "private-conversation-";
pub const PRESENCE_CONVERSATION_PREFIX: &str = "presence-conversation-";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    Public,
    Private,
    Presence,
    /// Recognized, never served (see the module comment).
    PrivateEncrypted,
}

impl ChannelKind {
    /// Subscribing needs a signed `auth`.
    pub fn needs_auth(self) -> bool {
        !matches!(self, ChannelKind::Public)
    }

    /// Clients may send `client-*` events on it.
    pub fn allows_client_events(self) -> bool {
        matches!(self, ChannelKind::Private | ChannelKind::Presence)
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong {
        chars: usize,
        max: usize,
    },
    /// The first character not allowed.
    BadChar(char),
    /// An event name where a `client-` one is needed.
    NotClientEvent,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("must not be empty"),
            NameError::TooLong { chars, max } => write!(f, "is {chars} characters long; at most {max} are allowed"),
            NameError::BadChar(c) => write!(f, "contains {c:?}; channel names use A-Z a-z 0-9 _ - = @ , . ;"),
            NameError::NotClientEvent => f.write_str("client events must start with `client-`"),
        }
    }
}

impl std::error::Error for NameError {}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '@' | ',' | '.' | ';')
}

/// The kind a name says, without validating it.
pub fn kind(name: &str) -> ChannelKind {
    if name.starts_with(PRIVATE_ENCRYPTED_PREFIX) {
        ChannelKind::PrivateEncrypted
    } else if name.starts_with(PRIVATE_PREFIX) {
        ChannelKind::Private
    } else if name.starts_with(PRESENCE_PREFIX) {
        ChannelKind::Presence
    } else {
        ChannelKind::Public
    }
}

/// Validates a channel name (non-empty, at most `MAX_CHANNEL_NAME_CHARS` from `A-Za-z0-9_-=@,.;`)
/// and answers its kind.
pub fn validate(name: &str) -> Result<ChannelKind, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    // every allowed character is ASCII, so bytes = chars for a valid name
    if let Some(c) = name.chars().find(|c| !allowed(*c)) {
        return Err(NameError::BadChar(c));
    }
    if name.len() > MAX_CHANNEL_NAME_CHARS {
        return Err(NameError::TooLong { chars: name.len(), max: MAX_CHANNEL_NAME_CHARS });
    }
    Ok(kind(name))
}

/// Validates an event name for the HTTP API: non-empty, at most `MAX_EVENT_NAME_CHARS` characters.
/// Any characters (Laravel names events `App\Events\X`).
pub fn validate_event_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let chars = name.chars().count();
    if chars > MAX_EVENT_NAME_CHARS {
        return Err(NameError::TooLong { chars, max: MAX_EVENT_NAME_CHARS });
    }
    Ok(())
}

/// Validates a client event name: starts with `client-`, at most `MAX_EVENT_NAME_CHARS` characters.
pub fn validate_client_event_name(name: &str) -> Result<(), NameError> {
    if !name.starts_with(CLIENT_EVENT_PREFIX) {
        return Err(NameError::NotClientEvent);
    }
    validate_event_name(name)
}

/// Which of our conversation channels a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationChannel<'a> {
    /// `private-conversation-{id}`: the conversation's events.
    Events(&'a str),
    /// `presence-conversation-{id}`: who is looking at it.
    Presence(&'a str),
}

impl<'a> ConversationChannel<'a> {
    pub fn id(self) -> &'a str {
        match self {
            ConversationChannel::Events(id) | ConversationChannel::Presence(id) => id,
        }
    }
}

/// `Some` when the name is one of our conversation channels with a valid conversation id (a
/// 26-character ULID).
pub fn conversation(name: &str) -> Option<ConversationChannel<'_>> {
    if let Some(id) = name.strip_prefix(PRIVATE_CONVERSATION_PREFIX) {
        valid_id(id).then_some(ConversationChannel::Events(id))
    } else if let Some(id) = name.strip_prefix(PRESENCE_CONVERSATION_PREFIX) {
        valid_id(id).then_some(ConversationChannel::Presence(id))
    } else {
        None
    }
}

/// The conversation id of `private-conversation-{id}` or `presence-conversation-{id}`.
pub fn conversation_id(name: &str) -> Option<&str> {
    conversation(name).map(ConversationChannel::id)
}

fn valid_id(id: &str) -> bool {
    switchboard_core::ids::parse("conversation", id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ULID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

    #[test]
    fn kinds() {
        assert_eq!(validate("chatrooms.1.v2"), Ok(ChannelKind::Public));
        assert_eq!(validate("private-a"), Ok(ChannelKind::Private));
        assert_eq!(validate("presence-a"), Ok(ChannelKind::Presence));
        assert_eq!(validate("private-encrypted-a"), Ok(ChannelKind::PrivateEncrypted));
        assert_eq!(validate("a-Z_0=@,.;"), Ok(ChannelKind::Public));
        // `private` without the dash is a public channel
        assert_eq!(validate("privateer"), Ok(ChannelKind::Public));
        assert!(!ChannelKind::Public.needs_auth());
        assert!(ChannelKind::Presence.allows_client_events());
        assert!(!ChannelKind::PrivateEncrypted.allows_client_events());
        assert!(!ChannelKind::Public.allows_client_events());
    }

    #[test]
    fn bad_names() {
        assert_eq!(validate(""), Err(NameError::Empty));
        assert_eq!(validate("a b"), Err(NameError::BadChar(' ')));
        assert_eq!(validate("a#b"), Err(NameError::BadChar('#')));
        assert_eq!(validate("é"), Err(NameError::BadChar('é')));
        assert_eq!(validate(&"a".repeat(164)), Ok(ChannelKind::Public));
        assert_eq!(validate(&"a".repeat(165)), Err(NameError::TooLong { chars: 165, max: 164 }));
    }

    #[test]
    fn event_names() {
        assert_eq!(validate_client_event_name("client-typing"), Ok(()));
        assert_eq!(validate_client_event_name("typing"), Err(NameError::NotClientEvent));
        assert_eq!(validate_client_event_name(&format!("client-{}", "x".repeat(193))), Ok(()));
        assert_eq!(
            validate_client_event_name(&format!("client-{}", "x".repeat(194))),
            Err(NameError::TooLong { chars: 201, max: 200 })
        );
        assert_eq!(validate_event_name(r"App\Events\ChatMessageEvent"), Ok(()));
        assert_eq!(validate_event_name(""), Err(NameError::Empty));
    }

    #[test]
    fn conversation_channels() {
        assert_eq!(conversation(&format!("private-conversation-{ULID}")), Some(ConversationChannel::Events(ULID)));
        assert_eq!(conversation(&format!("presence-conversation-{ULID}")), Some(ConversationChannel::Presence(ULID)));
        assert_eq!(conversation_id(&format!("presence-conversation-{ULID}")), Some(ULID));
        assert_eq!(conversation_id("private-conversation-123"), None);
        assert_eq!(conversation_id(&format!("private-conversation-{ULID}x")), None);
        assert_eq!(conversation_id(&format!("private-{ULID}")), None);
        assert_eq!(conversation_id(&format!("private-encrypted-conversation-{ULID}")), None);
    }

    proptest! {
        #[test]
        fn valid_names_are_exactly_the_allowed_alphabet(name in "[A-Za-z0-9_=@,.;-]{1,164}") {
            prop_assert!(validate(&name).is_ok());
        }

        #[test]
        fn validate_never_panics_and_bounds_length(name in any::<String>()) {
            if validate(&name).is_ok() {
                prop_assert!(!name.is_empty() && name.chars().count() <= MAX_CHANNEL_NAME_CHARS);
                prop_assert!(name.chars().all(allowed));
            }
        }
    }
}
