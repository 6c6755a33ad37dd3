//! Kosmi room ids (always with their `@`), from an id or a room URL.

use super::ROOM_URL_PREFIXES;
use crate::limits::*;
use std::fmt;

/// A Kosmi room id, always with its `@`: `@name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomId(pub(super) String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomError {
    /// A URL, but not `https://app.kosmi.io/room/…`.
    NotAKosmiRoomUrl,
    /// The name is empty or longer than `MAX_KOSMI_ROOM_NAME_CHARS`.
    Length { max: usize },
    /// The name may hold ASCII letters, digits, `_`, `-` and `.`.
    BadCharacter(char),
}

impl fmt::Display for RoomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomError::NotAKosmiRoomUrl => write!(f, "room: a URL must start with https://app.kosmi.io/room/"),
            RoomError::Length { max } => write!(f, "room: the name must be 1..{max} characters"),
            RoomError::BadCharacter(c) => write!(f, "room: {c:?} is not allowed (letters, digits, _ - .)"),
        }
    }
}

impl std::error::Error for RoomError {}

impl RoomId {
    /// Accepts `https://app.kosmi.io/room/@name` (a trailing `/`, query or fragment is ignored), `@name` or `name`.
    pub fn parse(input: &str) -> Result<Self, RoomError> {
        let s = input.trim();
        let name = match ROOM_URL_PREFIXES.iter().find_map(|p| s.strip_prefix(p)) {
            Some(rest) => rest.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/'),
            None if s.contains("://") || s.contains('/') => return Err(RoomError::NotAKosmiRoomUrl),
            None => s,
        };
        let name = name.strip_prefix('@').unwrap_or(name);
        if name.is_empty() || name.chars().count() > MAX_KOSMI_ROOM_NAME_CHARS {
            return Err(RoomError::Length { max: MAX_KOSMI_ROOM_NAME_CHARS });
        }
        if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
            return Err(RoomError::BadCharacter(c));
        }
        Ok(RoomId(format!("@{name}")))
    }

    /// `@name`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
