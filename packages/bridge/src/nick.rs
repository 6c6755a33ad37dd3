//! `nickFormat`: how a Switchboard message is written into a platform that shows one bot user for everyone we relay.
//!
//! The format is a bridge setting, so it is validated once, when it is set: 1..=`MAX_NICK_FORMAT_CHARS` characters
//! without control characters, `{text}` exactly once, `{name}` at most once, and no other `{` (there is no escape:
//! a format with a literal brace is refused rather than guessed at). Rendering never fails: the name is cleaned and
//! cut to `MAX_NICK_NAME_CHARS`, and the text is cut (ending with `…`) so the whole body fits the platform's limit.

use crate::lenient::{cut, cut_with_ellipsis};
use crate::limits::{MAX_NICK_FORMAT_CHARS, MAX_NICK_NAME_CHARS};
use std::fmt;

/// matterbridge's convention: `<alice> hello`.
pub const DEFAULT_NICK_FORMAT: &str = "<{name}> {text}";
const NAME: &str = "{name}";
const TEXT: &str = "{text}";
/// Written for a sender whose name is empty after cleaning.
const NO_NAME: &str = "?";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Name,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NickFormat {
    raw: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NickFormatError {
    /// Empty or longer than `MAX_NICK_FORMAT_CHARS`.
    Length {
        max: usize,
    },
    ControlCharacter,
    /// `{text}` is missing.
    NoText,
    /// `{text}` or `{name}` appears twice.
    Repeated(&'static str),
    /// A `{` that does not open `{name}` or `{text}`, at this character offset.
    UnknownPlaceholder {
        at: usize,
    },
}

impl fmt::Display for NickFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NickFormatError::Length { max } => write!(f, "nickFormat: must be 1..{max} characters"),
            NickFormatError::ControlCharacter => write!(f, "nickFormat: must not contain control characters"),
            NickFormatError::NoText => write!(f, "nickFormat: must contain {{text}}"),
            NickFormatError::Repeated(p) => write!(f, "nickFormat: {p} may appear only once"),
            NickFormatError::UnknownPlaceholder { at } => {
                write!(f, "nickFormat: character {at}: only {{name}} and {{text}} may be written in braces")
            }
        }
    }
}

impl std::error::Error for NickFormatError {}

impl Default for NickFormat {
    fn default() -> Self {
        NickFormat {
            raw: DEFAULT_NICK_FORMAT.to_string(),
            parts: vec![Part::Literal("<".into()), Part::Name, Part::Literal("> ".into()), Part::Text],
        }
    }
}

impl NickFormat {
    pub fn parse(s: &str) -> Result<Self, NickFormatError> {
        let n = s.chars().count();
        if n == 0 || n > MAX_NICK_FORMAT_CHARS {
            return Err(NickFormatError::Length { max: MAX_NICK_FORMAT_CHARS });
        }
        if s.chars().any(char::is_control) {
            return Err(NickFormatError::ControlCharacter);
        }
        let mut parts = Vec::new();
        let mut rest = s;
        let (mut names, mut texts) = (0, 0);
        while let Some(i) = rest.find('{') {
            if i > 0 {
                parts.push(Part::Literal(rest[..i].to_string()));
            }
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix(NAME) {
                names += 1;
                parts.push(Part::Name);
                rest = after;
            } else if let Some(after) = tail.strip_prefix(TEXT) {
                texts += 1;
                parts.push(Part::Text);
                rest = after;
            } else {
                let at = s.chars().count() - tail.chars().count();
                return Err(NickFormatError::UnknownPlaceholder { at });
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        match (names, texts) {
            (_, 0) => Err(NickFormatError::NoText),
            (_, 2..) => Err(NickFormatError::Repeated(TEXT)),
            (2.., _) => Err(NickFormatError::Repeated(NAME)),
            _ => Ok(NickFormat { raw: s.to_string(), parts }),
        }
    }

    /// The format as written (to store it).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The body for `name` saying `text`, at most `max_chars` characters (the text is cut first).
    pub fn render(&self, name: &str, text: &str, max_chars: usize) -> String {
        let clean: String = name.chars().filter(|c| !c.is_control()).collect();
        let name = cut(clean.trim(), MAX_NICK_NAME_CHARS);
        let name = if name.is_empty() { NO_NAME.to_string() } else { name };
        let fixed: usize = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l.chars().count(),
                Part::Name => name.chars().count(),
                Part::Text => 0,
            })
            .sum();
        let text = cut_with_ellipsis(text.trim(), max_chars.saturating_sub(fixed));
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(l) => out.push_str(l),
                Part::Name => out.push_str(&name),
                Part::Text => out.push_str(&text),
            }
        }
        // Only a limit smaller than the format itself gets here; the body is then cut bluntly.
        cut(&out, max_chars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_renders_like_matterbridge() {
        let f = NickFormat::default();
        assert_eq!(f, NickFormat::parse(DEFAULT_NICK_FORMAT).unwrap());
        assert_eq!(f.render("alice", " hello ", 100), "<alice> hello");
        assert_eq!(f.render("a\nb", "x", 100), "<ab> x");
        assert_eq!(f.render("  ", "x", 100), "<?> x");
        assert_eq!(f.render(&"n".repeat(40), "x", 100), format!("<{}> x", "n".repeat(MAX_NICK_NAME_CHARS)));
    }

    #[test]
    fn other_formats() {
        assert_eq!(NickFormat::parse("{text}").unwrap().render("alice", "hi", 100), "hi");
        assert_eq!(NickFormat::parse("[{name}]: {text} }").unwrap().render("bo", "hi", 100), "[bo]: hi }");
        assert_eq!(NickFormat::parse("{text} — {name}").unwrap().render("bo", "hi", 100), "hi — bo");
    }

    #[test]
    fn text_is_cut_to_fit_the_limit() {
        let f = NickFormat::default();
        let body = f.render("alice", &"x".repeat(50), 20);
        assert_eq!(body, format!("<alice> {}…", "x".repeat(11)));
        assert_eq!(body.chars().count(), 20);
        assert_eq!(f.render("alice", "x", 3), "<al");
    }

    #[test]
    fn bad_formats_are_refused_with_the_reason() {
        assert_eq!(NickFormat::parse(""), Err(NickFormatError::Length { max: MAX_NICK_FORMAT_CHARS }));
        let long = format!("{}{{text}}", "a".repeat(MAX_NICK_FORMAT_CHARS));
        assert_eq!(NickFormat::parse(&long), Err(NickFormatError::Length { max: MAX_NICK_FORMAT_CHARS }));
        assert_eq!(NickFormat::parse("<{name}>"), Err(NickFormatError::NoText));
        assert_eq!(NickFormat::parse("{text}{text}"), Err(NickFormatError::Repeated("{text}")));
        assert_eq!(NickFormat::parse("{name}{name}{text}"), Err(NickFormatError::Repeated("{name}")));
        assert_eq!(NickFormat::parse("é{nick} {text}"), Err(NickFormatError::UnknownPlaceholder { at: 1 }));
        assert_eq!(NickFormat::parse("{text}{"), Err(NickFormatError::UnknownPlaceholder { at: 6 }));
        assert_eq!(NickFormat::parse("{name}\n{text}"), Err(NickFormatError::ControlCharacter));
        let at_limit = format!("{}{{text}}", "a".repeat(MAX_NICK_FORMAT_CHARS - 6));
        assert!(NickFormat::parse(&at_limit).is_ok());
    }

    proptest! {
        #[test]
        fn a_rendered_body_never_exceeds_the_limit(name in "\\PC{0,60}", text in "\\PC{0,300}", max in 0usize..200) {
            prop_assert!(NickFormat::default().render(&name, &text, max).chars().count() <= max);
        }

        #[test]
        fn parsing_never_panics(s in "[{}a-z ]{0,40}") {
            let _ = NickFormat::parse(&s);
        }
    }
}
