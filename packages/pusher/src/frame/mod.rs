//! The wire codec of Pusher Channels protocol 7: text frames of JSON `{event, channel?, data?, user_id?}`.
//!
//! Both directions, both roles:
//! - a server parses what clients send (`ClientFrame::parse`) and writes what servers send
//!   (`ServerFrame::encode`);
//! - a client (our bridges) parses what servers send (`ServerMessage::parse`) and writes what clients
//!   send (`ClientFrame::encode`).
//!
//! Why `data` is so irregular: a server sends `data` as a JSON *string* holding JSON (double-encoded)
//! for every event, `pusher:*` ones included — pusher-js `JSON.parse`s a string `data` and keeps
//! anything else as is, and its handshake reads `data.activity_timeout` from the parsed value. A
//! client sends `pusher:subscribe`, `pusher:signin`, `pusher:ping` with `data` as an object, and
//! `client-*` events with whatever value the application passed. We write exactly what pusher-js
//! and Pusher write, and read leniently: an object or a string holding one, unknown fields ignored,
//! optional fields may be missing.
//!
//! Errors: a frame we cannot use is a `FrameError`. The server answers it with `pusher:error` whose
//! `code` is `null` and keeps the socket open (`FrameError::code`): Pusher's numbered codes are close
//! instructions (4000-4099 "do not reconnect", 4100-4199 "back off", 4200-4299 "reconnect"), and
//! pusher-js acts on them when they arrive during the handshake, so a bad frame must not carry one.
//! Only a frame over the size limit closes the socket, with 1009 (`FrameError::close_code`).
//!
//! The encoders write JSON by hand (`push_json_string`, checked against serde_json by a property
//! test) so that the text is exactly what the tests pin, key order included, and nothing can fail.
//!
//! Files: `error` (`FrameError`), `read` (the envelope and lenient field readers), `client_frame`
//! (`ClientFrame`: parse and encode), `server_message` (`ServerMessage`: what our client reads),
//! `server_frame` (`ServerFrame`: what a server writes), `write` (JSON written by hand).

mod client_frame;
mod error;
mod read;
mod server_frame;
mod server_message;
#[cfg(test)]
mod tests;
mod write;

pub use client_frame::ClientFrame;
pub use error::FrameError;
pub use read::data_text;
pub use server_frame::ServerFrame;
pub use server_message::ServerMessage;
pub use write::{json_string, presence_data, push_json_string};

/// Event names of the protocol.
pub mod event {
    pub const CONNECTION_ESTABLISHED: &str = "pusher:connection_established";
    pub const ERROR: &str = "pusher:error";
    pub const PING: &str = "pusher:ping";
    pub const PONG: &str = "pusher:pong";
    pub const SUBSCRIBE: &str = "pusher:subscribe";
    pub const UNSUBSCRIBE: &str = "pusher:unsubscribe";
    pub const SIGNIN: &str = "pusher:signin";
    pub const SIGNIN_SUCCESS: &str = "pusher:signin_success";
    pub const SUBSCRIPTION_ERROR: &str = "pusher:subscription_error";
    pub const SUBSCRIPTION_SUCCEEDED: &str = "pusher_internal:subscription_succeeded";
    pub const MEMBER_ADDED: &str = "pusher_internal:member_added";
    pub const MEMBER_REMOVED: &str = "pusher_internal:member_removed";
    /// Events a client may send to other clients start with this.
    pub const CLIENT_PREFIX: &str = "client-";
}
