//! Reading any frame: the envelope, and the lenient readers of its fields and of `data`.

use super::FrameError;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The envelope of any frame. Types are checked by hand so that errors say which field.
#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(default)]
    pub(super) event: Option<Value>,
    #[serde(default)]
    pub(super) channel: Option<Value>,
    #[serde(default, borrow)]
    pub(super) data: Option<&'a RawValue>,
    #[serde(default)]
    pub(super) user_id: Option<Value>,
}

pub(super) fn envelope(text: &str, max: usize) -> Result<(String, Envelope<'_>), FrameError> {
    if text.len() > max {
        return Err(FrameError::TooLarge { bytes: text.len(), max });
    }
    if !text.trim_start().starts_with('{') {
        return Err(FrameError::Malformed("a frame is a JSON object".into()));
    }
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let event = match &env.event {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(FrameError::MissingEvent),
    };
    Ok((event, env))
}

/// A field that must be a string, when present.
pub(super) fn opt_string(v: Option<&Value>, field: &str) -> Result<Option<String>, FrameError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FrameError::Malformed(format!("`{field}` must be a string"))),
    }
}

/// A user id: a string, or a number (written as its JSON text).
pub(super) fn id_string(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// `data` as text: the contents when it is a JSON string, else its raw JSON text; `None` when absent
/// or `null`.
pub fn data_text(raw: Option<&RawValue>) -> Option<String> {
    let text = raw?.get().trim();
    if text == "null" {
        return None;
    }
    if text.starts_with('"') {
        if let Ok(s) = serde_json::from_str::<String>(text) {
            return Some(s);
        }
    }
    Some(text.to_string())
}

/// `data` as an object: an object, or a string holding one. Absent or `null` is an empty object.
pub(super) fn data_object(raw: Option<&RawValue>) -> Result<Map<String, Value>, FrameError> {
    let text = match raw {
        None => return Ok(Map::new()),
        Some(r) => r.get().trim(),
    };
    let inner: Value = serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))?;
    match inner {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m),
        Value::String(s) if s.trim().is_empty() => Ok(Map::new()),
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(FrameError::Malformed("`data` must be an object or a string holding one".into())),
        },
        _ => Err(FrameError::Malformed("`data` must be an object or a string holding one".into())),
    }
}

pub(super) fn required(map: &Map<String, Value>, event: &str, field: &'static str) -> Result<String, FrameError> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(FrameError::MissingField { event: event.to_string(), field }),
    }
}

/// A string field of `data`, or (lenient) an object/array written back as JSON text.
pub(super) fn json_text_field(map: &Map<String, Value>, field: &str) -> Option<String> {
    match map.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}
