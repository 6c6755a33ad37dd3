//! Notification preferences per user: chat pushes on or off (on by default) and the preview mode,
//! `generic` (no message text; the default) or `full`.

use serde::{Deserialize, Serialize};
use switchboard_core::requests::parse_body;
use switchboard_core::ApiError;

/// The body a push shows when the preview is `generic` or the message has no text.
pub const GENERIC_BODY: &str = "New message";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preview {
    #[default]
    Generic,
    Full,
}

impl Preview {
    pub fn as_str(self) -> &'static str {
        match self {
            Preview::Generic => "generic",
            Preview::Full => "full",
        }
    }

    /// Reads a stored value; anything unknown reads as the safe default, `generic`.
    pub fn from_stored(s: &str) -> Preview {
        match s {
            "full" => Preview::Full,
            _ => Preview::Generic,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub chat_messages_enabled: bool,
    pub preview: Preview,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences { chat_messages_enabled: true, preview: Preview::Generic }
    }
}

/// `PUT /v1/notification-preferences`: each field optional; a missing field keeps its value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PreferencesUpdate {
    pub chat_messages_enabled: Option<bool>,
    pub preview: Option<Preview>,
}

impl PreferencesUpdate {
    pub fn parse(body: &[u8]) -> Result<PreferencesUpdate, ApiError> {
        parse_body(body)
    }
}

impl Preferences {
    pub fn apply(self, update: &PreferencesUpdate) -> Preferences {
        Preferences {
            chat_messages_enabled: update.chat_messages_enabled.unwrap_or(self.chat_messages_enabled),
            preview: update.preview.unwrap_or(self.preview),
        }
    }

    /// The push body for a message's text under these preferences.
    pub fn body_for(&self, text: &str) -> String {
        match self.preview {
            Preview::Full => {
                let preview = switchboard_notify_contract::body_preview(text.trim());
                if preview.trim().is_empty() {
                    GENERIC_BODY.to_string()
                } else {
                    preview
                }
            }
            Preview::Generic => GENERIC_BODY.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_on_and_generic() {
        let p = Preferences::default();
        assert!(p.chat_messages_enabled);
        assert_eq!(p.preview, Preview::Generic);
        let v = serde_json::to_value(p).unwrap();
        assert_eq!(v, serde_json::json!({"chatMessagesEnabled": true, "preview": "generic"}));
    }

    #[test]
    fn updates_merge() {
        let u = PreferencesUpdate::parse(br#"{"preview":"full"}"#).unwrap();
        let p = Preferences::default().apply(&u);
        assert_eq!(p, Preferences { chat_messages_enabled: true, preview: Preview::Full });
        let u = PreferencesUpdate::parse(br#"{"chatMessagesEnabled":false,"preview":"generic"}"#).unwrap();
        assert_eq!(p.apply(&u), Preferences { chat_messages_enabled: false, preview: Preview::Generic });
    }

    #[test]
    fn bad_bodies() {
        assert_eq!(PreferencesUpdate::parse(b"nope").unwrap_err().code.as_str(), "invalid_json");
        assert_eq!(PreferencesUpdate::parse(b"[]").unwrap_err().code.as_str(), "invalid_json");
        for bad in [r#"{"preview":"loud"}"#, r#"{"chatMessagesEnabled":"yes"}"#, r#"{"other":1}"#] {
            assert_eq!(PreferencesUpdate::parse(bad.as_bytes()).unwrap_err().code.as_str(), "invalid_request", "{bad}");
        }
    }

    #[test]
    fn bodies() {
        let full = Preferences { chat_messages_enabled: true, preview: Preview::Full };
        assert_eq!(full.body_for("hello"), "hello");
        assert_eq!(full.body_for("   "), GENERIC_BODY);
        assert_eq!(full.body_for(&"ü".repeat(300)).chars().count(), 200);
        assert_eq!(Preferences::default().body_for("secret"), GENERIC_BODY);
        assert_eq!(Preview::from_stored("full"), Preview::Full);
        assert_eq!(Preview::from_stored("weird"), Preview::Generic);
    }
}
