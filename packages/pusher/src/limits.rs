//! Every bound of the Pusher endpoint and client, named once.
//!
//! Where Pusher publishes a limit we use Pusher's number, so that an app that works against Pusher
//! works against us; the rest are ours and say why.

// ---- frames -------------------------------------------------------------------------------------

/// A text frame a client sends us. Pusher caps event data at 10 KB; the rest of a frame (channel,
/// auth, presence `channel_data`) is small, so 32 KiB leaves room without letting a client make us
/// parse megabytes. Larger frames close the socket with `close::MESSAGE_TOO_BIG`.
pub const MAX_CLIENT_FRAME_BYTES: usize = 32 * 1024;
/// A text frame a server sends our client (the bridges). Presence lists of 100 members with 1 KB of
/// info each fit comfortably.
pub const MAX_SERVER_FRAME_BYTES: usize = 1024 * 1024;

// ---- names --------------------------------------------------------------------------------------

/// Characters of a channel name (Pusher: 164; soketi allows 200, we follow Pusher).
pub const MAX_CHANNEL_NAME_CHARS: usize = 164;
/// Characters of an event name (Pusher's HTTP API: 200), `client-` events included.
pub const MAX_EVENT_NAME_CHARS: usize = 200;
/// Event data, in bytes (Pusher: 10 KB), for HTTP publishes and client events alike.
pub const MAX_EVENT_DATA_BYTES: usize = 10 * 1024;

// ---- sockets and auth -----------------------------------------------------------------------------

/// A socket id is `<digits>.<digits>`; ours are two u64 (at most 20 digits each). Longer ids given
/// to the HTTP API (`socket_id` to exclude) are refused.
pub const MAX_SOCKET_ID_CHARS: usize = 41;
/// Presence `user_id` and signed-in user `id` (Pusher: 128).
pub const MAX_USER_ID_CHARS: usize = 128;
/// Presence `user_info`, as JSON text (Pusher: 1 KB).
pub const MAX_USER_INFO_BYTES: usize = 1024;
/// A presence `channel_data` string as a whole (`user_id` + `user_info` + JSON punctuation).
pub const MAX_CHANNEL_DATA_BYTES: usize = 2 * 1024;
/// The `user_data` of `pusher:signin`, as JSON text.
pub const MAX_USER_DATA_BYTES: usize = 2 * 1024;
/// An `auth` string: `<key>:<64 hex digits>`, or a private channel's auth that names its member,
/// `<key>:<member id in hex>:<64 hex digits>` (a member id of `MAX_USER_ID_CHARS` characters of up
/// to 4 UTF-8 bytes is 1,024 hex digits); keys are short, this is generous.
pub const MAX_AUTH_CHARS: usize = 1280;

// ---- the registry ---------------------------------------------------------------------------------

/// Sockets one registry (one app shard, one Durable Object) holds. Past it a new socket is closed
/// with `close::OVER_CAPACITY` (4100: pusher-js backs off and retries). Cloudflare accepts ~32k
/// hibernated sockets per object; we stay under.
pub const MAX_SOCKETS_PER_REGISTRY: usize = 30_000;
/// Channels one socket may be subscribed to at once (Pusher has no published number; 100 is what
/// soketi and Reverb apps use in practice). Also bounds a socket's record.
pub const MAX_CHANNELS_PER_SOCKET: usize = 100;
/// Members (distinct user ids) of one presence channel (Pusher: 100).
pub const MAX_PRESENCE_MEMBERS: usize = 100;
/// A socket's record (its hibernation attachment) as JSON, in bytes. Cloudflare allows 16 KiB per
/// attachment; 1 KiB is left to the shell's own fields. A subscription that would grow the record past
/// this is refused (`pusher:subscription_error`, status 413) — so a socket can hold 100 public or
/// private channels, or fewer presence channels with large `user_info`.
pub const MAX_RECORD_BYTES: usize = 15 * 1024;

/// Client events: a token bucket per socket, in virtual time. Pusher allows "about 10 per second".
pub const CLIENT_EVENTS_PER_SEC: u64 = 10;
/// The bucket holds this many tokens (a burst of a second's worth).
pub const CLIENT_EVENT_BURST: u64 = 10;
/// A socket whose client events were refused this many times in a row (each answered with
/// `pusher:error` 4301) is closed with `close::OVER_CAPACITY`: it is flooding, not bursting.
pub const MAX_CONSECUTIVE_REFUSED_CLIENT_EVENTS: u32 = 50;

/// The connection's `activity_timeout` we announce, in seconds (Pusher: 120; pusher-js pings after
/// this long without a frame). 30 s keeps hibernated sockets' intermediaries from idling them out.
pub const ACTIVITY_TIMEOUT_SECS: u32 = 30;

// ---- the HTTP API ---------------------------------------------------------------------------------

/// Channels of one `POST /events` (Pusher: 100).
pub const MAX_TRIGGER_CHANNELS: usize = 100;
/// Events of one `POST /batch_events` (Pusher: 10).
pub const MAX_BATCH_EVENTS: usize = 10;
/// An HTTP API request body: a batch of 10 events of 10 KB each plus names, or one event to 100
/// channels, fit. Larger bodies answer 413.
pub const MAX_API_BODY_BYTES: usize = 256 * 1024;
/// A signed request's `auth_timestamp` may differ from our clock by this much (Pusher: 600 s).
pub const MAX_TIMESTAMP_SKEW_SECS: u64 = 600;
/// The query string of an HTTP API request, and its number of parameters.
pub const MAX_QUERY_BYTES: usize = 4 * 1024;
pub const MAX_QUERY_PARAMS: usize = 32;

// ---- the client (bridges) -------------------------------------------------------------------------

/// The client waits this long for `pusher:connection_established` after asking for a socket.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// After sending `pusher:ping`, the client waits this long for any frame before reconnecting.
pub const PONG_TIMEOUT_MS: u64 = 30_000;
/// The client never waits longer than this for activity, whatever the server announces (pusher-js: 120 s).
pub const MAX_CLIENT_ACTIVITY_TIMEOUT_MS: u64 = 120_000;
/// Channels a client keeps subscribed.
pub const MAX_CLIENT_CHANNELS: usize = 100;

// ---- webhooks -----------------------------------------------------------------------------------

/// Webhook events waiting to be sent; when full, the oldest is dropped (and counted).
pub const MAX_WEBHOOK_QUEUE: usize = 1_000;
/// Events in one webhook request body.
pub const MAX_WEBHOOK_EVENTS_PER_BATCH: usize = 100;
/// Events are held this long after the first of a batch so that a burst makes one request.
pub const WEBHOOK_BATCH_WINDOW_MS: u64 = 1_000;
/// A batch is tried at most this many times, then dropped (and counted).
pub const WEBHOOK_MAX_ATTEMPTS: u32 = 6;
/// When the webhook queue's storage failed, the alarm tries again this much later.
pub const WEBHOOK_STORAGE_RETRY_MS: i64 = 5_000;

// ---- the relay's watches of conversations ---------------------------------------------------------

/// Conversations whose watch is kept unsure at once (`relay_watch`; past it a failure is only logged).
pub const MAX_UNSURE_WATCHES: usize = 10_000;
/// A failed watch call is tried again after 1 s, doubling to 1 min, for as long as it fails.
pub const RELAY_WATCH_BACKOFF: switchboard_core::backoff::BackoffPolicy =
    switchboard_core::backoff::BackoffPolicy { initial_ms: 1_000, cap_ms: 60_000, stable_ms: 0 };

/// WebSocket close codes the server sends (Pusher's ranges: 4000-4099 do not reconnect, 4100-4199
/// back off, 4200-4299 reconnect at once).
pub mod close {
    /// The frame was larger than `MAX_CLIENT_FRAME_BYTES` (RFC 6455).
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// Unknown app key: do not reconnect.
    pub const APP_UNKNOWN: u16 = 4001;
    /// Protocol version not supported (`?protocol=` other than 7): do not reconnect.
    pub const UNSUPPORTED_PROTOCOL: u16 = 4007;
    /// `pusher:signin` failed: do not reconnect.
    pub const UNAUTHORIZED: u16 = 4009;
    /// Over capacity (too many sockets, or a client flooding events): back off, then reconnect.
    pub const OVER_CAPACITY: u16 = 4100;
    /// Generic "reconnect now" (a deploy, a shard moving).
    pub const RECONNECT: u16 = 4200;
    /// No pong arrived after our ping.
    pub const PONG_NOT_RECEIVED: u16 = 4201;
    /// The socket was silent past the activity timeout.
    pub const INACTIVE: u16 = 4202;
}

/// Codes in `pusher:error` frames (the socket stays open).
pub mod error_code {
    /// A client event was refused by the rate limit (Pusher's code).
    pub const CLIENT_EVENT_RATE_LIMIT: u16 = 4301;
}
