//! Who is speaking: a human user or a sandbox's bot. The bot's member id is `bot:kiloclaw:{sandboxId}`.

use crate::error::ApiError;
use crate::validate;
use std::fmt;

const BOT_PREFIX: &str = "bot:kiloclaw:";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberId {
    User(String),
    Bot(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Bot,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "user",
            MemberKind::Bot => "bot",
        }
    }
}

impl MemberId {
    pub fn user(id: &str) -> Result<Self, ApiError> {
        validate::user_id(id)?;
        Ok(MemberId::User(id.to_string()))
    }

    pub fn bot(sandbox_id: &str) -> Result<Self, ApiError> {
        validate::sandbox_id(sandbox_id)?;
        Ok(MemberId::Bot(sandbox_id.to_string()))
    }

    /// Parses a stored member id (`alice` or `bot:kiloclaw:sb1`).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s.strip_prefix(BOT_PREFIX) {
            Some(sandbox) => Self::bot(sandbox),
            None => Self::user(s),
        }
    }

    pub fn kind(&self) -> MemberKind {
        match self {
            MemberId::User(_) => MemberKind::User,
            MemberId::Bot(_) => MemberKind::Bot,
        }
    }

    pub fn is_bot(&self) -> bool {
        matches!(self, MemberId::Bot(_))
    }

    pub fn sandbox_id(&self) -> Option<&str> {
        match self {
            MemberId::Bot(s) => Some(s),
            MemberId::User(_) => None,
        }
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberId::User(u) => f.write_str(u),
            MemberId::Bot(s) => write!(f, "{BOT_PREFIX}{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in ["alice", "bot:kiloclaw:sb-1_x"] {
            assert_eq!(MemberId::parse(s).unwrap().to_string(), s);
        }
        assert!(MemberId::parse("bot:kiloclaw:sb1").unwrap().is_bot());
        assert_eq!(MemberId::parse("bot:kiloclaw:sb1").unwrap().sandbox_id(), Some("sb1"));
    }

    #[test]
    fn users_cannot_impersonate_bots() {
        assert!(MemberId::user("bot:kiloclaw:sb1").is_err());
        assert!(MemberId::parse("bot:kiloclaw:bad id").is_err());
    }
}
