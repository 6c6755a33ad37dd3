//! What the worker (and conversation objects) ask the `PusherAppObject`, as JSON over `stub.fetch`.
//! The worker has already verified everything it could without the app's channel state (signatures,
//! bodies, names), so these are plain, valid requests. Encoded by serde; decoded by hand
//! ([`PusherCommand::decode`], `switchboard_core::fields`: a derived `Deserialize` of this enum was
//! ~17 KB of wasm).

use crate::http_api::{InfoFields, Trigger};
use serde::Serialize;
use serde_json::Value;
use switchboard_core::fields::{FieldError, Fields};
use switchboard_core::hub::Delivery;

/// Which channel attributes an answer carries (`info=user_count,subscription_count`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Debug, Serialize)]
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
    DeliverAll { events: Vec<Delivery> },
    /// Close every socket with 4200 (pusher-js reconnects at once): local mode's stand-in for a
    /// deploy.
    Reconnect,
    /// A member left or was removed from a conversation: the sockets on these channels (the
    /// conversation's private and presence channels) that are `member`'s, or whose subscription
    /// names nobody (`Registry::subscribers_for`), are closed with 4200, so pusher-js reconnects
    /// and authorizes its channels again, which the departed member no longer can. Without
    /// `member` (an older sender): every socket on them.
    Reauthorize {
        channels: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        member: Option<String>,
    },
}

impl Info {
    fn decode(mut f: Fields) -> Result<Info, FieldError> {
        Ok(Info { user_count: f.bool("user_count")?, subscription_count: f.bool("subscription_count")? })
    }
}

impl Publish {
    fn decode(mut f: Fields) -> Result<Publish, FieldError> {
        Ok(Publish {
            name: f.string("name")?,
            data: f.string("data")?,
            channels: f.strings("channels")?,
            socket_id: f.opt_string("socket_id")?,
            info: Info::decode(f.object("info")?)?,
        })
    }
}

impl PusherCommand {
    /// Decodes what `serde_json::to_string(&command)` wrote (the sender's side).
    pub fn decode(text: &str) -> Result<PusherCommand, FieldError> {
        let mut f = Fields::parse(text)?;
        let op = f.string("op")?;
        Ok(match op.as_str() {
            "trigger" => PusherCommand::Trigger { event: Publish::decode(f.object("event")?)? },
            "batch" => PusherCommand::Batch {
                events: f.objects("events")?.into_iter().map(Publish::decode).collect::<Result<_, _>>()?,
            },
            "channels" => {
                PusherCommand::Channels { prefix: f.opt_string("prefix")?, info: Info::decode(f.object("info")?)? }
            }
            "channel" => PusherCommand::Channel { name: f.string("name")?, info: Info::decode(f.object("info")?)? },
            "users" => PusherCommand::Users { name: f.string("name")? },
            "deliver" => PusherCommand::Deliver {
                context: f.string("context")?,
                event: f.string("event")?,
                payload: f.value("payload")?,
                ephemeral: f.bool_or_default("ephemeral")?,
            },
            "deliver_all" => PusherCommand::DeliverAll {
                events: f.objects("events")?.into_iter().map(Delivery::decode).collect::<Result<_, _>>()?,
            },
            "reconnect" => PusherCommand::Reconnect,
            "reauthorize" => {
                PusherCommand::Reauthorize { channels: f.strings("channels")?, member: f.opt_string("member")? }
            }
            other => return Err(Fields::unknown("op", other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn publish(socket_id: Option<&str>) -> Publish {
        Publish {
            name: "e".into(),
            data: "{\"a\":1}".into(),
            channels: vec!["c1".into(), "private-c2".into()],
            socket_id: socket_id.map(str::to_string),
            info: Info { user_count: true, subscription_count: false },
        }
    }

    /// One sample per command; the `match` has no wildcard, so a new command does not compile
    /// until it has a sample here.
    fn samples() -> Vec<PusherCommand> {
        let all = vec![
            PusherCommand::Trigger { event: publish(Some("1.2")) },
            PusherCommand::Trigger { event: publish(None) },
            PusherCommand::Batch { events: vec![publish(None), publish(Some("3.4"))] },
            PusherCommand::Batch { events: vec![] },
            PusherCommand::Channels { prefix: Some("presence-".into()), info: Info::default() },
            PusherCommand::Channels { prefix: None, info: Info { user_count: false, subscription_count: true } },
            PusherCommand::Channel { name: "c".into(), info: Info::default() },
            PusherCommand::Users { name: "presence-c".into() },
            PusherCommand::Deliver {
                context: "/c/x".into(),
                event: "m".into(),
                payload: json!({"x": [1]}),
                ephemeral: true,
            },
            PusherCommand::DeliverAll {
                events: vec![
                    Delivery { context: "/c/x".into(), event: "a".into(), payload: json!(1), ephemeral: false },
                    Delivery { context: "/c/x".into(), event: "typing".into(), payload: json!({}), ephemeral: true },
                ],
            },
            PusherCommand::DeliverAll { events: vec![] },
            PusherCommand::Reconnect,
            PusherCommand::Reauthorize { channels: vec!["private-conversation-x".into()], member: None },
            PusherCommand::Reauthorize { channels: vec!["presence-conversation-x".into()], member: Some("u1".into()) },
        ];
        let mut seen = [false; 9];
        for c in &all {
            let i = match c {
                PusherCommand::Trigger { .. } => 0,
                PusherCommand::Batch { .. } => 1,
                PusherCommand::Channels { .. } => 2,
                PusherCommand::Channel { .. } => 3,
                PusherCommand::Users { .. } => 4,
                PusherCommand::Deliver { .. } => 5,
                PusherCommand::Reconnect => 6,
                PusherCommand::Reauthorize { .. } => 7,
                PusherCommand::DeliverAll { .. } => 8,
            };
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s), "a command without a sample: {seen:?}");
        all
    }

    #[test]
    fn every_command_decodes_to_what_was_encoded() {
        switchboard_core::fields::assert_round_trips(&samples(), PusherCommand::decode);
    }

    #[test]
    fn deliver_without_ephemeral_and_bad_commands() {
        let d = PusherCommand::decode(r#"{"op":"deliver","context":"c","event":"e","payload":null}"#).unwrap();
        assert!(matches!(d, PusherCommand::Deliver { ephemeral: false, .. }));
        for text in [
            "[]",
            r#"{"op":"trigger"}"#,
            r#"{"op":"trigger","event":{"name":"e","data":"d","channels":"c","info":{}}}"#,
            r#"{"op":"channels","info":{"user_count":1,"subscription_count":false}}"#,
            r#"{"op":"x"}"#,
        ] {
            assert!(PusherCommand::decode(text).is_err(), "{text}");
        }
    }
}
