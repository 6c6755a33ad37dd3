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

    #[test]
    fn rejects_unknown_and_empty_segments() {
        for p in ["/", "", "/v1", "/v1/conversations//messages", "/v2/conversations", "/v1/conversations/X/nope"] {
            assert_eq!(Route::parse(p), None, "{p}");
        }
    }
}
