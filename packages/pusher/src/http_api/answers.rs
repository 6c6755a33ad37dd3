//! The JSON bodies the API answers with.

use super::InfoFields;
use crate::frame::push_json_string;

/// What the registry knows of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelInfo {
    pub subscription_count: usize,
    /// Distinct users, for presence channels.
    pub user_count: Option<usize>,
}

impl ChannelInfo {
    pub fn occupied(&self) -> bool {
        self.subscription_count > 0
    }
}

fn push_attributes(out: &mut String, info: &ChannelInfo, fields: InfoFields, mut first: bool) {
    if fields.user_count {
        if let Some(n) = info.user_count {
            if !first {
                out.push(',');
            }
            out.push_str(&format!(r#""user_count":{n}"#));
            first = false;
        }
    }
    if fields.subscription_count {
        if !first {
            out.push(',');
        }
        out.push_str(&format!(r#""subscription_count":{}"#, info.subscription_count));
    }
}

/// `GET /channels`: `{"channels":{"<name>":{<asked attributes>}}}`.
pub fn channels_body<'a>(channels: impl IntoIterator<Item = (&'a str, ChannelInfo)>, fields: InfoFields) -> String {
    let mut out = String::from(r#"{"channels":{"#);
    for (i, (name, info)) in channels.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, name);
        out.push_str(":{");
        push_attributes(&mut out, &info, fields, true);
        out.push('}');
    }
    out.push_str("}}");
    out
}

/// `GET /channels/{name}`: `{"occupied":bool, <asked attributes>}`.
pub fn channel_body(info: &ChannelInfo, fields: InfoFields) -> String {
    let mut out = format!(r#"{{"occupied":{}"#, info.occupied());
    push_attributes(&mut out, info, fields, false);
    out.push('}');
    out
}

/// `GET /channels/{name}/users`: `{"users":[{"id":"..."}]}`.
pub fn users_body<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from(r#"{"users":["#);
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"id":"#);
        push_json_string(&mut out, id);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// `POST /events` answer: `{}`, or with `info`, `{"channels":{"<name>":{<attributes>}}}`.
pub fn trigger_body<'a>(channels: impl IntoIterator<Item = (&'a str, ChannelInfo)>, fields: InfoFields) -> String {
    if fields.any() {
        channels_body(channels, fields)
    } else {
        "{}".to_string()
    }
}

/// `POST /batch_events` answer: `{}`, or when any asked `info`, `{"batch":[{<attributes>}, ...]}`
/// in the batch's order.
pub fn batch_body(items: &[(ChannelInfo, InfoFields)]) -> String {
    if !items.iter().any(|(_, f)| f.any()) {
        return "{}".to_string();
    }
    let mut out = String::from(r#"{"batch":["#);
    for (i, (info, fields)) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        push_attributes(&mut out, info, *fields, true);
        out.push('}');
    }
    out.push_str("]}");
    out
}
