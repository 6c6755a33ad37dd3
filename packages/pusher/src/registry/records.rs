//! What each socket keeps in its attachment, and rebuilding the registry from those records.

use super::state::SocketState;
use super::Registry;
use crate::auth::{self, App, PresenceMember, SignedInUser, SocketId};
use crate::channel::{self, ChannelKind};
use crate::limits::{MAX_CHANNELS_PER_SOCKET, MAX_PRESENCE_MEMBERS, MAX_RECORD_BYTES, MAX_SOCKETS_PER_REGISTRY};
use serde::{Deserialize, Serialize};

/// One channel of a socket's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChannel {
    pub name: String,
    /// Presence channels: the member this socket is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<PresenceMember>,
    /// Private channels: the member its `auth` was signed for, when the auth named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_for: Option<String>,
}

/// What a socket keeps in its attachment so that the registry can be rebuilt after hibernation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketRecord {
    pub socket_id: SocketId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<SignedInUser>,
    #[serde(default)]
    pub channels: Vec<RecordChannel>,
}

impl SocketRecord {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Option<SocketRecord> {
        if text.len() > MAX_RECORD_BYTES {
            return None;
        }
        serde_json::from_str(text).ok()
    }
}

impl Registry {
    /// Rebuilds the state the records describe (each socket's attachment). Invalid entries (bad
    /// channel names, encrypted channels, presence channels without a member, beyond the limits,
    /// repeated socket ids) are skipped. No effects: nothing changed.
    pub fn from_records(app: App, records: impl IntoIterator<Item = SocketRecord>) -> Self {
        let mut reg = Registry::new(app);
        for rec in records {
            if reg.sockets.len() >= MAX_SOCKETS_PER_REGISTRY || reg.sockets.contains_key(&rec.socket_id) {
                continue;
            }
            let socket = rec.socket_id;
            let mut state = SocketState::new(rec.user);
            for ch in rec.channels {
                if state.channels.len() >= MAX_CHANNELS_PER_SOCKET || state.channels.contains_key(&ch.name) {
                    continue;
                }
                let kind = channel::validate(&ch.name).ok();
                let member = match (kind, ch.member) {
                    (Some(ChannelKind::Public | ChannelKind::Private), _) => None,
                    (Some(ChannelKind::Presence), Some(m)) => Some(m),
                    _ => continue,
                };
                let signed_for = match (kind, ch.signed_for) {
                    (Some(ChannelKind::Private), Some(id)) if auth::valid_user_id(&id) => Some(id),
                    _ => None,
                };
                let entry = reg.channels.entry(ch.name.clone()).or_default();
                if let Some(m) = &member {
                    if !entry.members.contains_key(&m.user_id) && entry.members.len() >= MAX_PRESENCE_MEMBERS {
                        if entry.sockets.is_empty() {
                            reg.channels.remove(&ch.name);
                        }
                        continue;
                    }
                    entry.members.entry(m.user_id.clone()).or_default().insert(socket.clone(), m.user_info.clone());
                }
                entry.sockets.insert(socket.clone());
                if let Some(id) = signed_for {
                    state.signed_for.insert(ch.name.clone(), id);
                }
                state.channels.insert(ch.name, member);
            }
            reg.sockets.insert(socket, state);
        }
        reg
    }

    /// The record of a socket, for its attachment.
    pub fn record(&self, socket: &SocketId) -> Option<SocketRecord> {
        let s = self.sockets.get(socket)?;
        Some(SocketRecord {
            socket_id: socket.clone(),
            user: s.user.clone(),
            channels: s
                .channels
                .iter()
                .map(|(name, member)| RecordChannel {
                    name: name.clone(),
                    member: member.clone(),
                    signed_for: s.signed_for.get(name).cloned(),
                })
                .collect(),
        })
    }

    /// The JSON length of the socket's record with one more channel.
    pub(super) fn record_len_with(
        &self,
        socket: &SocketId,
        name: &str,
        member: Option<&PresenceMember>,
        signed_for: Option<&str>,
    ) -> usize {
        match self.record(socket) {
            Some(mut rec) => {
                rec.channels.push(RecordChannel {
                    name: name.to_string(),
                    member: member.cloned(),
                    signed_for: signed_for.map(str::to_string),
                });
                serde_json::to_string(&rec).map(|s| s.len()).unwrap_or(usize::MAX)
            }
            None => usize::MAX,
        }
    }
}
