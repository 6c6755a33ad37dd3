//! The Kosmi relay: one Kosmi room linked both ways to a conversation, over `graphql-transport-ws`
//! ([`crate::graphql_ws`]).
//!
//! Kosmi's API is reverse engineered (seed 003): an anonymous login over HTTP (`mutation { anonLogin { token } }`)
//! gives a JWT; the socket `wss://engine.kosmi.io/gql-ws` takes it in `connection_init` with the base64 User-Agent
//! and an app version; after the ack we subscribe `OnNewMessage` and run `JoinRoom` (no message flows before the
//! join). Room ids always carry their `@`.
//!
//! [`KosmiRelay`] wraps the protocol client and adds what is Kosmi's:
//! - **Credentials.** The token lives in the caller's storage; the relay takes `Option<token>`. When it must connect
//!   without one it asks for a login (`NeedLogin`); the caller posts [`LOGIN_BODY`], then calls `logged_in` or
//!   `login_failed`. A token the server refuses (4401/4403) is forgotten (`TokenRefused`: drop it from storage), so
//!   the next connect logs in again; the protocol client makes that immediate once and backed off after.
//! - **Outbound queue.** Sends are queued in order (at most `KOSMI_OUTBOX_MAX`) and sent one at a time once the room
//!   is joined, each written through the bridge's `nickFormat`. A send that fails (a GraphQL error, or the
//!   connection dropping before its result) goes back to the head of the queue and is tried again (at once, or
//!   after the reconnect); after `KOSMI_MAX_SEND_ATTEMPTS` attempts it is dropped with a recorded reason.
//! - **Echo suppression.** Our own sends come back through the subscription, written by our anonymous user. The
//!   relay remembers the bodies it sent (the last `ECHO_MEMORY`, for `ECHO_WINDOW_MS`); the first incoming message
//!   with a remembered body is taken as our echo and teaches us our own Kosmi user id. From then on, messages are
//!   recognized by that id alone: everything our user writes is ours (it writes nothing else), and a stranger who
//!   happens to type a body we sent is still relayed. The id is forgotten with the token (a new login is a new user).
//!   A body is formatted with a `nickFormat` (`<alice> hi`), so a stranger matching it before our echo arrives is
//!   unlikely; the only cost of that race would be one dropped message.
//! - **Mapping.** Each `newMessage` becomes a [`BridgedMessage`] from `kosmi:{user.id}`, keyed `kosmi:{id}`.
//!
//! Files: `room` (room ids), `login` (the anonymous login and `connection_init`), `operations` (the
//! GraphQL operations), `mapping` (`newMessage` → `BridgedMessage`), `echo` (echo suppression), `relay`
//! (`KosmiRelay`).

mod login;
mod mapping;
mod operations;
mod relay;
mod room;
#[cfg(test)]
mod tests;

pub use crate::echo::EchoFilter;
pub use login::{init_payload, parse_login, LoginError};
pub use mapping::{map_new_message, KosmiError};
pub use operations::{join_room, on_new_message, send_message};
pub use relay::{DropReason, KosmiConfig, KosmiEffect, KosmiRelay, SendRefused};
pub use room::{RoomError, RoomId};

use crate::lenient;
use crate::limits::MAX_REFUSAL_REASON_CHARS;
use serde_json::Value;

/// Where the anonymous login is posted (`content-type: application/json`).
pub const HTTP_URL: &str = "https://engine.kosmi.io/";
/// The socket (subprotocol `graphql-transport-ws`).
pub const WS_URL: &str = "wss://engine.kosmi.io/gql-ws";
/// The `Origin` Kosmi's web app sends.
pub const ORIGIN: &str = "https://app.kosmi.io";
/// The body of the anonymous login.
pub const LOGIN_BODY: &str = r#"{"query":"mutation { anonLogin { token } }"}"#;
/// The web app version Kosmi expects in `connection_init`.
pub const APP_VERSION: &str = "4364";

pub const ON_NEW_MESSAGE: &str =
    "subscription OnNewMessage($roomId: String!) { newMessage(roomId: $roomId) { id body time user { id username displayName } } }";
pub const JOIN_ROOM: &str = "mutation JoinRoom($id: String!) { joinRoom(id: $id) { ok } }";
pub const SEND_MESSAGE: &str =
    "mutation SendMessage($body: String!, $roomId: String!) { sendMessage(body: $body, roomId: $roomId) { ok } }";

/// The close code we use when the room could not be joined or its subscription ended (4000-4999: application).
pub const CLOSE_ROOM_LOST: u16 = 4000;

const ROOM_URL_PREFIXES: [&str; 3] = ["https://app.kosmi.io/room/", "http://app.kosmi.io/room/", "app.kosmi.io/room/"];

/// The first message of a GraphQL `errors` list (or of an `error` message's payload list), if there is one.
fn first_error(v: &Value) -> Option<String> {
    let errors = v.get("errors").unwrap_or(v).as_array()?;
    let first = errors.first()?;
    Some(lenient::text(first.get("message"), MAX_REFUSAL_REASON_CHARS).unwrap_or_else(|| "unknown error".into()))
}
