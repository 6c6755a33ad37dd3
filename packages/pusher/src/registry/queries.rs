//! What the HTTP API asks of the registry: publishing an event, channel counts and members.

use super::{Delivery, Registry};
use crate::auth::SocketId;
use crate::channel::{self, ChannelKind};
use crate::frame::ServerFrame;
use crate::http_api::ChannelInfo;
use std::collections::BTreeSet;

impl Registry {
    /// An event published through the HTTP API: the one frame and who gets it (every subscriber
    /// but `except`). `None` when nobody does.
    pub fn publish(&self, name: &str, event: &str, data: &str, except: Option<&SocketId>) -> Option<Delivery> {
        let ch = self.channels.get(name)?;
        let sockets: Vec<SocketId> = ch.sockets.iter().filter(|s| Some(*s) != except).cloned().collect();
        if sockets.is_empty() {
            return None;
        }
        Some(Delivery { frame: ServerFrame::Event { channel: name, event, data, user_id: None }.encode(), sockets })
    }

    /// One channel's counts (zero when nobody is in it).
    pub fn channel_info(&self, name: &str) -> ChannelInfo {
        let ch = self.channels.get(name);
        ChannelInfo {
            subscription_count: ch.map_or(0, |c| c.sockets.len()),
            user_count: (channel::kind(name) == ChannelKind::Presence).then(|| ch.map_or(0, |c| c.members.len())),
        }
    }

    /// Occupied channels whose names start with `prefix`, in name order.
    pub fn channels(&self, prefix: Option<&str>) -> Vec<(&str, ChannelInfo)> {
        let prefix = prefix.unwrap_or("");
        self.channels
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, _)| (name.as_str(), self.channel_info(name)))
            .collect()
    }

    /// The user ids present in a presence channel, in order.
    pub fn presence_users(&self, name: &str) -> Vec<&str> {
        self.channels.get(name).map(|c| c.members.keys().map(String::as_str).collect()).unwrap_or_default()
    }

    /// The sockets subscribed to a channel.
    pub fn subscribers(&self, name: &str) -> Vec<&SocketId> {
        self.channels.get(name).map(|c| c.sockets.iter().collect()).unwrap_or_default()
    }

    /// The sockets to close when `member` loses the right to these channels: theirs (present as
    /// them, subscribed with an auth signed for them, or signed in as them) and those whose
    /// subscription says nobody (a private auth signed without `channel_data`, not signed in):
    /// they cannot be told apart, so they authorize again. Sockets that are someone else's stay.
    pub fn subscribers_for(&self, channels: &[String], member: &str) -> BTreeSet<&SocketId> {
        let mut out = BTreeSet::new();
        for name in channels {
            let Some(ch) = self.channels.get(name) else { continue };
            for socket in &ch.sockets {
                let owner = self.sockets.get(socket).and_then(|s| s.owner(name));
                if owner.is_none_or(|o| o == member) {
                    out.insert(socket);
                }
            }
        }
        out
    }
}
