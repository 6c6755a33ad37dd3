//! Sans-IO bridges between a Switchboard conversation and an external chat room: Kick (read over Pusher protocol 7,
//! optional outbound over HTTP) and Kosmi (both ways over `graphql-transport-ws`).
//!
//! Nothing here does I/O, reads a clock or draws randomness: the Durable Object shell that runs a bridge passes the
//! time (`now_ms`) and 64 random bits in, and carries out the effects that come back. Everything is tested natively
//! with virtual time.
//!
//! # Modules
//! - [`limits`]: every bound, named once.
//! - [`source`]: the one output shape of both platforms, [`source::BridgedMessage`] (idempotency key, sender id,
//!   text, `source`, reply target), and the rule that a bridged message is never relayed ([`source::is_bridged`]).
//! - [`event`]: [`event::BridgeEvent`], what a bridge hands the shell: a message, a deletion, a `bridge.*` notice
//!   (typed payloads), or an unknown event to count.
//! - [`kick`]: Kick's Pusher events (`chatrooms.{id}.v2`) mapped into bridge events, leniently.
//! - [`kick_client`]: the Kick reader, `switchboard_pusher`'s client subscribed to one chatroom, its events mapped.
//! - [`kick_send`]: the body of Kick's `POST /public/v1/chat` and the refusal policy (401/403/429: record, back off,
//!   never loop).
//! - [`graphql_ws`]: a `graphql-transport-ws` client state machine (handshake, operations, keep-alive, every close
//!   code, backoff, credential refusal).
//! - [`kosmi`]: the Kosmi relay on top of it: login, room ids, the three operations, mapping, the outbound queue
//!   and echo suppression.
//! - [`nick`]: `nickFormat`, how our messages are written into a room that shows one bot user for everyone.
//! - [`status`]: the states a bridge reports (`connecting`, `live`, `backoff`, `failed`) and its object's next
//!   alarm (the machine's timeout, never later than the `WATCHDOG_MS` watchdog).
//! - [`lenient`], [`base64`]: small helpers (bounded lenient JSON reading; base64 for Kosmi's User-Agent).
//!
//! # How a Durable Object shell drives a bridge
//! One object per external room, separate from the (hibernating) conversation object: an outbound socket does not
//! hibernate, so the object keeps a watchdog alarm (< 15 min) that restarts the machine after an eviction or deploy.
//!
//! 1. Build the machine from storage (for Kosmi, [`kosmi::KosmiRelay::new`] with the room, `nickFormat`, User-Agent
//!    and the stored token, if any) and call `start(now, random)`.
//! 2. Drain `poll()` and carry out each effect, in order: `Connect { conn }` (open the socket; report
//!    `Input::Opened`/`Input::ConnectFailed` for that `conn`, and each frame and the close as `Input::Text` /
//!    `Input::Closed`, through `handle(now, random, input)`), `Send`, `Close`, `NeedLogin` (post
//!    [`kosmi::LOGIN_BODY`], then `logged_in` + store the token, or `login_failed`), `TokenRefused` (delete the
//!    stored token), and `Event(e)`: commit it through the one path below.
//! 3. Set the object's alarm to `poll_timeout()` and call `handle(now, random, Input::Timeout)` when it fires.
//!    Never hold a borrow of the machine across an `.await`: borrow, call, drain the effects into a list, drop the
//!    borrow, then perform them.
//! 4. Commit path, the same for every platform: for `BridgeEvent::Message(m)`, send `m.content()` to the
//!    conversation as `m.sender_id`, with `m.idempotency_key` as the send's client id (so a replay or a reconnect
//!    never makes a second copy), `m.source_json()` as its source, and `inReplyToMessageId` set to our copy of
//!    `m.reply_to_key()` when one exists. `Delete` deletes our copy of its key, if any. `Notice(n)` appends
//!    `n.event_type()` with `n.payload()`. `Unknown` is counted.
//! 5. Outbound: conversation messages reach the bridge as [`source::Outbound`]; bridged ones are refused. For Kosmi,
//!    `KosmiRelay::send` queues them (`Delivered`/`Dropped` report back by `local_id`). For Kick,
//!    [`kick_send::chat_body`] writes the body, [`kick_send::KickSender::check`] says whether sending is held back,
//!    and `on_answer`/`on_network_error` record the outcome; a refused message is not retried.
//!
//! For Kick, [`kick_client::KickReader`] is driven the same way (its methods answer the effects directly; open
//! [`kick_client::ws_url`] on `Connect`), and its `Event`s go through the same commit path.

pub mod base64;
pub mod echo;
pub mod event;
pub mod graphql_ws;
pub mod kick;
pub mod kick_client;
pub mod kick_send;
pub mod kosmi;
pub mod lenient;
pub mod limits;
pub mod link;
pub mod nick;
pub mod source;
pub mod status;
