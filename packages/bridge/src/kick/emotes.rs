//! Kick emotes written inline as `[emote:ID:NAME]`.

use crate::limits::*;
use crate::source::Emote;

const EMOTE_OPEN: &str = "[emote:";

/// The distinct emotes written `[emote:ID:NAME]` in `text`, in order of first use, at most `MAX_EMOTES`.
/// An id is 1..=`MAX_EMOTE_ID_CHARS` digits; a name 1..=`MAX_EMOTE_NAME_CHARS` characters without spaces,
/// brackets or colons. Anything else is left as plain text.
pub fn emotes(text: &str) -> Vec<Emote> {
    let mut out: Vec<Emote> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(EMOTE_OPEN) {
        rest = &rest[start + EMOTE_OPEN.len()..];
        let Some(emote) = emote_at(rest) else { continue };
        if !out.iter().any(|e| e.id == emote.id) {
            out.push(emote);
            if out.len() == MAX_EMOTES {
                break;
            }
        }
    }
    out
}

/// Reads `ID:NAME]` at the start of `s`.
fn emote_at(s: &str) -> Option<Emote> {
    let (id, after) = s.split_once(':')?;
    let (name, _) = after.split_once(']')?;
    let id_ok = !id.is_empty() && id.len() <= MAX_EMOTE_ID_CHARS && id.bytes().all(|b| b.is_ascii_digit());
    let name_ok = !name.is_empty()
        && name.chars().count() <= MAX_EMOTE_NAME_CHARS
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '[' | ']' | ':'));
    (id_ok && name_ok).then(|| Emote { id: id.to_string(), name: name.to_string() })
}
