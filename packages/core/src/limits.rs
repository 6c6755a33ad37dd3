//! Every limit of the service, named once.

/// Content blocks per message.
pub const MAX_BLOCKS: usize = 20;
/// Characters of one text block, after trimming.
pub const MAX_TEXT_CHARS: usize = 8000;
/// Actions in one actions block.
pub const MAX_ACTIONS: usize = 10;
pub const MAX_ACTION_LABEL_CHARS: usize = 100;
pub const MAX_GROUP_ID_CHARS: usize = 64;
/// Conversation title, after trimming.
pub const MAX_TITLE_CHARS: usize = 200;
/// Auto-title from the first message: this many characters of its text.
pub const AUTO_TITLE_CHARS: usize = 80;
pub const MAX_EMOJI_BYTES: usize = 64;
pub const MAX_CLIENT_ID_CHARS: usize = 128;
pub const MAX_USER_ID_CHARS: usize = 128;
pub const MAX_SANDBOX_LABEL_CHARS: usize = 80;
pub const MAX_REQUEST_ID_CHARS: usize = 128;
/// Members of one conversation, bot included.
pub const MAX_MEMBERS: usize = 1000;
/// Bridges (rooms of other platforms) linked to one conversation.
pub const MAX_BRIDGES_PER_CONVERSATION: usize = 10;
/// `additionalMembers` at creation.
pub const MAX_ADDITIONAL_MEMBERS: usize = 100;
/// People a sandbox's allowed-users list may name (`PUT /bot/v1/sandboxes/:sandboxId/users`).
pub const MAX_SANDBOX_USERS: usize = 1000;
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 100;
/// One message's content, as stored and sent (the blocks' JSON, in bytes): the size of the largest
/// socket frame, so whatever HTTP accepts a socket can send too. Over it: 413 `payload_too_large`.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;
/// HTTP request bodies.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Incoming WebSocket frames; larger ones close the socket with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The largest integer the service accepts or stores: 2^53 - 1, the largest a JavaScript number
/// (the Workers runtime's SQL bindings and results, browsers' JSON) holds exactly.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;
/// A time a client states (an edit's `timestamp`, a bot status's `at`) must be within this much of
/// the server's clock (one day).
pub const CLIENT_CLOCK_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// Bytes of frames one resume may replay (conversation socket or hub): past it the socket gets
/// `resync` instead, so a resume never holds more than this in memory.
pub const MAX_REPLAY_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of message content one page of `GET .../messages` holds (at least one message): past it
/// the page ends early, `hasMore: true`.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Frames (lines) in one batched text frame sent to a socket that opted in (`?batch=1`).
pub const MAX_BATCH_EVENTS: usize = 64;
/// Bytes of one batched text frame (a single frame larger than this goes alone, as it is).
pub const MAX_BATCH_BYTES: usize = 64 * 1024;
/// Events a conversation keeps for `?since=` resume.
pub const REPLAY_WINDOW: u64 = 1000;
/// Longest accepted bearer token lifetime (kilo-chat: one hour), plus clock skew.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 3600;
pub const CLOCK_SKEW_SECS: u64 = 60;
/// The shortest secret accepted for `JWT_SECRET` and `OPERATOR_SECRET`.
pub const MIN_SECRET_BYTES: usize = 16;
/// Connect tickets are valid this long, once.
pub const TICKET_TTL_SECS: u64 = 30;
/// Default idempotency record lifetime (24 h).
pub const DEFAULT_IDEM_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// Default delay before members' conversation lists learn of new activity.
pub const DEFAULT_ACTIVITY_FLUSH_MS: i64 = 1000;
/// Default delay from the end of a list flush to the background reconcile that follows it: a pass that
/// tells every member the conversation's whole entry again, re-adding it where it went missing and
/// correcting it where it is stale (var `LIST_RECONCILE_MS`). At most one reconcile pass per this period
/// per conversation, and only after activity (an idle conversation does not wake for it).
pub const DEFAULT_LIST_RECONCILE_MS: i64 = 10 * 60 * 1000;
/// Origins `ALLOWED_ORIGINS` may list (more is a configuration error: only the own origin is allowed).
pub const MAX_ALLOWED_ORIGINS: usize = 32;
/// A longer `Origin` header (or configured origin) is never allowed.
pub const MAX_ORIGIN_CHARS: usize = 300;
/// How long a browser may cache a preflight's answer (`Access-Control-Max-Age`; Chromium caps it at 2 h).
pub const CORS_MAX_AGE_SECS: u32 = 86_400;

/// Rate-limit buckets one object keeps in memory (`rate::Buckets`); past it, buckets that have
/// refilled go first, then any (which only errs on the lenient side).
pub const MAX_RATE_BUCKETS: usize = 10_000;
/// The window of `MAX_CONVERSATIONS_PER_DAY`: rolling, the last 24 hours.
pub const CONVERSATIONS_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

pub use crate::limit_vars::{Limits, LIMIT_VARS};

// ---- rate limits and caps: the defaults of `Limits`, each overridable by the var named --------

use crate::rate::Rate;
/// `LIMIT_SENDS`: messages one member sends into one conversation (HTTP, bot route and socket
/// `message.create` share it).
pub const DEFAULT_SENDS: Rate = Rate::per_sec(10, 30);
/// `LIMIT_EDITS`: edits and deletes of messages, per member per conversation.
pub const DEFAULT_EDITS: Rate = Rate::per_sec(5, 20);
/// `LIMIT_REACTIONS`: reactions added or removed, per member per conversation.
pub const DEFAULT_REACTIONS: Rate = Rate::per_sec(5, 20);
/// `LIMIT_MEMBER_ADDS`: members one member adds to one conversation (a full room of `MAX_MEMBERS`
/// can be filled at once, then ten a second).
pub const DEFAULT_MEMBER_ADDS: Rate = Rate::per_sec(10, 1000);
/// `LIMIT_CONVERSATION_CREATES`: conversations one user creates.
pub const DEFAULT_CONVERSATION_CREATES: Rate = Rate::per_min(10, 20);
/// `LIMIT_CONNECT_TICKETS`: connect tickets one member asks for.
pub const DEFAULT_CONNECT_TICKETS: Rate = Rate::per_min(30, 30);
/// `LIMIT_SOCKET_FRAMES`: frames one connection sends (every socket kind).
pub const DEFAULT_SOCKET_FRAMES: Rate = Rate::per_sec(20, 60);
/// `LIMIT_FLOOD_STRIKES`: frames refused (each answered with an error frame) before a connection
/// that never pauses long enough to refill its bucket is closed with `close::RATE_LIMITED`.
pub const DEFAULT_FLOOD_STRIKES: u32 = 20;
/// `TYPING_THROTTLE_MS`: one `typing` broadcast per member per conversation this often, whatever
/// `typing.stop`s come between.
pub const DEFAULT_TYPING_THROTTLE_MS: i64 = 3_000;
/// `MAX_SOCKETS_PER_MEMBER`: one member's sockets on one conversation.
pub const DEFAULT_MAX_SOCKETS_PER_MEMBER: u32 = 20;
/// `MAX_HUB_SESSIONS`: one user's open `/connect` sockets.
pub const DEFAULT_MAX_HUB_SESSIONS: u32 = 50;
/// `MAX_REACTIONS_PER_MEMBER`: distinct emoji one member puts on one message.
pub const DEFAULT_MAX_REACTIONS_PER_MEMBER: u32 = 20;
/// `MAX_REACTIONS_PER_MESSAGE`: distinct emoji on one message.
pub const DEFAULT_MAX_REACTIONS_PER_MESSAGE: u32 = 50;
/// `MAX_CONVERSATIONS_PER_DAY`: conversations one user creates in any 24 hours.
pub const DEFAULT_MAX_CONVERSATIONS_PER_DAY: u32 = 100;

/// WebSocket close codes we send.
pub mod close {
    /// The frame was larger than `MAX_FRAME_BYTES`.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// A fault of ours.
    pub const INTERNAL: u16 = 1011;
    /// The member left or was removed from the conversation.
    pub const MEMBERSHIP_ENDED: u16 = 4003;
    /// The connection kept sending frames over its rate limit (`LIMIT_SOCKET_FRAMES`) after error
    /// frames told it to slow down.
    pub const RATE_LIMITED: u16 = 4029;
    /// The bearer token that opened the socket (directly or through a ticket) expired: the client
    /// gets a fresh token and reconnects. Every socket kind (conversation, hub, live).
    pub const TOKEN_EXPIRED: u16 = 4010;
    pub const TOKEN_EXPIRED_REASON: &str = "token expired";
}
