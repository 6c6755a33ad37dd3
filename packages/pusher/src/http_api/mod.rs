//! Pusher's signed HTTP API: what the `pusher` npm SDK (and Laravel's broadcaster, and every other
//! server SDK) sends to publish events and to ask about channels.
//!
//! A request is signed in its query string (pusher-http-node `lib/requests.js`):
//! `auth_key`, `auth_timestamp` (Unix seconds), `auth_version=1.0`, `body_md5` (hex MD5 of the body,
//! for requests with a body) and the request's own parameters, then
//! `auth_signature = hex(HMAC-SHA256(secret, "<METHOD>\n<path>\n<query>"))` where `<query>` is every
//! parameter except `auth_signature`, keys lowercased, sorted by key, written `key=value` **without
//! URL escaping** and joined with `&`. The node SDK also sends them unescaped on the wire; other SDKs
//! escape them (PHP writes a space as `+`). So we percent-decode the values and keep `+` as is,
//! and only if that signature does not match and the query holds a `+`, try again reading `+` as a
//! space. Either way the request is only accepted under an interpretation its signer signed.
//!
//! Checks, in order, each with its status: body over `MAX_API_BODY_BYTES` → 413; a query that does
//! not parse → 400; missing or wrong `auth_key`, `auth_version`, `auth_timestamp` more than
//! `MAX_TIMESTAMP_SKEW_SECS` away from `now_secs`, a body whose MD5 is not `body_md5`, a missing or
//! wrong signature → 401. Then the body: invalid → 400, event data over `MAX_EVENT_DATA_BYTES` → 413.
//!
//! `sign_query` is the same signer, for tests and for our own services calling the API.
//!
//! Files: `error` (`HttpError`), `routes`, `query` (the query string), `signature` (verify and
//! sign), `bodies` (trigger and batch bodies, info fields), `answers` (the JSON we answer).

mod answers;
mod bodies;
mod error;
mod query;
mod routes;
mod signature;
#[cfg(test)]
mod tests;

pub use answers::{batch_body, channel_body, channels_body, trigger_body, users_body, ChannelInfo};
pub use bodies::{channel_info_fields, parse_batch, parse_trigger, ChannelsQuery, InfoFields, Trigger};
pub use error::HttpError;
pub use query::{percent_encode, Query};
pub use routes::{route, Route};
pub use signature::{md5_hex, sign_query, string_to_sign, verify};
