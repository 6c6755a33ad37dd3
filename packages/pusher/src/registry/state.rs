//! What the registry keeps in memory per socket and per channel.

use crate::auth::{PresenceMember, SignedInUser, SocketId};
use crate::frame;
use std::collections::{BTreeMap, BTreeSet};
use switchboard_core::rate::{Bucket, FrameGate};

#[derive(Debug, Clone)]
pub(super) struct SocketState {
    pub(super) user: Option<SignedInUser>,
    /// Channel → the presence member this socket is there (presence channels).
    pub(super) channels: BTreeMap<String, Option<PresenceMember>>,
    /// Private channel → the member its `auth` was signed for (the `user_id` of the `channel_data`
    /// signed with it; our `/pusher/auth` always names it). Absent: signed without one.
    pub(super) signed_for: BTreeMap<String, String>,
    /// Client events' bucket, full when first used.
    pub(super) bucket: Option<Bucket>,
    pub(super) refused_in_a_row: u32,
    /// Every frame's bucket, full when first used.
    pub(super) frames: Option<FrameGate>,
}

impl SocketState {
    /// Whose subscription to `channel` this is, as far as the socket has said: its presence member
    /// there, the member its private `auth` was signed for, or the user it signed in as.
    pub(super) fn owner(&self, channel: &str) -> Option<&str> {
        match self.channels.get(channel) {
            Some(Some(m)) => Some(&m.user_id),
            _ => self.signed_for.get(channel).or(self.user.as_ref().map(|u| &u.id)).map(String::as_str),
        }
    }
}

impl SocketState {
    pub(super) fn new(user: Option<SignedInUser>) -> Self {
        SocketState {
            user,
            channels: BTreeMap::new(),
            signed_for: BTreeMap::new(),
            bucket: None,
            refused_in_a_row: 0,
            frames: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ChannelState {
    pub(super) sockets: BTreeSet<SocketId>,
    /// Presence channels: user id → that user's sockets here, each with its `user_info`.
    pub(super) members: BTreeMap<String, BTreeMap<SocketId, Option<String>>>,
}

impl ChannelState {
    pub(super) fn presence_data(&self) -> String {
        frame::presence_data(
            self.members.iter().map(|(id, socks)| (id.as_str(), socks.values().next().and_then(|i| i.as_deref()))),
        )
    }
}
