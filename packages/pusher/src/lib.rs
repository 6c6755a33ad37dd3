//! Sans-IO Pusher Channels protocol 7: so that unmodified `pusher-js` 8.x clients and the `pusher`
//! npm HTTP SDK work against our service, and so that our bridges can read Pusher-speaking services
//! (Kick chat).
//!
//! Like `switchboard-core`, nothing here does I/O, reads a clock or draws randomness: time
//! (`now_ms`, `now_secs`) and random bits are arguments, and operations return what to do. Nothing
//! panics on input: errors are typed values that say which frame, status or close code answers them.
//!
//! Modules:
//! - `frame`: the wire codec, both directions (server: `ClientFrame::parse`, `ServerFrame::encode`;
//!   client: `ServerMessage::parse`, `ClientFrame::encode`).
//! - `channel`: channel names and kinds, event names, our conversation channels.
//! - `auth`: app credentials, socket ids, channel and user signatures, presence `channel_data`.
//! - `http_api`: the signed HTTP API (verification, routes, bodies, answers) and a signer.
//! - `registry`: the server's channel and presence state for one app shard, as effects; rebuildable
//!   from per-socket records.
//! - `client`: the protocol-7 client state machine (connect, subscribe, ping, reconnect).
//! - `webhook`: batched, signed, retried webhooks.
//! - `limits`: every bound and close code.
//!
//! # Notes for the Durable Object shell
//!
//! - **Socket ids.** On accept, make `SocketId::from_random(a, b)` from the CSPRNG, tag the socket
//!   with it (so `getWebSockets(tag)` finds it), call `Registry::connect` and carry out the effects.
//! - **Hibernation.** Keep only `Registry::record(socket).to_json()` in each socket's attachment
//!   (write it on every `Effect::SaveRecord`; it is at most `limits::MAX_RECORD_BYTES`). On wake,
//!   rebuild with `Registry::from_records` over every accepted socket's attachment before handling
//!   the event. Rate-limit buckets start afresh (only more lenient).
//! - **Effects in order.** `Send` and `Broadcast` (one frame, many sockets: hand the string to
//!   JavaScript once), `Close` (the registry has already forgotten the socket; on the runtime's
//!   close event call `disconnect`, which is then a no-op), `SaveRecord`, `Webhook` (push into the
//!   `webhook_store::DurableWebhooks` loaded from the object's SQLite and set the alarm to
//!   `next_due()`, never later than one already set).
//! - **Frames.** Pass every text frame to `Registry::handle_frame`; frames over
//!   `MAX_CLIENT_FRAME_BYTES` come back as a 1009 close. Binary frames: close with 1003.
//! - **Activity.** We announce `activity_timeout` `limits::ACTIVITY_TIMEOUT_SECS`; pusher-js pings
//!   after that much silence and `handle_frame` answers. Use the runtime's auto-response only for
//!   the exact text pusher-js sends (`{"event":"pusher:ping","data":{}}` → `ServerFrame::Pong`), so
//!   pings do not wake the object.
//! - **The URL.** `/app/{key}?protocol=7...`: an unknown key closes with `close::APP_UNKNOWN` (4001),
//!   a protocol other than 7 with `close::UNSUPPORTED_PROTOCOL` (4007), right after accepting.
//! - **HTTP API.** `http_api::route`, then `http_api::verify` with the raw query string, the path as
//!   sent and the body bytes, then `parse_trigger` / `parse_batch`, then `Registry::publish` per
//!   channel (excluding `socket_id`), answering `trigger_body` / `batch_body`. Errors answer
//!   `HttpError::status()` with `HttpError::to_body()`.
//! - **Auth endpoints** (the app's own backend) use `auth::sign_channel` / `auth::sign_user`.

pub mod auth;
pub mod channel;
pub mod client;
pub mod commands;
pub mod frame;
pub mod http_api;
pub mod limits;
pub mod registry;
pub mod relay_watch;
pub mod webhook;
pub mod webhook_store;

pub use auth::{App, SocketId};
pub use client::{Client, ClientEffect, ClientState};
pub use frame::{ClientFrame, FrameError, ServerFrame, ServerMessage};
pub use registry::{Delivery, Effect, Registry, SocketRecord};
