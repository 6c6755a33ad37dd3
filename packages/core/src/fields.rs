//! Reading a JSON object's fields by hand: the decoders of the commands the worker sends objects.
//!
//! A serde-derived `Deserialize` of an internally tagged enum (`#[serde(tag = "op")]`, one struct
//! per variant) buffers the object, then runs a generated visitor per variant: ~40 KB of wasm for
//! the conversation's commands alone, compiled on a cold object's first call. These decoders parse
//! the text into a [`Value`] once (code every decoder shares) and take each field by name.
//!
//! The rules are serde's defaults for the shapes used: unknown fields are ignored, a missing or
//! `null` field is `None` for an `Option`, a required field that is missing is an error, integers
//! must be integers in range, and `#[serde(default)]` fields are the `_or_default` readers.

use serde_json::{Map, Value};
use std::fmt;

/// Why a command could not be decoded (it came from our own worker, so this is a bug or a version
/// skew; the object answers 500 with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError(pub String);

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FieldError {}

type R<T> = Result<T, FieldError>;

fn expected(key: &str, what: &str) -> FieldError {
    FieldError(format!("`{key}`: expected {what}"))
}

/// The fields of one JSON object, taken out one by one.
#[derive(Debug, Default)]
pub struct Fields(Map<String, Value>);

impl Fields {
    /// Parses `text`, which must be one JSON object.
    pub fn parse(text: &str) -> R<Fields> {
        let v: Value = serde_json::from_str(text).map_err(|e| FieldError(e.to_string()))?;
        Fields::of(v, "the command")
    }

    /// The fields of `v`, which must be an object (`what` names it in the error).
    pub fn of(v: Value, what: &str) -> R<Fields> {
        match v {
            Value::Object(m) => Ok(Fields(m)),
            _ => Err(expected(what, "an object")),
        }
    }

    /// The field's value; `null` when missing.
    pub fn take(&mut self, key: &str) -> Value {
        self.0.remove(key).unwrap_or(Value::Null)
    }

    /// A required field of any JSON type (`null` included).
    pub fn value(&mut self, key: &str) -> R<Value> {
        self.0.remove(key).ok_or_else(|| FieldError(format!("missing field `{key}`")))
    }

    pub fn string(&mut self, key: &str) -> R<String> {
        self.opt_string(key)?.ok_or_else(|| expected(key, "a string"))
    }

    pub fn opt_string(&mut self, key: &str) -> R<Option<String>> {
        match self.take(key) {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(expected(key, "a string")),
        }
    }

    pub fn i64(&mut self, key: &str) -> R<i64> {
        self.opt_i64(key)?.ok_or_else(|| expected(key, "an integer"))
    }

    pub fn opt_i64(&mut self, key: &str) -> R<Option<i64>> {
        match self.take(key) {
            Value::Null => Ok(None),
            Value::Number(n) => n.as_i64().map(Some).ok_or_else(|| expected(key, "an integer")),
            _ => Err(expected(key, "an integer")),
        }
    }

    pub fn usize(&mut self, key: &str) -> R<usize> {
        match self.take(key) {
            Value::Number(n) => {
                n.as_u64().and_then(|u| usize::try_from(u).ok()).ok_or_else(|| expected(key, "a non-negative integer"))
            }
            _ => Err(expected(key, "a non-negative integer")),
        }
    }

    pub fn bool(&mut self, key: &str) -> R<bool> {
        match self.take(key) {
            Value::Bool(b) => Ok(b),
            _ => Err(expected(key, "a boolean")),
        }
    }

    /// A `#[serde(default)]` boolean: `false` when missing.
    pub fn bool_or_default(&mut self, key: &str) -> R<bool> {
        match self.0.contains_key(key) {
            true => self.bool(key),
            false => Ok(false),
        }
    }

    /// A required array of strings.
    pub fn strings(&mut self, key: &str) -> R<Vec<String>> {
        match self.take(key) {
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(expected(key, "an array of strings")),
                })
                .collect(),
            _ => Err(expected(key, "an array of strings")),
        }
    }

    /// A required nested object.
    pub fn object(&mut self, key: &str) -> R<Fields> {
        let v = self.value(key)?;
        Fields::of(v, key)
    }

    /// A required array of objects.
    pub fn objects(&mut self, key: &str) -> R<Vec<Fields>> {
        match self.take(key) {
            Value::Array(items) => items.into_iter().map(|v| Fields::of(v, key)).collect(),
            _ => Err(expected(key, "an array of objects")),
        }
    }

    /// The error for an unknown `op` (or other tag or unit-variant) value.
    pub fn unknown(tag: &str, value: &str) -> FieldError {
        FieldError(format!("unknown {tag} `{value}`"))
    }
}

/// For the decoders' tests: each of `samples`, encoded by serde, decodes to what encodes the same.
/// (Generic and unused outside tests, so no wasm.)
pub fn assert_round_trips<T: serde::Serialize>(samples: &[T], decode: impl Fn(&str) -> R<T>) {
    for sample in samples {
        let text = serde_json::to_string(sample).expect("a sample encodes");
        let back = decode(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(serde_json::to_string(&back).expect("a decoded sample encodes"), text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(v: Value) -> Fields {
        Fields::of(v, "t").unwrap()
    }

    #[test]
    fn strings_and_options() {
        let mut x = f(json!({"a": "x", "b": null, "n": 3}));
        assert_eq!(x.string("a"), Ok("x".into()));
        assert_eq!(x.opt_string("b"), Ok(None));
        assert_eq!(x.opt_string("missing"), Ok(None));
        assert!(x.string("missing").is_err());
        assert!(x.opt_string("n").is_err());
    }

    #[test]
    fn integers_are_integers_in_range() {
        let mut x = f(json!({"i": -5, "u": 7, "fl": 1.5, "neg": -1, "s": "1", "big": u64::MAX}));
        assert_eq!(x.i64("i"), Ok(-5));
        assert_eq!(x.usize("u"), Ok(7));
        assert!(x.i64("fl").is_err());
        assert!(x.usize("neg").is_err());
        assert!(x.i64("s").is_err());
        assert!(x.i64("big").is_err());
        assert_eq!(x.opt_i64("missing"), Ok(None));
        assert!(x.usize("missing").is_err());
    }

    #[test]
    fn booleans_with_and_without_default() {
        let mut x = f(json!({"t": true, "n": null}));
        assert_eq!(x.bool("t"), Ok(true));
        assert_eq!(x.bool_or_default("missing"), Ok(false));
        assert!(x.bool("missing").is_err());
        assert!(x.bool_or_default("n").is_err());
    }

    #[test]
    fn values_arrays_objects_and_tags() {
        let mut x = f(json!({"v": null, "l": ["a", "b"], "bad": ["a", 1], "o": {"k": 1}, "os": [{}, {}]}));
        assert_eq!(x.value("v"), Ok(Value::Null));
        assert!(x.value("missing").is_err());
        assert_eq!(x.strings("l"), Ok(vec!["a".to_string(), "b".to_string()]));
        assert!(x.strings("bad").is_err());
        assert_eq!(x.object("o").and_then(|mut o| o.i64("k")), Ok(1));
        assert_eq!(x.objects("os").map(|v| v.len()), Ok(2));
        assert!(Fields::parse("[1]").is_err());
        assert!(Fields::parse("{").is_err());
        assert_eq!(Fields::parse(r#"{"op":"x"}"#).and_then(|mut p| p.string("op")), Ok("x".into()));
    }
}
