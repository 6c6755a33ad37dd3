//! What a reaction key may be.
//!
//! Either an **emoji**: 1 to `MAX_EMOJI_SCALARS` Unicode scalar values (at most `MAX_EMOJI_BYTES`
//! bytes of UTF-8), every one of them from the emoji blocks (pictographs and symbols, regional
//! indicators, skin tones) or a joiner/modifier (zero-width joiner U+200D, variation selectors
//! U+FE0E/U+FE0F, the keycap U+20E3, tag characters U+E0020..U+E007F), with at least one pictograph
//! or symbol, or a keycap (`0`-`9`, `#`, `*` followed by U+20E3); so a single emoji with its
//! sequences (skin tones, ZWJ families, flags) fits, and text does not.
//! Or a **shortcode**: `:name:` with a name of 1 to `MAX_SHORTCODE_CHARS` of `a-z 0-9 _ + -`
//! (`:thumbsup:`, `:+1:`), for clients that send names.

use crate::limits::MAX_EMOJI_BYTES;
use crate::ApiError;

/// Unicode scalar values of one emoji reaction (the longest sequences in use have 10).
pub const MAX_EMOJI_SCALARS: usize = 16;
/// Characters of a shortcode's name, between the colons.
pub const MAX_SHORTCODE_CHARS: usize = 32;

/// Pictographs and symbols that are emoji (or start one).
fn is_pictograph(c: char) -> bool {
    matches!(c as u32,
        0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139
        | 0x2194..=0x21AA | 0x231A..=0x23FF | 0x24C2 | 0x25AA..=0x27BF | 0x2934..=0x2935
        | 0x2B05..=0x2B55 | 0x3030 | 0x303D | 0x3297 | 0x3299 | 0x1F000..=0x1FAFF)
}

/// Joiners and modifiers that only make sense inside a sequence.
fn is_joiner(c: char) -> bool {
    matches!(c as u32, 0x200D | 0xFE0E | 0xFE0F | 0x20E3 | 0xE0020..=0xE007F)
}

fn is_keycap_base(c: char) -> bool {
    c.is_ascii_digit() || c == '#' || c == '*'
}

fn is_emoji(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() || chars.len() > MAX_EMOJI_SCALARS || s.len() > MAX_EMOJI_BYTES {
        return false;
    }
    let keycap = chars.contains(&'\u{20E3}');
    let allowed = chars.iter().all(|&c| is_pictograph(c) || is_joiner(c) || (keycap && is_keycap_base(c)));
    let has_base = chars.iter().any(|&c| is_pictograph(c) || (keycap && is_keycap_base(c)));
    allowed && has_base
}

fn is_shortcode(s: &str) -> bool {
    let Some(name) = s.strip_prefix(':').and_then(|r| r.strip_suffix(':')) else { return false };
    (1..=MAX_SHORTCODE_CHARS).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'+' | b'-'))
}

/// A key to remove: any key a reaction may have been stored under, including those from before
/// keys were validated (1..`MAX_EMOJI_BYTES` bytes, no control characters, no surrounding spaces),
/// so that old reactions can still be taken back.
pub fn validate_removal(s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > MAX_EMOJI_BYTES || s.chars().any(char::is_control) || s.trim() != s {
        return Err(ApiError::invalid(format!("emoji: must be 1..{MAX_EMOJI_BYTES} bytes without control characters")));
    }
    Ok(())
}

/// A reaction key: an emoji or a `:shortcode:` (see the module comment); 400 otherwise.
pub fn validate(s: &str) -> Result<(), ApiError> {
    if is_emoji(s) || is_shortcode(s) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "emoji: must be one emoji (at most {MAX_EMOJI_SCALARS} code points with its modifiers and joiners) \
             or a :shortcode: of a-z, 0-9, _, +, - (at most {MAX_SHORTCODE_CHARS})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_with_their_sequences() {
        for ok in ["👍", "👍🏽", "❤️", "🎉", "👨‍👩‍👧‍👦", "🧑🏻‍❤️‍💋‍🧑🏼", "🇫🇷", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣", "#️⃣", "©️", "🫠", "👍👍"]
        {
            assert!(validate(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn shortcodes() {
        for ok in [":thumbsup:", ":+1:", ":-1:", ":white_check_mark:", ":a:"] {
            assert!(validate(ok).is_ok(), "{ok:?}");
        }
        for bad in ["::", ":Thumbs:", ":a b:", ":thumbsup", "thumbsup:", &format!(":{}:", "a".repeat(33))] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn removal_takes_any_stored_key() {
        assert!(validate_removal("x").is_ok(), "a key from before validation");
        assert!(validate_removal("👍").is_ok());
        for bad in ["", " x", "a\nb", &"a".repeat(65)] {
            assert!(validate_removal(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_and_tricks_are_refused() {
        for bad in [
            "",
            "a",
            "ok",
            "1",
            " 👍",
            "👍 ",
            "👍\n",
            "\u{200D}",
            "\u{FE0F}",
            "<script>",
            "👍a",
            "\u{202E}👍",
            &"👍".repeat(17),
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}
