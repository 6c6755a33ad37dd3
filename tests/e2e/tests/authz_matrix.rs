//! The authorization matrix (issue #17, docs/security.md): every HTTP route of
//! `switchboard_core::routes::ROUTES` and every socket, for every kind of caller, against ONE table
//! of expected answers ([`TABLE`]). The test fails when a route of `ROUTES` has no row (or a row
//! names no route), and reports every cell that differs at once.
//!
//! One production-mode server (`LOCAL_MODE=false`, an `OPERATOR_SECRET`; tokens minted with the
//! test secret as an auth service would), one shared fixture for the rows that change nothing, and
//! a fresh fixture per cell for the rows that change what they touch (leaving, removing, deleting,
//! adding, linking), so every cell's answer is independent of the order the requests run in. The
//! requests run concurrently.

use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use switchboard_core::routes::ROUTES;
use switchboard_e2e::*;

const OPERATOR_SECRET: &str = "an-operator-secret-for-the-matrix";

/// The callers, in the order of each row's expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    NoToken,
    Expired,
    Forged,
    WrongAudience,
    /// Another member of the conversation: not its owner, not the sender of the message.
    AnotherUser,
    NonMember,
    /// Was a member; the owner removed them.
    RemovedMember,
    /// The owner (creator) of the conversation and sender of the message.
    Member,
    BotOfThisSandbox,
    BotOfAnotherSandbox,
    /// `Authorization: Bearer <OPERATOR_SECRET>`.
    Operator,
}

const CALLERS: [Caller; 11] = [
    Caller::NoToken,
    Caller::Expired,
    Caller::Forged,
    Caller::WrongAudience,
    Caller::AnotherUser,
    Caller::NonMember,
    Caller::RemovedMember,
    Caller::Member,
    Caller::BotOfThisSandbox,
    Caller::BotOfAnotherSandbox,
    Caller::Operator,
];

/// What a cell expects: an HTTP status; for sockets 101 (accepted and kept open) or a close code
/// (accepted, then closed with it).
type Expect = [u16; 11];

/// Whether a row changes what it touches: then each cell gets a fresh fixture.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Shared,
    Fresh,
}
use Kind::{Fresh, Shared};

/// The body of a request, built from the fixture.
type Body = fn(&Fixture) -> Option<Value>;

fn none(_: &Fixture) -> Option<Value> {
    None
}

struct Row {
    method: &'static str,
    template: &'static str,
    body: Body,
    kind: Kind,
    expect: Expect,
}

const fn row(method: &'static str, template: &'static str, body: Body, kind: Kind, expect: Expect) -> Row {
    Row { method, template, body, kind, expect }
}

// Shorthands for the common shapes of a row (callers in `CALLERS` order):
//                        none exp  forg aud  other non  rem  mem  bot  obot op
/// Any member of the conversation (people and its bot).
const MEMBERS: Expect = [401, 401, 401, 401, 200, 403, 403, 200, 200, 403, 401];
/// Any authenticated person or bot, whoever they are.
const ANYONE: Expect = [401, 401, 401, 401, 200, 200, 200, 200, 200, 200, 401];
/// People only (bots 403).
const PEOPLE: Expect = [401, 401, 401, 401, 200, 200, 200, 200, 403, 403, 401];
/// The sandbox's own bot only.
const OWN_BOT: Expect = [401, 401, 401, 401, 403, 403, 403, 403, 200, 403, 401];
/// Nobody: the route does not exist in production.
const ABSENT: Expect = [404; 11];
/// Everyone the same: the route takes no bearer token.
const fn all(s: u16) -> Expect {
    [s; 11]
}
/// `MEMBERS` with another success status.
const fn members(s: u16) -> Expect {
    [401, 401, 401, 401, s, 403, 403, s, s, 403, 401]
}

const TABLE: &[Row] = &[
    row("GET", "/health", none, Shared, all(200)),
    row("POST", "/dev/token", |_| Some(json!({"userId": "x"})), Shared, ABSENT),
    row("POST", "/connect-ticket", none, Shared, ANYONE),
    row("GET", "/connect", none, Shared, [401, 401, 401, 401, 101, 101, 101, 101, 101, 101, 401]),
    row("GET", "/v1/conversations", none, Shared, PEOPLE),
    // Only users the sandbox allows (its list names the member alone) create conversations with it.
    row(
        "POST",
        "/v1/conversations",
        |f| Some(json!({"sandboxId": f.sandbox})),
        Shared,
        [401, 401, 401, 401, 403, 403, 403, 201, 403, 403, 401],
    ),
    row("GET", "/v1/conversations/{conversationId}", none, Shared, MEMBERS),
    // People rename; the bot does not.
    row(
        "PATCH",
        "/v1/conversations/{conversationId}",
        |_| Some(json!({"title": "matrix"})),
        Shared,
        [401, 401, 401, 401, 200, 403, 403, 200, 403, 403, 401],
    ),
    row(
        "POST",
        "/v1/conversations/{conversationId}/leave",
        none,
        Fresh,
        [401, 401, 401, 401, 204, 403, 403, 204, 403, 403, 401],
    ),
    // People add; the bot does not.
    row(
        "POST",
        "/v1/conversations/{conversationId}/members",
        |_| Some(json!({"userId": "matrix-newcomer"})),
        Fresh,
        [401, 401, 401, 401, 201, 403, 403, 201, 403, 403, 401],
    ),
    // The owner removes another member; anyone else: 403 (the target is a fourth member).
    row(
        "DELETE",
        "/v1/conversations/{conversationId}/members/{userId}",
        none,
        Fresh,
        [401, 401, 401, 401, 403, 403, 403, 204, 403, 403, 401],
    ),
    row("GET", "/v1/conversations/{conversationId}/messages", none, Shared, MEMBERS),
    row("GET", "/v1/conversations/{conversationId}/ws", none, Shared, members(101)),
    row(
        "POST",
        "/v1/conversations/{conversationId}/mark-read",
        |f| Some(json!({"lastSeenMessageId": f.message})),
        Shared,
        MEMBERS,
    ),
    // Only the conversation's bot publishes (LIVE_PUBLISHERS=bot).
    row(
        "POST",
        "/v1/conversations/{conversationId}/publish",
        |_| Some(json!({"matrix": true})),
        Shared,
        [401, 401, 401, 401, 403, 403, 403, 403, 200, 403, 401],
    ),
    row("GET", "/v1/conversations/{conversationId}/presence", none, Shared, MEMBERS),
    row("POST", "/v1/conversations/{conversationId}/typing", none, Shared, members(204)),
    row("POST", "/v1/conversations/{conversationId}/typing/stop", none, Shared, members(204)),
    // A refused subscriber is accepted and closed with 4001 (browsers read close codes).
    row(
        "GET",
        "/v1/conversations/{conversationId}/live",
        none,
        Shared,
        [401, 401, 401, 401, 101, 4001, 4001, 101, 101, 4001, 401],
    ),
    row("GET", "/v1/conversations/{conversationId}/bot-status", none, Shared, MEMBERS),
    row("GET", "/v1/conversations/{conversationId}/bridges", none, Shared, MEMBERS),
    row(
        "POST",
        "/v1/conversations/{conversationId}/bridges",
        |_| Some(json!({"platform": "kick", "chatroomId": 4242})),
        Fresh,
        members(201),
    ),
    // No such bridge: members are told so, others are refused first.
    row("DELETE", "/v1/conversations/{conversationId}/bridges/{bridgeId}", none, Shared, members(404)),
    row(
        "POST",
        "/v1/messages",
        |f| Some(json!({"conversationId": f.conversation, "content": [{"type": "text", "text": "m"}]})),
        Shared,
        members(201),
    ),
    // Only the sender edits and deletes.
    row(
        "PATCH",
        "/v1/messages/{messageId}",
        |f| {
            Some(
                json!({"conversationId": f.conversation, "content": [{"type": "text", "text": "e"}], "timestamp": now_ms()}),
            )
        },
        Shared,
        [401, 401, 401, 401, 403, 403, 403, 200, 403, 403, 401],
    ),
    row(
        "DELETE",
        "/v1/messages/{messageId}?conversationId={conversationId}",
        none,
        Fresh,
        [401, 401, 401, 401, 403, 403, 403, 204, 403, 403, 401],
    ),
    row(
        "POST",
        "/v1/messages/{messageId}/reactions",
        |f| Some(json!({"conversationId": f.conversation, "emoji": "👍"})),
        Shared,
        members(201),
    ),
    row(
        "DELETE",
        "/v1/messages/{messageId}/reactions?conversationId={conversationId}&emoji=%F0%9F%91%8E",
        none,
        Shared,
        MEMBERS,
    ),
    row("GET", "/bot/v1/sandboxes/{sandboxId}/conversations", none, Shared, OWN_BOT),
    row("GET", "/bot/v1/sandboxes/{sandboxId}/conversations/{conversationId}", none, Shared, OWN_BOT),
    row("GET", "/bot/v1/sandboxes/{sandboxId}/conversations/{conversationId}/messages", none, Shared, OWN_BOT),
    row(
        "POST",
        "/bot/v1/sandboxes/{sandboxId}/conversations/{conversationId}/messages",
        |_| Some(json!({"content": [{"type": "text", "text": "b"}]})),
        Shared,
        [401, 401, 401, 401, 403, 403, 403, 403, 201, 403, 401],
    ),
    // {messageId} on the bot's routes is the bot's own message.
    row(
        "PATCH",
        "/bot/v1/sandboxes/{sandboxId}/conversations/{conversationId}/messages/{messageId}",
        |_| Some(json!({"content": [{"type": "text", "text": "be"}], "timestamp": now_ms()})),
        Shared,
        OWN_BOT,
    ),
    row(
        "DELETE",
        "/bot/v1/sandboxes/{sandboxId}/conversations/{conversationId}/messages/{messageId}",
        none,
        Fresh,
        [401, 401, 401, 401, 403, 403, 403, 403, 204, 403, 401],
    ),
    row("GET", "/bot/v1/sandboxes/{sandboxId}/profile", none, Shared, OWN_BOT),
    row("PUT", "/bot/v1/sandboxes/{sandboxId}/profile", |_| Some(json!({"label": "Matrix"})), Shared, OWN_BOT),
    row("GET", "/bot/v1/sandboxes/{sandboxId}/bot-status", none, Shared, OWN_BOT),
    row("POST", "/bot/v1/sandboxes/{sandboxId}/bot-status", |_| Some(json!({"online": true})), Shared, OWN_BOT),
    row("PUT", "/bot/v1/sandboxes/{sandboxId}/users", |f| Some(json!({"users": [f.owner]})), Shared, OWN_BOT),
    // The operator's secret, and nothing else.
    row(
        "PUT",
        "/operator/v1/sandboxes/{sandboxId}/users",
        |f| Some(json!({"users": [f.owner]})),
        Shared,
        [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 200],
    ),
    // Pusher: the socket takes no token (channels are authorized one by one); the HTTP API takes
    // the app's signature, not a bearer token.
    row("GET", "/app/{key}", none, Shared, all(101)),
    row("POST", "/apps/{appId}/events", |_| Some(json!({"name": "e", "data": "{}", "channel": "c"})), Shared, all(401)),
    row("POST", "/apps/{appId}/batch_events", |_| Some(json!({"batch": []})), Shared, all(401)),
    row("GET", "/apps/{appId}/channels", none, Shared, all(401)),
    row("GET", "/apps/{appId}/channels/{channelName}", none, Shared, all(401)),
    row("GET", "/apps/{appId}/channels/{channelName}/users", none, Shared, all(401)),
    // A conversation's private channel is signed for its members only.
    row(
        "POST",
        "/pusher/auth",
        |f| Some(json!({"socket_id": "123.456", "channel_name": format!("private-conversation-{}", f.conversation)})),
        Shared,
        MEMBERS,
    ),
    row("POST", "/pusher/user-auth", |_| Some(json!({"socket_id": "123.456"})), Shared, ANYONE),
    row("POST", "/dev/pusher/reconnect", none, Shared, ABSENT),
    // The notifications worker's routes: people only.
    row(
        "POST",
        "/v1/push-tokens",
        |_| Some(json!({"token": "ExponentPushToken[matrix]"})),
        Fresh,
        [401, 401, 401, 401, 201, 201, 201, 201, 403, 403, 401],
    ),
    row(
        "DELETE",
        "/v1/push-tokens",
        |_| Some(json!({"token": "ExponentPushToken[matrix]"})),
        Shared,
        [401, 401, 401, 401, 204, 204, 204, 204, 403, 403, 401],
    ),
    row("GET", "/v1/notification-preferences", none, Shared, PEOPLE),
    row("PUT", "/v1/notification-preferences", |_| Some(json!({"chatMessagesEnabled": true})), Shared, PEOPLE),
    row("GET", "/v1/badges", none, Shared, PEOPLE),
    row(
        "POST",
        "/v1/badges/mark-read",
        |f| Some(json!({"badgeBucket": format!("kiloclaw:{}:{}", f.sandbox, f.conversation)})),
        Shared,
        PEOPLE,
    ),
];

/// One conversation in the matrix's sandbox, seen from every caller.
#[derive(Clone)]
struct Fixture {
    sandbox: String,
    conversation: String,
    /// The owner's message; `bot_message` the bot's.
    message: String,
    bot_message: String,
    owner: String,
    /// A member the owner may remove (the `{userId}` of the removal route).
    fourth: String,
}

/// The people and tokens of the matrix.
struct Cast {
    sandbox: String,
    owner: Who,
    other: Who,
    non_member: Who,
    removed: Who,
    bot: Who,
    other_bot: Who,
    expired: String,
    forged: String,
    wrong_audience: String,
}

impl Cast {
    fn new() -> Cast {
        let sandbox = uid("sb");
        let now = now_secs();
        let user = |p: &str| {
            let id = uid(p);
            Who { token: mint_user_token(&id), id }
        };
        let bot = |sb: &str| Who {
            id: format!("bot:kiloclaw:{sb}"),
            token: sign_jwt(jwt_secret().as_bytes(), &bot_claims(sb, now, now + 1800)),
        };
        let owner = user("owner");
        let claims = |exp: i64, aud: &str| human_claims(&owner.id, Some(exp - 1800), Some(exp), aud);
        Cast {
            expired: sign_jwt(jwt_secret().as_bytes(), &claims(now - 600, AUDIENCE)),
            forged: sign_jwt(b"not-the-secret-of-this-service", &claims(now + 1800, AUDIENCE)),
            wrong_audience: sign_jwt(jwt_secret().as_bytes(), &claims(now + 1800, "another-service")),
            other: user("other"),
            non_member: user("stranger"),
            removed: user("removed"),
            bot: bot(&sandbox),
            other_bot: bot(&uid("othersb")),
            owner,
            sandbox,
        }
    }

    fn token(&self, c: Caller) -> Option<&str> {
        Some(match c {
            Caller::NoToken => return None,
            Caller::Expired => &self.expired,
            Caller::Forged => &self.forged,
            Caller::WrongAudience => &self.wrong_audience,
            Caller::AnotherUser => &self.other.token,
            Caller::NonMember => &self.non_member.token,
            Caller::RemovedMember => &self.removed.token,
            Caller::Member => &self.owner.token,
            Caller::BotOfThisSandbox => &self.bot.token,
            Caller::BotOfAnotherSandbox => &self.other_bot.token,
            Caller::Operator => OPERATOR_SECRET,
        })
    }

    /// A conversation of the owner with the other user, a fourth member and the removed one
    /// (removed), a message of the owner's and one of the bot's.
    async fn fixture(&self, api: &Api) -> Fixture {
        let fourth = uid("fourth");
        let conv = api
            .create_conversation(
                &self.owner,
                &self.sandbox,
                Some("matrix"),
                &[&self.other.id, &self.removed.id, &fourth],
            )
            .await;
        let r = api.delete(&format!("/v1/conversations/{conv}/members/{}", self.removed.id), &self.owner).await;
        assert_eq!(r.status, 204, "fixture: removing a member: {}", r.text);
        let message = api.send_text(&self.owner, &conv, "the owner's").await["id"].as_str().expect("id").to_string();
        let r = api
            .post(
                &format!("/bot/v1/sandboxes/{}/conversations/{conv}/messages", self.sandbox),
                &self.bot,
                &json!({"content": [{"type": "text", "text": "the bot's"}]}),
            )
            .await;
        let bot_message = r.expect(201)["messageId"].as_str().expect("messageId").to_string();
        Fixture {
            sandbox: self.sandbox.clone(),
            conversation: conv,
            message,
            bot_message,
            owner: self.owner.id.clone(),
            fourth,
        }
    }
}

fn path_of(template: &str, f: &Fixture) -> String {
    let message = if template.starts_with("/bot/") { &f.bot_message } else { &f.message };
    template
        .replace("{conversationId}", &f.conversation)
        .replace("{messageId}", message)
        .replace("{sandboxId}", &f.sandbox)
        .replace("{userId}", &f.fourth)
        .replace("{bridgeId}", "01HYYYYYYYYYYYYYYYYYYYYYYY")
        .replace("{key}", "switchboard-key?protocol=7")
        .replace("{appId}", "switchboard")
        .replace("{channelName}", "presence-room")
}

/// The answer of one cell: a status, or for a socket 101 / the close code that followed it.
async fn answer(api: &Api, row: &Row, token: Option<&str>, f: &Fixture) -> u16 {
    let path = path_of(row.template, f);
    let is_socket = row.template.ends_with("/ws")
        || row.template.ends_with("/live")
        || row.template == "/connect"
        || row.template == "/app/{key}";
    if is_socket {
        let auth = token.map(WsAuth::Bearer).unwrap_or(WsAuth::None);
        return match Ws::open_path(api, &path, auth, None, row.template).await {
            Err(r) => r.status,
            Ok(mut ws) => {
                // A refusal after the upgrade is a close frame at once; an accepted socket says
                // something first (ready, hello, connection_established) or nothing at all.
                let code = match ws.next_frame(std::time::Duration::from_secs(2)).await {
                    Some(Frame::Close(code, _)) => code,
                    Some(Frame::Text(_)) | None => 101,
                    Some(other) => panic!("{} {path}: {other:?}", row.method),
                };
                ws.abort();
                code
            }
        };
    }
    let body = (row.body)(f).map(|b| b.to_string());
    api.send_raw(row.method, &path, token, body).await.status
}

#[tokio::test]
async fn every_route_and_socket_for_every_caller() {
    // Every route of ROUTES has a row, and every row is a route of ROUTES.
    let listed: BTreeSet<(String, String)> = ROUTES.iter().map(|(t, m)| (t.to_string(), m.to_string())).collect();
    let rows: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|r| (r.template.split('?').next().unwrap_or(r.template).to_string(), r.method.to_string()))
        .collect();
    let missing: Vec<_> = listed.difference(&rows).collect();
    let stale: Vec<_> = rows.difference(&listed).collect();
    assert!(missing.is_empty() && stale.is_empty(), "routes without a row: {missing:?}; rows of no route: {stale:?}");
    assert_eq!(rows.len(), TABLE.len(), "a route has two rows");

    let server = Server::start(&[
        ("LOCAL_MODE", "false"),
        ("OPERATOR_SECRET", OPERATOR_SECRET),
        ("PUSHER_APP_SECRET", "the-matrix-pusher-app-secret"),
        // Bridges never leave this machine.
        ("KICK_PUSHER_URL", "ws://127.0.0.1:9/app/none"),
        ("KICK_API_URL", "http://127.0.0.1:9"),
    ]);
    let api = Api::new(&server);
    let cast = Cast::new();
    // Production: the sandbox's bot lists who may use it (the owner alone), and reports online.
    let r = api
        .put(&format!("/bot/v1/sandboxes/{}/users", cast.sandbox), &cast.bot, &json!({"users": [cast.owner.id]}))
        .await;
    r.expect(200);
    api.post(&format!("/bot/v1/sandboxes/{}/bot-status", cast.sandbox), &cast.bot, &json!({"online": true}))
        .await
        .expect(200);
    let shared = cast.fixture(&api).await;

    let mut cells = Vec::new();
    for row in TABLE {
        for (i, caller) in CALLERS.iter().enumerate() {
            cells.push((row, i, *caller));
        }
    }
    // Concurrent, a bounded number at a time (the server is one workerd process on a small machine).
    let results: Vec<_> = futures_util::stream::iter(cells.iter().map(|(row, i, caller)| {
        let api = api.clone();
        let shared = shared.clone();
        let cast = &cast;
        async move {
            let fixture = if row.kind == Fresh { cast.fixture(&api).await } else { shared };
            let got = answer(&api, row, cast.token(*caller), &fixture).await;
            (row, *i, *caller, got)
        }
    }))
    .buffer_unordered(24)
    .collect()
    .await;
    let wrong: Vec<String> = results
        .iter()
        .filter(|(row, i, _, got)| row.expect[*i] != *got)
        .map(|(row, i, caller, got)| {
            format!("{} {} as {caller:?}: expected {}, got {got}", row.method, row.template, row.expect[*i])
        })
        .collect();
    assert!(wrong.is_empty(), "{} of {} cells differ:\n{}", wrong.len(), results.len(), wrong.join("\n"));
}
