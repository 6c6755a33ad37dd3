//! What the worker (and conversation objects) ask the `PusherAppObject`, as JSON over `stub.fetch`.
//! The worker has already verified everything it could without the app's channel state (signatures,
//! bodies, names), so these are plain, valid requests.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_pusher::http_api::{InfoFields, Trigger};

/// Which channel attributes an answer carries (`info=user_count,subscription_count`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Info {
    pub user_count: bool,
    pub subscription_count: bool,
}

impl From<InfoFields> for Info {
    fn from(f: InfoFields) -> Self {
        Info { user_count: f.user_count, subscription_count: f.subscription_count }
    }
}

impl From<Info> for InfoFields {
    fn from(i: Info) -> Self {
        InfoFields { user_count: i.user_count, subscription_count: i.subscription_count }
    }
}

/// One event to publish, as verified by `switchboard_pusher::http_api`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Publish {
    pub name: String,
    pub data: String,
    pub channels: Vec<String>,
    /// The publisher's own socket, which does not receive the event.
    pub socket_id: Option<String>,
    pub info: Info,
}

impl From<Trigger> for Publish {
    fn from(t: Trigger) -> Self {
        Publish {
            name: t.name,
            data: t.data,
            channels: t.channels,
            socket_id: t.socket_id.map(|s| s.to_string()),
            info: t.info.into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PusherCommand {
    /// `POST /apps/{id}/events`.
    Trigger { event: Publish },
    /// `POST /apps/{id}/batch_events`.
    Batch { events: Vec<Publish> },
    /// `GET /apps/{id}/channels`.
    Channels { prefix: Option<String>, info: Info },
    /// `GET /apps/{id}/channels/{name}`.
    Channel { name: String, info: Info },
    /// `GET /apps/{id}/channels/{name}/users`.
    Users { name: String },
    /// A conversation's event, from the conversation object this app relays (the same shape as
    /// the member hub's `deliver`).
    Deliver {
        context: String,
        event: String,
        payload: Value,
        #[serde(default)]
        ephemeral: bool,
    },
    /// Several of a conversation's events, in order (the same shape as the member hub's
    /// `deliver_all`): each relayed as one `Deliver`.
    DeliverAll { events: Vec<switchboard_core::hub::Delivery> },
    /// Close every socket with 4200 (pusher-js reconnects at once): local mode's stand-in for a
    /// deploy.
    Reconnect,
    /// A member left or was removed from a conversation: every socket subscribed to these channels
    /// (the conversation's private and presence channels) is closed with 4200, so pusher-js
    /// reconnects and authorizes its channels again, which the departed member no longer can.
    Reauthorize { channels: Vec<String> },
}
