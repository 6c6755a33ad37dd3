//! One request, several Expo projects. Expo refuses a whole request whose tokens belong to more
//! than one project (`400 {"errors":[{"code":"PUSH_TOO_MANY_EXPERIENCE_IDS","details":{"@owner/app":
//! ["ExponentPushToken[...]", ...], ...}}]}`), so one member's token from another project (an Expo
//! Go or development build: its format is valid) would fail every recipient sent with it, retried
//! and dead-lettered together. The refusal names each project's tokens: the request is sent again
//! as one request per project ([`project_groups`]), and the other recipients get their pushes.

use crate::expo::PushMessage;
use serde_json::Value;

/// The error code of a request mixing projects.
pub const MIXED_PROJECTS: &str = "PUSH_TOO_MANY_EXPERIENCE_IDS";

/// When `body` (Expo's refusal of the request that carried `messages`) says it mixed projects: the
/// messages' indices grouped by project (each group in the messages' order); a message whose token the refusal does not name
/// goes in a group of its own kind (those left). `None` for any other answer, or when there would
/// be only one group (sending it again would fail the same way).
pub fn project_groups(body: &str, messages: &[PushMessage]) -> Option<Vec<Vec<usize>>> {
    let v: Value = serde_json::from_str(body).ok()?;
    let details = v
        .get("errors")?
        .as_array()?
        .iter()
        .find(|e| e.get("code").and_then(Value::as_str) == Some(MIXED_PROJECTS))?
        .get("details")?
        .as_object()?;
    let project_of = |token: &str| {
        details
            .values()
            .position(|tokens| tokens.as_array().is_some_and(|list| list.iter().any(|t| t.as_str() == Some(token))))
    };
    // One group per project (by name), then the messages it did not name.
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); details.len() + 1];
    for (i, m) in messages.iter().enumerate() {
        let g = project_of(&m.to).unwrap_or(details.len());
        groups[g].push(i);
    }
    groups.retain(|g| !g.is_empty());
    (groups.len() > 1).then_some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expo::PushData;

    fn msg(to: &str) -> PushMessage {
        PushMessage::new(to, "t", "b", &PushData::chat_message("sb", "c", "m"), 1)
    }

    #[test]
    fn a_request_mixing_projects_is_split_by_project() {
        let messages = [
            msg("ExponentPushToken[a]"),
            msg("ExponentPushToken[eve]"),
            msg("ExponentPushToken[b]"),
            msg("ExponentPushToken[new]"),
        ];
        let body = r#"{"errors":[{"code":"PUSH_TOO_MANY_EXPERIENCE_IDS","message":"All push tokens must be for the same project",
            "details":{"@us/chat":["ExponentPushToken[a]","ExponentPushToken[b]"],"@eve/other":["ExponentPushToken[eve]"]}}]}"#;
        assert_eq!(
            project_groups(body, &messages),
            Some(vec![vec![1], vec![0, 2], vec![3]]),
            "by project name, then the rest"
        );
    }

    #[test]
    fn any_other_refusal_or_one_project_is_not_split() {
        let messages = [msg("ExponentPushToken[a]"), msg("ExponentPushToken[b]")];
        for body in [
            r#"{"errors":[{"code":"VALIDATION_ERROR","message":"bad"}]}"#,
            r#"{"errors":[{"code":"PUSH_TOO_MANY_EXPERIENCE_IDS"}]}"#,
            r#"{"errors":[{"code":"PUSH_TOO_MANY_EXPERIENCE_IDS","details":{"@us/chat":["ExponentPushToken[a]","ExponentPushToken[b]"]}}]}"#,
            "<html>",
            "",
        ] {
            assert_eq!(project_groups(body, &messages), None, "{body}");
        }
    }
}
