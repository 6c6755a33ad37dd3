//! Lenient readers for JSON that other people's servers write (Kick's reverse-engineered events, Kosmi's GraphQL).
//!
//! The rule: unknown fields are ignored, optional fields may be missing or null, ids may be numbers or strings, and
//! whatever we keep is bounded. Each reader answers `None` rather than failing; the caller decides which absences are
//! errors.

use serde_json::Value;

/// `s` cut to at most `max` characters (never inside a character).
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// `s` cut to at most `max` characters, ending with `…` when something was cut.
pub fn cut_with_ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out = cut(s, max.saturating_sub(1));
    if max > 0 {
        out.push('…');
    }
    out
}

/// An id: a non-empty string without control characters or surrounding spaces, or an integer, at most `max`
/// characters.
pub fn id(v: Option<&Value>, max: usize) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => return None,
    };
    let ok = !s.is_empty() && s.chars().count() <= max && s.trim() == s && !s.chars().any(char::is_control);
    ok.then_some(s)
}

/// A string, control characters removed and cut to `max` characters; `None` when absent, not a string, or empty.
pub fn text(v: Option<&Value>, max: usize) -> Option<String> {
    let s = v?.as_str()?;
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| cut(clean, max))
}

/// A non-negative integer, written as a number or as a string of digits.
pub fn uint(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean, written as one or as `"true"`/`"false"`, or 0/1.
pub fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        Value::Number(n) => n.as_u64().filter(|n| *n <= 1).map(|n| n == 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn ids_come_as_numbers_or_strings() {
        assert_eq!(id(Some(&json!(42)), 10).as_deref(), Some("42"));
        assert_eq!(id(Some(&json!(-1)), 10).as_deref(), Some("-1"));
        assert_eq!(id(Some(&json!("ab-1")), 10).as_deref(), Some("ab-1"));
        assert_eq!(id(Some(&json!(1.5)), 10), None);
        assert_eq!(id(Some(&json!("")), 10), None);
        assert_eq!(id(Some(&json!(" a")), 10), None);
        assert_eq!(id(Some(&json!("a\nb")), 10), None);
        assert_eq!(id(Some(&json!("abcdefghijk")), 10), None);
        assert_eq!(id(Some(&json!(null)), 10), None);
        assert_eq!(id(None, 10), None);
    }

    #[test]
    fn text_is_cleaned_and_bounded() {
        assert_eq!(text(Some(&json!("  héllo\u{0}  ")), 3).as_deref(), Some("hél"));
        assert_eq!(text(Some(&json!("   ")), 3), None);
        assert_eq!(text(Some(&json!(5)), 3), None);
        assert_eq!(uint(Some(&json!("20"))), Some(20));
        assert_eq!(uint(Some(&json!(-3))), None);
        assert_eq!(boolean(Some(&json!("true"))), Some(true));
        assert_eq!(boolean(Some(&json!(0))), Some(false));
        assert_eq!(cut_with_ellipsis("abcdef", 4), "abc…");
        assert_eq!(cut_with_ellipsis("abcd", 4), "abcd");
    }

    proptest! {
        #[test]
        fn cut_never_exceeds_and_is_a_prefix(s in "\\PC{0,40}", max in 0usize..50) {
            let c = cut(&s, max);
            prop_assert!(c.chars().count() <= max);
            prop_assert!(s.starts_with(&c));
            let e = cut_with_ellipsis(&s, max);
            prop_assert!(e.chars().count() <= max);
        }
    }
}
