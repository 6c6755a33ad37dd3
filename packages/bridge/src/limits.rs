//! Every bound of the bridges, named once.
//!
//! Whatever an external platform sends is bounded before it is kept: a bridge lives in one Durable Object
//! next to a busy public room, and nothing a stranger types may grow its memory or its storage.

use switchboard_core::limits::{MAX_CLIENT_ID_CHARS, MAX_USER_ID_CHARS};

// ---- What we keep of an external message ----

/// The longest platform prefix of a key or sender id (`kosmi:`); both prefixes must fit what core accepts.
pub const LONGEST_PREFIX_CHARS: usize = "kosmi:".len();
/// An external message id: its idempotency key `{platform}:{id}` must be a valid core client id.
pub const MAX_EXTERNAL_ID_CHARS: usize = MAX_CLIENT_ID_CHARS - LONGEST_PREFIX_CHARS;
/// An external user id: the sender id `{platform}:{id}` must be a valid core user id.
pub const MAX_EXTERNAL_USER_ID_CHARS: usize = MAX_USER_ID_CHARS - LONGEST_PREFIX_CHARS;
/// A username, slug or display name; longer ones are cut.
pub const MAX_USERNAME_CHARS: usize = 64;
/// A name colour (`#RRGGBB` on Kick); longer ones are dropped.
pub const MAX_COLOR_CHARS: usize = 16;
/// Badges kept per author; the rest are dropped.
pub const MAX_BADGES: usize = 8;
/// A badge's `type` or `text`; longer ones are cut.
pub const MAX_BADGE_TEXT_CHARS: usize = 32;
/// Distinct emotes listed in `source.emotes`; the text keeps every `[emote:ID:NAME]` regardless.
pub const MAX_EMOTES: usize = 16;
/// An emote id (digits on Kick).
pub const MAX_EMOTE_ID_CHARS: usize = 20;
/// An emote name.
pub const MAX_EMOTE_NAME_CHARS: usize = 64;
/// The excerpt of a replied-to message kept in `source.replyTo`, or of a pinned message.
pub const MAX_EXCERPT_CHARS: usize = 200;
/// A room name as kept in `source.room`.
pub const MAX_ROOM_CHARS: usize = 80;
/// A platform event payload (the JSON text of one Kick event's data, one graphql-ws frame); larger ones are refused
/// unparsed. Kick messages are at most 500 characters and Kosmi's are short: 64 KiB is generous.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// An event name kept when it is unknown (for the caller's counters and logs).
pub const MAX_EVENT_NAME_CHARS: usize = 100;
/// A free-form string kept from a moderation event (a ban's `expires_at`, a duration); longer ones are dropped.
pub const MAX_NOTE_CHARS: usize = 64;

// ---- Kick outbound ----

/// Kick refuses chat messages longer than this (characters).
pub const KICK_MAX_MESSAGE_CHARS: usize = 500;
/// A refusal reason (or an id) kept from an answer body.
pub const MAX_REFUSAL_REASON_CHARS: usize = 200;
/// The longest `Retry-After` we honour (Kick's 429); a longer one is cut to this.
pub const KICK_MAX_RETRY_AFTER_MS: u64 = 10 * 60 * 1000;

// ---- Kosmi ----

/// A Kosmi room name without its `@`.
pub const MAX_KOSMI_ROOM_NAME_CHARS: usize = 64;
/// A Kosmi anonymous token (a JWT).
pub const MAX_KOSMI_TOKEN_CHARS: usize = 4096;
/// The User-Agent sent (base64) in `connection_init`.
pub const MAX_USER_AGENT_CHARS: usize = 512;
/// A `nickFormat`, before substitution.
pub const MAX_NICK_FORMAT_CHARS: usize = 64;
/// The name substituted for `{name}`; longer ones are cut.
pub const MAX_NICK_NAME_CHARS: usize = 32;
/// A message body we send to Kosmi, after formatting; longer ones are cut and end with `…`.
pub const KOSMI_MAX_BODY_CHARS: usize = 1000;
/// Messages waiting to be sent to Kosmi; a send beyond this is refused at once.
pub const KOSMI_OUTBOX_MAX: usize = 100;
/// Attempts at one outbound Kosmi message before it is dropped with a reason.
pub const KOSMI_MAX_SEND_ATTEMPTS: u32 = 3;
/// Bodies we sent that we still expect to see echoed back through the subscription.
pub const ECHO_MEMORY: usize = 32;
/// How long a sent body waits for its echo before it is forgotten.
pub const ECHO_WINDOW_MS: u64 = 60_000;
/// User ids we posted as before (earlier logins), kept so that their messages stay ours.
pub const MAX_PAST_OWN_IDS: usize = 8;

// ---- graphql-transport-ws ----

/// From `Connect` to the socket being open (this also covers a login over HTTP first, for Kosmi).
pub const GQL_CONNECT_TIMEOUT_MS: u64 = 15_000;
/// From `connection_init` to `connection_ack`.
pub const GQL_ACK_TIMEOUT_MS: u64 = 10_000;
/// With nothing received for this long, we send a `ping`.
pub const GQL_KEEPALIVE_IDLE_MS: u64 = 20_000;
/// After our keep-alive `ping`, something (a `pong`, or any frame) must arrive within this, or we reconnect.
pub const GQL_PONG_TIMEOUT_MS: u64 = 10_000;
/// Operations (subscriptions and mutations) running at once on one connection.
pub const GQL_MAX_OPERATIONS: usize = 32;
/// A close reason we send or keep (the WebSocket protocol allows 123 bytes).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;
