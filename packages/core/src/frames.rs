//! WebSocket frames: the server frames we send (each encoded once per broadcast) and the client frames we accept.

use crate::error::{ApiError, ErrorCode};
use crate::limits::MAX_FRAME_BYTES;
use crate::model::Message;
use crate::validate;
use serde_json::{json, Map, Value};

/// `{"type":"event","event","payload","seq"}`: encoded once, stored in the replay log as is, and sent
/// byte-for-byte the same to every socket and to every later resume.
/// `{"type":"event","event":…,"payload":…,"seq":…}` around a payload that is already JSON text
/// (`Event::payload_json`): nothing is parsed or copied into a tree.
pub fn event(name: &str, payload_json: &str, seq: u64) -> String {
    let name = Value::from(name).to_string();
    format!(r#"{{"type":"event","event":{name},"payload":{payload_json},"seq":{seq}}}"#)
}

/// `{"type":"event","event","payload"}` without a seq: an ephemeral event (typing), never replayed.
pub fn ephemeral_event(name: &str, payload: &Value) -> String {
    json!({"type": "event", "event": name, "payload": payload}).to_string()
}

/// `{"type":"resync","seq"}`: the client's `since` is outside what we keep; refetch over HTTP.
pub fn resync(latest: u64) -> String {
    json!({"type": "resync", "seq": latest}).to_string()
}

/// `{"type":"ready","seq"}`: replay (if any) is done; everything after this is live.
pub fn ready(latest: u64) -> String {
    json!({"type": "ready", "seq": latest}).to_string()
}

/// `{"type":"message.ack",...}`: the answer to a `message.create` frame.
/// The answer to `message.create`, written straight from the message (no intermediate `Value`).
pub fn message_ack(request_id: Option<&str>, message: &Message, duplicate: bool) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Ack<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        request_id: Option<&'a str>,
        message_id: &'a str,
        message: &'a Message,
        duplicate: bool,
    }
    let ack = Ack { kind: "message.ack", request_id, message_id: &message.id, message, duplicate };
    serde_json::to_string(&ack).unwrap_or_else(|e| ApiError::internal(format!("encode ack: {e}")).to_frame(request_id))
}

/// A frame a client sent us, after validation of its envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    MessageCreate {
        request_id: Option<String>,
        content: Value,
        in_reply_to_message_id: Option<String>,
        client_id: Option<String>,
    },
}

/// Why a frame was refused: either answer with an error frame, or close the socket.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameRejection {
    Reply { error: ApiError, request_id: Option<String> },
    Close { code: u16, reason: &'static str },
}

/// Checks a binary frame: we only speak text.
pub fn binary(len: usize) -> FrameRejection {
    if len > MAX_FRAME_BYTES {
        return FrameRejection::Close { code: crate::limits::close::MESSAGE_TOO_BIG, reason: "frame too large" };
    }
    FrameRejection::Reply {
        error: ApiError::new(ErrorCode::BinaryNotSupported, "binary frames are not supported; send JSON text"),
        request_id: None,
    }
}

fn opt_string(o: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("{key}: must be a string"))),
    }
}

/// Parses a text frame.
pub fn parse_client(text: &str) -> Result<ClientFrame, FrameRejection> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(FrameRejection::Close { code: crate::limits::close::MESSAGE_TOO_BIG, reason: "frame too large" });
    }
    let reply = |error: ApiError, request_id: Option<String>| FrameRejection::Reply { error, request_id };
    let mut value: Value = serde_json::from_str(text)
        .map_err(|e| reply(ApiError::new(ErrorCode::BadFrame, format!("frame is not valid JSON: {e}")), None))?;
    let o = value
        .as_object_mut()
        .ok_or_else(|| reply(ApiError::new(ErrorCode::BadFrame, "frame must be a JSON object"), None))?;
    // Echo a well-formed requestId in any error, so the client can match it.
    let request_id = match o.get("requestId") {
        Some(Value::String(s)) if validate::request_id(s).is_ok() => Some(s.clone()),
        None | Some(Value::Null) => None,
        Some(_) => return Err(reply(ApiError::invalid("requestId: must be a string of 1..128 characters"), None)),
    };
    let kind = match o.get("type") {
        Some(Value::String(t)) => t.as_str(),
        _ => return Err(reply(ApiError::new(ErrorCode::BadFrame, "frame needs a string \"type\""), request_id)),
    };
    match kind {
        "message.create" => {
            const KEYS: [&str; 5] = ["type", "requestId", "content", "inReplyToMessageId", "clientId"];
            if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
                return Err(reply(ApiError::invalid(format!("{k}: unknown field")), request_id));
            }
            // Taken out of the frame, not copied: it is parsed once more into blocks.
            let content = o.remove("content").unwrap_or(Value::Null);
            let in_reply = opt_string(o, "inReplyToMessageId").map_err(|e| reply(e, request_id.clone()))?;
            let client_id = opt_string(o, "clientId").map_err(|e| reply(e, request_id.clone()))?;
            Ok(ClientFrame::MessageCreate { request_id, content, in_reply_to_message_id: in_reply, client_id })
        }
        other => {
            Err(reply(ApiError::new(ErrorCode::UnknownFrameType, format!("unknown frame type {other:?}")), request_id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<ClientFrame, FrameRejection>) -> &'static str {
        match r {
            Err(FrameRejection::Reply { error, .. }) => error.code.as_str(),
            Err(FrameRejection::Close { .. }) => "close",
            Ok(_) => "ok",
        }
    }

    #[test]
    fn ack_frame_shape() {
        let message: Message = serde_json::from_value(json!({
            "id": "01JC0000000000000000000000", "conversationId": "c", "senderId": "u1",
            "content": [{"type": "text", "text": "hi"}], "inReplyToMessageId": null, "createdAt": 5,
            "updatedAt": null, "clientUpdatedAt": null, "deleted": false, "deliveryFailed": false, "reactions": []
        }))
        .unwrap();
        let f: Value = serde_json::from_str(&message_ack(Some("r1"), &message, false)).unwrap();
        assert_eq!(
            f,
            json!({"type": "message.ack", "requestId": "r1", "messageId": message.id, "message": message, "duplicate": false})
        );
        let f: Value = serde_json::from_str(&message_ack(None, &message, true)).unwrap();
        assert_eq!(f["requestId"], Value::Null);
        assert_eq!(f["duplicate"], json!(true));
    }

    #[test]
    fn event_frame_around_payload_text() {
        let f: Value = serde_json::from_str(&event("message.created", r#"{"a":[1,"x\"y"]}"#, 9)).unwrap();
        assert_eq!(f, json!({"type": "event", "event": "message.created", "payload": {"a": [1, "x\"y"]}, "seq": 9}));
    }

    #[test]
    fn event_frame_shape() {
        let f: Value =
            serde_json::from_str(&event("message.deleted", &json!({"messageId": "m"}).to_string(), 7)).unwrap();
        assert_eq!(f, json!({"type": "event", "event": "message.deleted", "payload": {"messageId": "m"}, "seq": 7}));
    }

    #[test]
    fn client_frames() {
        assert_eq!(code(parse_client("{")), "bad_frame");
        assert_eq!(code(parse_client("[]")), "bad_frame");
        assert_eq!(code(parse_client(r#"{"type":"dance"}"#)), "unknown_frame_type");
        assert_eq!(code(parse_client(r#"{"type":"message.create","content":[],"zzz":1}"#)), "invalid_request");
        assert_eq!(code(parse_client(&"x".repeat(MAX_FRAME_BYTES + 1))), "close");
        let ok = parse_client(
            r#"{"type":"message.create","requestId":"r1","content":[{"type":"text","text":"hi"}],"clientId":"c"}"#,
        );
        match ok {
            Ok(ClientFrame::MessageCreate { request_id, client_id, .. }) => {
                assert_eq!(request_id.as_deref(), Some("r1"));
                assert_eq!(client_id.as_deref(), Some("c"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_echo_request_id() {
        match parse_client(r#"{"type":"nope","requestId":"abc"}"#) {
            Err(FrameRejection::Reply { request_id, .. }) => assert_eq!(request_id.as_deref(), Some("abc")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn binary_frames() {
        assert!(matches!(binary(10), FrameRejection::Reply { .. }));
        assert!(matches!(binary(MAX_FRAME_BYTES + 1), FrameRejection::Close { code: 1009, .. }));
    }
}
