//! The Workers plumbing both workers share. This crate and the worker crates (`src/`,
//! `services/*`) are the only ones that depend on `worker`; everything they decide is in the
//! sans-IO crates.
//!
//! - [`http`]: responses (`{"error":{"code","message"}}` for every error) and request reading;
//! - [`sql`]: the Durable Objects' SQLite, one boundary crossing per statement, and the storage
//!   port of the sans-IO objects (`switchboard_core::store::Store`) with `transactionSync`;
//! - [`call`]: typed calls to Durable Objects (`call::<Answer>(stub, &command)`);
//! - [`alarm`]: the one alarm slot of an object, only ever moved earlier;
//! - [`socket`]: accepting hibernatable sockets with their attachment, and the auto-response;
//! - [`platform`]: the clock, randomness, and sends that hand one JavaScript string to many sockets.

pub mod alarm;
pub mod batching;
pub mod call;
pub mod http;
pub mod platform;
pub mod socket;
pub mod sql;
