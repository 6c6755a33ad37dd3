//! Request bodies (trigger and batch) and the `info` fields a request asks for.

use super::error::bad;
use super::{HttpError, Query};
use crate::auth::SocketId;
use crate::channel::{self, ChannelKind};
use crate::limits::{MAX_API_BODY_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_DATA_BYTES, MAX_TRIGGER_CHANNELS};
use serde_json::Value;

/// Which channel attributes a request asks for (`info=user_count,subscription_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InfoFields {
    pub user_count: bool,
    pub subscription_count: bool,
}

impl InfoFields {
    /// Unknown attributes are ignored (Pusher has more, e.g. `cache`, that we do not serve).
    pub fn parse(info: Option<&str>) -> InfoFields {
        let mut f = InfoFields::default();
        for part in info.unwrap_or("").split(',').map(str::trim) {
            match part {
                "user_count" => f.user_count = true,
                "subscription_count" => f.subscription_count = true,
                _ => {}
            }
        }
        f
    }

    pub fn any(self) -> bool {
        self.user_count || self.subscription_count
    }
}

/// One event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub name: String,
    /// As published: a string (the SDK `JSON.stringify`s objects), sent to clients as is.
    pub data: String,
    /// Valid, distinct, not `private-encrypted-`.
    pub channels: Vec<String>,
    /// The publisher's own socket, which does not receive the event.
    pub socket_id: Option<SocketId>,
    pub info: InfoFields,
}

fn parse_json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, HttpError> {
    if body.len() > MAX_API_BODY_BYTES {
        return Err(HttpError::TooLarge(format!("the body is larger than {MAX_API_BODY_BYTES} bytes")));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad("the body must be a JSON object")),
    }
}

fn trigger_from(o: &serde_json::Map<String, Value>, multi: bool) -> Result<Trigger, HttpError> {
    let name = match o.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad("`name` (a string) is required")),
    };
    channel::validate_event_name(&name).map_err(|e| bad(format!("event name {e}")))?;
    let data = match o.get("data") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => return Err(bad("`data` is required")),
        // lenient: an object is published as its JSON text, as the SDK would have
        Some(other) => other.to_string(),
    };
    if data.len() > MAX_EVENT_DATA_BYTES {
        return Err(HttpError::TooLarge(format!(
            "event data is {} bytes; at most {MAX_EVENT_DATA_BYTES} are allowed",
            data.len()
        )));
    }
    let mut names: Vec<String> = Vec::new();
    match (o.get("channel"), o.get("channels")) {
        (Some(Value::String(c)), None) => names.push(c.clone()),
        (None, Some(Value::Array(cs))) if multi => {
            if cs.len() > MAX_TRIGGER_CHANNELS {
                return Err(bad(format!("at most {MAX_TRIGGER_CHANNELS} channels per event")));
            }
            for c in cs {
                match c {
                    Value::String(s) => names.push(s.clone()),
                    _ => return Err(bad("`channels` must be strings")),
                }
            }
        }
        (Some(_), Some(_)) => return Err(bad("give `channel` or `channels`, not both")),
        _ if multi => return Err(bad("`channels` (an array) or `channel` (a string) is required")),
        _ => return Err(bad("`channel` (a string) is required")),
    }
    if names.is_empty() {
        return Err(bad("at least one channel is required"));
    }
    let mut channels: Vec<String> = Vec::with_capacity(names.len());
    for c in names {
        match channel::validate(&c) {
            Err(e) => return Err(bad(format!("channel `{c}` {e}"))),
            Ok(ChannelKind::PrivateEncrypted) => {
                return Err(bad(format!("channel `{c}`: end-to-end encrypted channels are not supported")))
            }
            Ok(_) => {}
        }
        if !channels.contains(&c) {
            channels.push(c);
        }
    }
    let socket_id = match o.get("socket_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(SocketId::parse(s).map_err(|e| bad(format!("socket_id: {e}")))?),
        Some(_) => return Err(bad("`socket_id` must be a string")),
    };
    let info = InfoFields::parse(o.get("info").and_then(Value::as_str));
    if info.user_count && channels.iter().any(|c| channel::kind(c) != ChannelKind::Presence) {
        return Err(bad("info=user_count is only available for presence channels"));
    }
    Ok(Trigger { name, data, channels, socket_id, info })
}

/// The body of `POST /events`: `{name, data, channel | channels[≤100], socket_id?, info?}`.
pub fn parse_trigger(body: &[u8]) -> Result<Trigger, HttpError> {
    trigger_from(&parse_json_object(body)?, true)
}

/// The body of `POST /batch_events`: `{batch: [≤10 of {name, data, channel, socket_id?, info?}]}`.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Trigger>, HttpError> {
    let o = parse_json_object(body)?;
    let batch = match o.get("batch") {
        Some(Value::Array(b)) => b,
        _ => return Err(bad("`batch` (an array) is required")),
    };
    if batch.len() > MAX_BATCH_EVENTS {
        return Err(bad(format!("at most {MAX_BATCH_EVENTS} events per batch")));
    }
    batch
        .iter()
        .enumerate()
        .map(|(i, e)| match e {
            Value::Object(m) => trigger_from(m, false).map_err(|err| match err {
                HttpError::TooLarge(m) => HttpError::TooLarge(format!("batch[{i}]: {m}")),
                other => bad(format!("batch[{i}]: {}", other.message())),
            }),
            _ => Err(bad(format!("batch[{i}] must be an object"))),
        })
        .collect()
}

/// `GET /channels` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelsQuery {
    pub filter_by_prefix: Option<String>,
    pub info: InfoFields,
}

impl ChannelsQuery {
    /// `info=user_count` needs `filter_by_prefix` starting with `presence-` (Pusher's rule).
    pub fn from_query(q: &Query) -> Result<ChannelsQuery, HttpError> {
        let filter_by_prefix = q.get("filter_by_prefix").map(String::from);
        let info = InfoFields::parse(q.get("info"));
        if info.user_count && !filter_by_prefix.as_deref().is_some_and(|p| p.starts_with(channel::PRESENCE_PREFIX)) {
            return Err(bad("info=user_count needs filter_by_prefix=presence-"));
        }
        Ok(ChannelsQuery { filter_by_prefix, info })
    }
}

/// `GET /channels/{name}` parameters: `info=user_count` only for presence channels.
pub fn channel_info_fields(channel_name: &str, q: &Query) -> Result<InfoFields, HttpError> {
    let info = InfoFields::parse(q.get("info"));
    if info.user_count && channel::kind(channel_name) != ChannelKind::Presence {
        return Err(bad("info=user_count is only available for presence channels"));
    }
    Ok(info)
}
