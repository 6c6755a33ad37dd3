//! What `POST /v1/conversations/:id/bridges` asks for, validated once: the platform, its room in
//! canonical form, and the per-bridge options. Anything else is a 400 with a clear message.

use crate::kosmi::RoomId;
use crate::nick::NickFormat;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::ApiError;

/// The platforms a conversation can be bridged to.
pub const PLATFORMS: [&str; 2] = ["kick", "kosmi"];
/// Kick chatroom ids are positive integers; larger than this is not an id.
pub const MAX_KICK_CHATROOM_ID: u64 = 1 << 53;

/// A validated link request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// `kick` or `kosmi`.
    pub platform: String,
    /// The room in canonical form: a Kick chatroom id (`"2507974"`), a Kosmi room (`"@name"`).
    pub room: String,
    /// Send members' messages to the room (Kick: needs `KICK_ACCESS_TOKEN`; Kosmi: always).
    pub relay_outbound: bool,
    /// Kosmi: how a member's message is written in the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_format: Option<String>,
}

impl Link {
    /// Parses the request body.
    pub fn parse(body: &Value) -> Result<Link, ApiError> {
        let o = body.as_object().ok_or_else(|| ApiError::invalid("body must be a JSON object"))?;
        for key in o.keys() {
            if !["platform", "chatroomId", "room", "relayOutbound", "nickFormat"].contains(&key.as_str()) {
                return Err(ApiError::invalid(format!("{key}: unknown field")));
            }
        }
        let platform = match o.get("platform") {
            Some(Value::String(p)) if PLATFORMS.contains(&p.as_str()) => p.clone(),
            Some(Value::String(p)) => {
                return Err(ApiError::invalid(format!("platform: \"{p}\" is not supported (kick or kosmi)")))
            }
            _ => return Err(ApiError::invalid("platform: required, \"kick\" or \"kosmi\"")),
        };
        let relay_outbound = match o.get("relayOutbound") {
            None | Some(Value::Null) => platform == "kosmi",
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::invalid("relayOutbound: must be a boolean")),
        };
        match platform.as_str() {
            "kick" => {
                if o.contains_key("nickFormat") {
                    return Err(ApiError::invalid("nickFormat: only for kosmi bridges"));
                }
                let id = match o.get("chatroomId") {
                    Some(Value::Number(n)) => n.as_u64(),
                    Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
                    _ => None,
                };
                match id {
                    Some(id) if id > 0 && id <= MAX_KICK_CHATROOM_ID => {
                        Ok(Link { platform, room: id.to_string(), relay_outbound, nick_format: None })
                    }
                    _ => Err(ApiError::invalid("chatroomId: required, a positive integer (Kick's chatroom id)")),
                }
            }
            _ => {
                let room = match o.get("room") {
                    Some(Value::String(r)) => RoomId::parse(r).map_err(|e| ApiError::invalid(e.to_string()))?,
                    _ => return Err(ApiError::invalid("room: required, a Kosmi room (@name or its URL)")),
                };
                let nick_format = match o.get("nickFormat") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(f)) => Some(
                        NickFormat::parse(f)
                            .map_err(|e| ApiError::invalid(format!("nickFormat: {e}")))?
                            .as_str()
                            .to_string(),
                    ),
                    Some(_) => return Err(ApiError::invalid("nickFormat: must be a string")),
                };
                Ok(Link { platform, room: room.as_str().to_string(), relay_outbound, nick_format })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kick_and_kosmi_links_are_canonical() {
        let k = Link::parse(&json!({"platform": "kick", "chatroomId": 2507974, "relayOutbound": true})).unwrap();
        assert_eq!((k.platform.as_str(), k.room.as_str(), k.relay_outbound), ("kick", "2507974", true));
        let k = Link::parse(&json!({"platform": "kick", "chatroomId": "42"})).unwrap();
        assert_eq!((k.room.as_str(), k.relay_outbound), ("42", false));
        let m = Link::parse(&json!({"platform": "kosmi", "room": "https://app.kosmi.io/room/@lounge"})).unwrap();
        assert_eq!((m.room.as_str(), m.relay_outbound, m.nick_format), ("@lounge", true, None));
        let m = Link::parse(&json!({"platform": "kosmi", "room": "lounge", "nickFormat": "[{name}] {text}"})).unwrap();
        assert_eq!(m.room, "@lounge");
        assert_eq!(m.nick_format.as_deref(), Some("[{name}] {text}"));
    }

    #[test]
    fn bad_links_say_what_is_wrong() {
        let msg = |v: Value| Link::parse(&v).unwrap_err().message;
        assert!(msg(json!({"platform": "twitch", "room": "x"})).contains("not supported"));
        assert!(msg(json!({"room": "x"})).starts_with("platform"));
        assert!(msg(json!({"platform": "kick", "chatroomId": -1})).starts_with("chatroomId"));
        assert!(msg(json!({"platform": "kick", "chatroomId": 0})).starts_with("chatroomId"));
        assert!(msg(json!({"platform": "kick", "chatroomId": 1.5})).starts_with("chatroomId"));
        assert!(msg(json!({"platform": "kick", "chatroomId": 1, "extra": 1})).starts_with("extra"));
        assert!(msg(json!({"platform": "kosmi", "room": ""})).starts_with("room"));
        assert!(msg(json!({"platform": "kosmi", "room": "@ok", "nickFormat": 3})).starts_with("nickFormat"));
        assert!(msg(json!({"platform": "kick", "chatroomId": 1, "relayOutbound": "yes"})).starts_with("relayOutbound"));
        assert!(msg(json!([1])).contains("object"));
    }
}
