//! What a committed command asks the Durable Object to do. The shell carries these out in order
//! after the transaction committed (sends, then closes, then watch calls, then the alarm); a failed
//! command has none. Sockets are named by their index in the list the shell passed in
//! ([`crate::Ctx::sockets`]).

/// One encoded frame for some of the sockets.
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    pub frame: String,
    /// Indices into [`crate::Ctx::sockets`].
    pub to: Vec<usize>,
}

/// Tell a conversation whether this member's hub watches it and is present in it
/// (`ConversationCommand::Watch`, on behalf of `member`).
#[derive(Debug, Clone, PartialEq)]
pub struct WatchCall {
    pub member: String,
    pub conversation_id: String,
    pub watching: bool,
    pub present: bool,
}

#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    pub sends: Vec<Send>,
    /// Close the socket at this index with this code and reason.
    pub closes: Vec<(usize, u16, &'static str)>,
    pub watches: Vec<WatchCall>,
    /// The alarm (the hub's sweep) must fire no later than this (epoch ms).
    pub alarm_at: Option<i64>,
}

impl Effects {
    /// Asks for the alarm no later than `at`.
    pub fn alarm_by(&mut self, at: i64) {
        self.alarm_at = Some(self.alarm_at.map_or(at, |t| t.min(at)));
    }

    pub fn is_empty(&self) -> bool {
        self == &Effects::default()
    }
}
