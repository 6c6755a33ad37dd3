//! The HTTP surface as data: a path maps to one `Route`; the shell then matches the method.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    DevToken,
    ConnectTicket,
    Connect,
    Conversations,
    Conversation(String),
    ConversationLeave(String),
    ConversationMembers(String),
    /// `/v1/conversations/{id}/members/{userId}`: removing a member.
    ConversationMember(String, String),
    ConversationMessages(String),
    ConversationSocket(String),
    ConversationMarkRead(String),
    ConversationPublish(String),
    ConversationPresence(String),
    ConversationTyping(String),
    ConversationTypingStop(String),
    ConversationLive(String),
    /// `GET /v1/conversations/{id}/bot-status`: the conversation's bot's current status, for members.
    ConversationBotStatus(String),
    /// `/v1/conversations/{id}/bridges`: rooms of other platforms linked to the conversation.
    ConversationBridges(String),
    /// `/v1/conversations/{id}/bridges/{bridgeId}`.
    ConversationBridge(String, String),
    Messages,
    Message(String),
    MessageReactions(String),
    BotConversations(String),
    BotConversation(String, String),
    BotMessages(String, String),
    BotMessage(String, String, String),
    BotProfile(String),
    BotStatus(String),
    /// `/bot/v1/sandboxes/{sandboxId}/users`: who may use the sandbox, set by its bot.
    BotSandboxUsers(String),
    /// `/operator/v1/sandboxes/{sandboxId}/users`: the same, set by the operator (`OPERATOR_SECRET`).
    OperatorSandboxUsers(String),
    /// Served by the notifications worker; the chat worker forwards these unchanged.
    Notifications,
    /// `GET /app/{key}`: a Pusher protocol-7 socket.
    PusherSocket(String),
    /// `/apps/{appId}/...`: Pusher's signed HTTP API (routed further by `switchboard_pusher::http_api`).
    PusherApi,
    /// `POST /pusher/auth`: channel authorization for our users.
    PusherAuth,
    /// `POST /pusher/user-auth`: user authentication (`pusher:signin`) for our users.
    PusherUserAuth,
    /// `POST /dev/pusher/reconnect` (local mode only): closes every Pusher socket with 4200.
    DevPusherReconnect,
}

/// Every `(path template, method)` the chat worker answers: the `(route, method)` match of
/// `src/api/mod.rs`, with the routes it hands on whole (`Route::Notifications`: the notifications
/// worker's methods; `Route::PusherApi`: `switchboard_pusher::http_api::route`'s) spelled out.
/// `docs/openapi.yaml` describes exactly these (`packages/core/tests/openapi.rs` checks both ways, and
/// that this table agrees with the router's match); parameters are written `{name}` as in OpenAPI.
pub const ROUTES: &[(&str, &str)] = &[
    ("/health", "GET"),
    ("/dev/token", "POST"),
    ("/connect-ticket", "POST"),
    ("/connect", "GET"),
    ("/v1/conversations", "GET"),
    ("/v1/conversations", "POST"),
    ("/v1/conversations/{conversationId}", "GET"),
    ("/v1/conversations/{conversationId}", "PATCH"),
    ("/v1/conversations/{conversationId}/leave", "POST"),
    ("/v1/conversations/{conversationId}/members", "POST"),
    ("/v1/conversations/{conversationId}/members/{userId}", "DELETE"),
    ("/v1/conversations/{conversationId}/messages", "GET"),
    ("/v1/conversations/{conversationId}/ws", "GET"),
    ("/v1/conversations/{conversationId}/mark-read", "POST"),
    ("/v1/conversations/{conversationId}/publish", "POST"),
    ("/v1/conversations/{conversationId}/presence", "GET"),
    ("/v1/conversations/{conversationId}/typing", "POST"),
    ("/v1/conversations/{conversationId}/typing/stop", "POST"),
    ("/v1/conversations/{conversationId}/live", "GET"),
    ("/v1/conversations/{conversationId}/bot-status", "GET"),
    ("/v1/conversations/{conversationId}/bridges", "GET"),
    ("/v1/conversations/{conversationId}/bridges", "POST"),
    ("/v1/conversations/{conversationId}/bridges/{bridgeId}", "DELETE"),
    ("/v1/messages", "POST"),
    ("/v1/messages/{messageId}", "PATCH"),
    ("/v1/messages/{messageId}", "DELETE"),
    ("/v1/messages/{messageId}/reactions", "POST"),
    ("/v1/messages/{messageId}/reactions", "DELETE"),
    ("/bot/v1/sandboxes/{sandboxId}/conversations", "GET"),
    ("/bot/v1/sandboxes/{sandboxId}/conversations/{conversationId}", "GET"),
    ("/bot/v1/sandboxes/{sandboxId}/conversations/{conversationId}/messages", "GET"),
    ("/bot/v1/sandboxes/{sandboxId}/conversations/{conversationId}/messages", "POST"),
    ("/bot/v1/sandboxes/{sandboxId}/conversations/{conversationId}/messages/{messageId}", "PATCH"),
    ("/bot/v1/sandboxes/{sandboxId}/conversations/{conversationId}/messages/{messageId}", "DELETE"),
    ("/bot/v1/sandboxes/{sandboxId}/profile", "GET"),
    ("/bot/v1/sandboxes/{sandboxId}/profile", "PUT"),
    ("/bot/v1/sandboxes/{sandboxId}/bot-status", "GET"),
    ("/bot/v1/sandboxes/{sandboxId}/bot-status", "POST"),
    ("/bot/v1/sandboxes/{sandboxId}/users", "PUT"),
    ("/operator/v1/sandboxes/{sandboxId}/users", "PUT"),
    ("/app/{key}", "GET"),
    ("/apps/{appId}/events", "POST"),
    ("/apps/{appId}/batch_events", "POST"),
    ("/apps/{appId}/channels", "GET"),
    ("/apps/{appId}/channels/{channelName}", "GET"),
    ("/apps/{appId}/channels/{channelName}/users", "GET"),
    ("/pusher/auth", "POST"),
    ("/pusher/user-auth", "POST"),
    ("/dev/pusher/reconnect", "POST"),
    ("/v1/push-tokens", "POST"),
    ("/v1/push-tokens", "DELETE"),
    ("/v1/notification-preferences", "GET"),
    ("/v1/notification-preferences", "PUT"),
    ("/v1/badges", "GET"),
    ("/v1/badges/mark-read", "POST"),
];

/// Every `(path template, method)` the notifications worker answers itself
/// (`services/notifications/src/api.rs`): the routes the chat worker forwards to it, its own
/// `/health`, and its local-mode `/dev/...` routes (reachable only when it is the primary worker).
pub const NOTIFICATIONS_ROUTES: &[(&str, &str)] = &[
    ("/health", "GET"),
    ("/v1/push-tokens", "POST"),
    ("/v1/push-tokens", "DELETE"),
    ("/v1/notification-preferences", "GET"),
    ("/v1/notification-preferences", "PUT"),
    ("/v1/badges", "GET"),
    ("/v1/badges/mark-read", "POST"),
    ("/dev/rpc/sendPushForConversation", "POST"),
    ("/dev/rpc/clearBadgeBucketForUser", "POST"),
    ("/dev/ledger", "GET"),
];

/// A concrete path for a template: every `{param}` replaced by a sample value that passes the
/// router's checks (ULIDs for ids, a presence channel name for Pusher's `users`).
pub fn sample_path(template: &str) -> String {
    template
        .split('/')
        .map(|seg| match seg {
            "{conversationId}" => "01HZZZZZZZZZZZZZZZZZZZZZZZ",
            "{messageId}" | "{bridgeId}" => "01HYYYYYYYYYYYYYYYYYYYYYYY",
            "{sandboxId}" => "sb1",
            "{userId}" => "someone",
            "{key}" => "switchboard-key",
            "{appId}" => "switchboard",
            "{channelName}" => "presence-room",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl Route {
    pub fn parse(path: &str) -> Option<Route> {
        let trimmed = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
        if segs.iter().any(|s| s.is_empty()) {
            return None;
        }
        let s = |x: &str| x.to_string();
        Some(match segs.as_slice() {
            ["health"] => Route::Health,
            ["dev", "token"] => Route::DevToken,
            ["connect-ticket"] => Route::ConnectTicket,
            ["connect"] => Route::Connect,
            ["v1", "conversations"] => Route::Conversations,
            ["v1", "conversations", id] => Route::Conversation(s(id)),
            ["v1", "conversations", id, "leave"] => Route::ConversationLeave(s(id)),
            ["v1", "conversations", id, "members"] => Route::ConversationMembers(s(id)),
            ["v1", "conversations", id, "members", u] => Route::ConversationMember(s(id), s(u)),
            ["v1", "conversations", id, "messages"] => Route::ConversationMessages(s(id)),
            ["v1", "conversations", id, "ws"] => Route::ConversationSocket(s(id)),
            ["v1", "conversations", id, "mark-read"] => Route::ConversationMarkRead(s(id)),
            ["v1", "conversations", id, "publish"] => Route::ConversationPublish(s(id)),
            ["v1", "conversations", id, "presence"] => Route::ConversationPresence(s(id)),
            ["v1", "conversations", id, "typing"] => Route::ConversationTyping(s(id)),
            ["v1", "conversations", id, "typing", "stop"] => Route::ConversationTypingStop(s(id)),
            ["v1", "conversations", id, "live"] => Route::ConversationLive(s(id)),
            ["v1", "conversations", id, "bot-status"] => Route::ConversationBotStatus(s(id)),
            ["v1", "conversations", id, "bridges"] => Route::ConversationBridges(s(id)),
            ["v1", "conversations", id, "bridges", b] => Route::ConversationBridge(s(id), s(b)),
            ["v1", "messages"] => Route::Messages,
            ["v1", "messages", id] => Route::Message(s(id)),
            ["v1", "messages", id, "reactions"] => Route::MessageReactions(s(id)),
            ["bot", "v1", "sandboxes", sb, "conversations"] => Route::BotConversations(s(sb)),
            ["bot", "v1", "sandboxes", sb, "conversations", c] => Route::BotConversation(s(sb), s(c)),
            ["bot", "v1", "sandboxes", sb, "conversations", c, "messages"] => Route::BotMessages(s(sb), s(c)),
            ["bot", "v1", "sandboxes", sb, "conversations", c, "messages", m] => Route::BotMessage(s(sb), s(c), s(m)),
            ["bot", "v1", "sandboxes", sb, "profile"] => Route::BotProfile(s(sb)),
            ["bot", "v1", "sandboxes", sb, "bot-status"] => Route::BotStatus(s(sb)),
            ["bot", "v1", "sandboxes", sb, "users"] => Route::BotSandboxUsers(s(sb)),
            ["operator", "v1", "sandboxes", sb, "users"] => Route::OperatorSandboxUsers(s(sb)),
            ["app", key] => Route::PusherSocket(s(key)),
            ["apps", _, ..] => Route::PusherApi,
            ["pusher", "auth"] => Route::PusherAuth,
            ["pusher", "user-auth"] => Route::PusherUserAuth,
            ["dev", "pusher", "reconnect"] => Route::DevPusherReconnect,
            ["v1", "push-tokens"]
            | ["v1", "notification-preferences"]
            | ["v1", "badges"]
            | ["v1", "badges", "mark-read"] => Route::Notifications,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_route() {
        assert_eq!(Route::parse("/v1/conversations"), Some(Route::Conversations));
        assert_eq!(Route::parse("/v1/conversations/"), Some(Route::Conversations));
        assert_eq!(Route::parse("/v1/conversations/X/ws"), Some(Route::ConversationSocket("X".into())));
        assert_eq!(Route::parse("/v1/messages/M/reactions"), Some(Route::MessageReactions("M".into())));
        assert_eq!(
            Route::parse("/bot/v1/sandboxes/sb/conversations/C/messages/M"),
            Some(Route::BotMessage("sb".into(), "C".into(), "M".into()))
        );
        assert_eq!(Route::parse("/bot/v1/sandboxes/sb/profile"), Some(Route::BotProfile("sb".into())));
        assert_eq!(Route::parse("/v1/conversations/C/mark-read"), Some(Route::ConversationMarkRead("C".into())));
        assert_eq!(Route::parse("/v1/conversations/C/publish"), Some(Route::ConversationPublish("C".into())));
        assert_eq!(Route::parse("/connect"), Some(Route::Connect));
        assert_eq!(Route::parse("/v1/conversations/C/typing/stop"), Some(Route::ConversationTypingStop("C".into())));
        assert_eq!(Route::parse("/v1/conversations/C/presence"), Some(Route::ConversationPresence("C".into())));
        assert_eq!(Route::parse("/v1/conversations/C/live"), Some(Route::ConversationLive("C".into())));
        assert_eq!(Route::parse("/v1/conversations/C/bridges"), Some(Route::ConversationBridges("C".into())));
        assert_eq!(
            Route::parse("/v1/conversations/C/bridges/B"),
            Some(Route::ConversationBridge("C".into(), "B".into()))
        );
        assert_eq!(Route::parse("/bot/v1/sandboxes/sb/bot-status"), Some(Route::BotStatus("sb".into())));
        assert_eq!(Route::parse("/bot/v1/sandboxes/sb/users"), Some(Route::BotSandboxUsers("sb".into())));
        assert_eq!(Route::parse("/operator/v1/sandboxes/sb/users"), Some(Route::OperatorSandboxUsers("sb".into())));
        assert_eq!(
            Route::parse("/v1/conversations/C/members/bob"),
            Some(Route::ConversationMember("C".into(), "bob".into()))
        );
        assert_eq!(Route::parse("/v1/conversations/C/bot-status"), Some(Route::ConversationBotStatus("C".into())));
        assert_eq!(Route::parse("/app/key1"), Some(Route::PusherSocket("key1".into())));
        assert_eq!(Route::parse("/apps/1/channels/presence-a/users"), Some(Route::PusherApi));
        assert_eq!(Route::parse("/pusher/auth"), Some(Route::PusherAuth));
        assert_eq!(Route::parse("/pusher/user-auth"), Some(Route::PusherUserAuth));
        assert_eq!(Route::parse("/dev/pusher/reconnect"), Some(Route::DevPusherReconnect));
        for p in ["/v1/push-tokens", "/v1/notification-preferences", "/v1/badges", "/v1/badges/mark-read"] {
            assert_eq!(Route::parse(p), Some(Route::Notifications), "{p}");
        }
    }

    /// The variant's name, as `Debug` spells it (`ConversationBridge("C", "B")` → `ConversationBridge`).
    fn variant(route: &Route) -> String {
        let debug = format!("{route:?}");
        debug.split('(').next().unwrap_or(&debug).to_string()
    }

    /// Every variant declared in `pub enum Route { ... }` above, read from this file's source, so a
    /// variant added there without a row in `ROUTES` fails `routes_table_covers_every_variant`.
    fn declared_variants() -> Vec<String> {
        let src = include_str!("routes.rs");
        let start = src.find("pub enum Route {").expect("the enum") + "pub enum Route {".len();
        let body = &src[start..start + src[start..].find("\n}").expect("the enum's end")];
        body.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
            .map(|l| l.split(['(', ',']).next().unwrap_or(l).trim().to_string())
            .collect()
    }

    #[test]
    fn every_routes_template_parses_to_a_route() {
        for (template, method) in ROUTES {
            assert!(template.starts_with('/'), "{template}");
            assert!(["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method), "{method} {template}");
            let path = sample_path(template);
            assert!(!path.contains('{'), "{template}: a parameter without a sample value");
            assert!(Route::parse(&path).is_some(), "{method} {template} ({path}) does not parse to a Route");
        }
        let mut rows = std::collections::HashSet::new();
        for pair in ROUTES {
            assert!(rows.insert(pair), "{pair:?} is listed twice");
        }
        // What the chat worker forwards is what the notifications worker answers under /v1/.
        let forwarded: Vec<_> =
            ROUTES.iter().filter(|(t, _)| Route::parse(&sample_path(t)) == Some(Route::Notifications)).collect();
        let served: Vec<_> = NOTIFICATIONS_ROUTES.iter().filter(|(t, _)| t.starts_with("/v1/")).collect();
        assert_eq!(forwarded, served);
        for (t, _) in NOTIFICATIONS_ROUTES.iter().filter(|(t, _)| t.starts_with("/dev/")) {
            assert_eq!(Route::parse(t), None, "{t}: the chat worker does not forward /dev/ routes");
        }
    }

    #[test]
    fn routes_table_covers_every_variant() {
        let declared = declared_variants();
        assert!(declared.len() >= 30 && declared.contains(&"BotMessage".to_string()), "{declared:?}");
        let listed: std::collections::BTreeSet<String> =
            ROUTES.iter().filter_map(|(t, _)| Route::parse(&sample_path(t))).map(|r| variant(&r)).collect();
        for v in &declared {
            assert!(listed.contains(v), "Route::{v} has no row in ROUTES (nor in docs/openapi.yaml)");
        }
        assert_eq!(listed.len(), declared.len(), "{listed:?} vs {declared:?}");
    }

    #[test]
    fn rejects_unknown_and_empty_segments() {
        for p in ["/", "", "/v1", "/v1/conversations//messages", "/v2/conversations", "/v1/conversations/X/nope"] {
            assert_eq!(Route::parse(p), None, "{p}");
        }
    }
}
