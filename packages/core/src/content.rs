//! Message content: a list of blocks, validated to kilo-chat's limits.
//! Input is parsed from raw JSON by hand so that every error names the exact field (`content[2].actions[0].style`).

use crate::error::ApiError;
use crate::limits::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Block {
    Text {
        text: String,
    },
    Actions {
        #[serde(rename = "groupId")]
        group_id: String,
        actions: Vec<Action>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        resolved: Option<Value>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub label: String,
    pub style: String,
    pub value: String,
}

const STYLES: [&str; 3] = ["primary", "danger", "secondary"];
const VALUES: [&str; 3] = ["allow-once", "allow-always", "deny"];

fn obj<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| ApiError::invalid(format!("{field}: must be an object")))
}

fn string<'a>(o: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a str, ApiError> {
    match o.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid(format!("{field}.{key}: must be a string"))),
        None => Err(ApiError::invalid(format!("{field}.{key}: is required"))),
    }
}

fn only_keys(o: &Map<String, Value>, allowed: &[&str], field: &str) -> Result<(), ApiError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(format!("{field}.{k}: unknown field"))),
        None => Ok(()),
    }
}

fn bounded(s: &str, max: usize, field: &str) -> Result<(), ApiError> {
    let n = s.chars().count();
    if n == 0 || n > max {
        return Err(ApiError::invalid(format!("{field}: must be 1..{max} characters")));
    }
    Ok(())
}

/// Validates `content` and answers the normalized blocks (text trimmed).
pub fn parse(v: &Value) -> Result<Vec<Block>, ApiError> {
    let items = v.as_array().ok_or_else(|| ApiError::invalid("content: must be an array of blocks"))?;
    if items.is_empty() || items.len() > MAX_BLOCKS {
        return Err(ApiError::invalid(format!("content: must have 1..{MAX_BLOCKS} blocks")));
    }
    items.iter().enumerate().map(|(i, b)| parse_block(b, &format!("content[{i}]"))).collect()
}

/// The blocks as stored and sent (JSON); refused (413 `payload_too_large`) over
/// [`MAX_CONTENT_BYTES`].
pub fn encode(blocks: &[Block]) -> Result<String, ApiError> {
    let json = serde_json::to_string(blocks).map_err(|e| ApiError::internal(format!("encode content: {e}")))?;
    if json.len() > MAX_CONTENT_BYTES {
        return Err(ApiError::new(
            crate::ErrorCode::PayloadTooLarge,
            format!(
                "content: is {} bytes encoded, over the {} KiB a message may hold",
                json.len(),
                MAX_CONTENT_BYTES / 1024
            ),
        ));
    }
    Ok(json)
}

fn parse_block(v: &Value, field: &str) -> Result<Block, ApiError> {
    let o = obj(v, field)?;
    match string(o, "type", field)? {
        "text" => {
            only_keys(o, &["type", "text"], field)?;
            let text = string(o, "text", field)?.trim();
            let n = text.chars().count();
            if n == 0 || n > MAX_TEXT_CHARS {
                return Err(ApiError::invalid(format!(
                    "{field}.text: must be 1..{MAX_TEXT_CHARS} characters after trimming"
                )));
            }
            Ok(Block::Text { text: text.to_string() })
        }
        "actions" => {
            only_keys(o, &["type", "groupId", "actions", "resolved"], field)?;
            let group_id = string(o, "groupId", field)?;
            bounded(group_id, MAX_GROUP_ID_CHARS, &format!("{field}.groupId"))?;
            let actions = match o.get("actions") {
                Some(Value::Array(a)) => a,
                Some(_) => return Err(ApiError::invalid(format!("{field}.actions: must be an array"))),
                None => return Err(ApiError::invalid(format!("{field}.actions: is required"))),
            };
            if actions.is_empty() || actions.len() > MAX_ACTIONS {
                return Err(ApiError::invalid(format!("{field}.actions: must have 1..{MAX_ACTIONS} actions")));
            }
            let actions = actions
                .iter()
                .enumerate()
                .map(|(j, a)| parse_action(a, &format!("{field}.actions[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let resolved = match o.get("resolved") {
                None | Some(Value::Null) => None,
                Some(r @ Value::Object(m)) => {
                    only_keys(m, &["value", "by", "at"], &format!("{field}.resolved"))?;
                    match m.get("value") {
                        Some(Value::String(s)) if VALUES.contains(&s.as_str()) => {}
                        _ => {
                            return Err(ApiError::invalid(format!(
                                "{field}.resolved.value: must be one of allow-once, allow-always, deny"
                            )))
                        }
                    }
                    Some(r.clone())
                }
                Some(_) => return Err(ApiError::invalid(format!("{field}.resolved: must be an object"))),
            };
            Ok(Block::Actions { group_id: group_id.to_string(), actions, resolved })
        }
        other => Err(ApiError::invalid(format!("{field}.type: unknown block type {other:?}"))),
    }
}

fn parse_action(v: &Value, field: &str) -> Result<Action, ApiError> {
    let o = obj(v, field)?;
    only_keys(o, &["label", "style", "value"], field)?;
    let label = string(o, "label", field)?.trim();
    bounded(label, MAX_ACTION_LABEL_CHARS, &format!("{field}.label"))?;
    let style = string(o, "style", field)?;
    if !STYLES.contains(&style) {
        return Err(ApiError::invalid(format!("{field}.style: must be one of primary, danger, secondary")));
    }
    let value = string(o, "value", field)?;
    if !VALUES.contains(&value) {
        return Err(ApiError::invalid(format!("{field}.value: must be one of allow-once, allow-always, deny")));
    }
    Ok(Action { label: label.to_string(), style: style.to_string(), value: value.to_string() })
}

/// The text blocks joined by newlines: used for auto-titles and push previews.
pub fn plain_text(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        if let Block::Text { text } = b {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(text);
        }
    }
    out
}

/// The first `max` characters of `s` (never cut inside a character), with whitespace collapsed.
pub fn preview(s: &str, max: usize) -> String {
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_text_and_actions() {
        let v = json!([
            {"type": "text", "text": "  hello  "},
            {"type": "actions", "groupId": "g1", "actions": [{"label": "Allow", "style": "primary", "value": "allow-once"}]}
        ]);
        let blocks = parse(&v).unwrap();
        assert_eq!(blocks[0], Block::Text { text: "hello".into() });
        let out = serde_json::to_value(&blocks).unwrap();
        assert_eq!(out[1]["type"], "actions");
        assert_eq!(out[1]["groupId"], "g1");
        assert!(out[1].get("resolved").is_none());
    }

    #[test]
    fn rejects_each_bad_shape_with_the_field() {
        let cases = [
            (json!([]), "content"),
            (json!("hi"), "content"),
            (json!([{"type": "text", "text": "   "}]), "content[0].text"),
            (json!([{"type": "text", "text": "x".repeat(8001)}]), "content[0].text"),
            (json!([{"type": "text", "text": 5}]), "content[0].text"),
            (json!([{"type": "text", "text": "a", "extra": 1}]), "content[0].extra"),
            (json!([{"type": "image"}]), "content[0].type"),
            (json!([{"type": "actions", "groupId": "g", "actions": []}]), "content[0].actions"),
            (
                json!([{"type": "actions", "groupId": "g", "actions": [{"label": "a", "style": "loud", "value": "deny"}]}]),
                "content[0].actions[0].style",
            ),
            (
                json!([{"type": "actions", "groupId": "g", "actions": [{"label": "a", "style": "primary", "value": "maybe"}]}]),
                "content[0].actions[0].value",
            ),
            (
                json!([{"type": "actions", "groupId": "", "actions": [{"label": "a", "style": "primary", "value": "deny"}]}]),
                "content[0].groupId",
            ),
        ];
        for (v, field) in cases {
            let e = parse(&v).unwrap_err();
            assert!(e.message.starts_with(field), "{} should name {field}", e.message);
        }
        let many: Vec<_> = (0..21).map(|_| json!({"type": "text", "text": "a"})).collect();
        assert!(parse(&Value::Array(many)).is_err());
        let eleven: Vec<_> = (0..11).map(|_| json!({"label": "a", "style": "primary", "value": "deny"})).collect();
        assert!(parse(&json!([{"type": "actions", "groupId": "g", "actions": eleven}])).is_err());
    }

    #[test]
    fn limits_are_inclusive() {
        let twenty: Vec<_> = (0..20).map(|_| json!({"type": "text", "text": "a"})).collect();
        assert!(parse(&Value::Array(twenty)).is_ok());
        assert!(parse(&json!([{"type": "text", "text": "é".repeat(8000)}])).is_ok());
    }

    #[test]
    fn preview_never_splits_a_character() {
        let s = "é".repeat(300);
        assert_eq!(preview(&s, 200).chars().count(), 200);
        assert_eq!(preview("a\n\n b", 10), "a b");
        let blocks = vec![Block::Text { text: "a".into() }, Block::Text { text: "b".into() }];
        assert_eq!(plain_text(&blocks), "a\nb");
    }
}
