//! What a server may send.

use serde_json::Value;

/// What a server may send.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ServerMessage {
    Ack,
    Ping,
    Pong,
    Next { id: String, payload: Value },
    Error { id: String, payload: Value },
    Complete { id: String },
}

impl ServerMessage {
    pub(super) fn parse(text: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(text).ok()?;
        let o = v.as_object()?;
        let id = || o.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        match o.get("type")?.as_str()? {
            "connection_ack" => Some(ServerMessage::Ack),
            "ping" => Some(ServerMessage::Ping),
            "pong" => Some(ServerMessage::Pong),
            "next" => {
                let payload = o.get("payload").filter(|p| p.is_object())?.clone();
                Some(ServerMessage::Next { id: id()?, payload })
            }
            "error" => {
                Some(ServerMessage::Error { id: id()?, payload: o.get("payload").cloned().unwrap_or(Value::Null) })
            }
            "complete" => Some(ServerMessage::Complete { id: id()? }),
            _ => None,
        }
    }
}
