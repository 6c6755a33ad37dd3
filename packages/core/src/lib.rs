//! Switchboard's sans-IO core.
//!
//! Everything here is plain data and pure functions: no I/O, no clock, no randomness. Callers pass the
//! current time (`now_ms`) and random bits in, and carry out what comes back (store rows, send frames,
//! set alarms). The workers in `src/` and `services/` are thin shells over these modules.

pub mod ack_window;
pub mod alarm;
pub mod backoff;
pub mod batch;
pub mod connected;
pub mod content;
pub mod cors;
pub mod cursor;
pub mod emoji;
pub mod error;
pub mod events;
pub mod fields;
pub mod frames;
pub mod hub;
pub mod idempotency;
pub mod ids;
pub mod limit_vars;
pub mod limits;
pub mod live;
pub mod local;
pub mod member;
pub mod model;
pub mod ndjson;
pub mod rate;
pub mod reactions;
pub mod replay;
pub mod requests;
pub mod routes;
pub mod store;
pub mod typing;
pub mod validate;

pub use error::{ApiError, ErrorCode};
pub use member::MemberId;
