//! Accepting hibernatable WebSockets, the same way in every object: a pair, accepted with the
//! hibernation API (optionally tagged), its attachment (the only per-socket memory that survives
//! hibernation) written before anything is sent, and the `101` answer.

use crate::http::internal;
use serde::Serialize;
use switchboard_core::ApiError;
use worker::{Response, ResponseBuilder, State, WebSocket, WebSocketPair, WebSocketRequestResponsePair};

/// A socket accepted by an object: send on `server`, answer the upgrade with `response`.
pub struct Accepted {
    pub server: WebSocket,
    pub response: Response,
}

/// Accepts a new hibernatable socket with `attachment` (and `tags`, when the object looks sockets
/// up by tag).
pub fn accept<A: Serialize>(state: &State, attachment: &A, tags: &[&str]) -> Result<Accepted, ApiError> {
    let pair = WebSocketPair::new().map_err(|e| internal("socket pair", e))?;
    if tags.is_empty() {
        state.accept_web_socket(&pair.server);
    } else {
        state.accept_websocket_with_tags(&pair.server, tags);
    }
    pair.server.serialize_attachment(attachment).map_err(|e| internal("socket attachment", e))?;
    let response = ResponseBuilder::new().with_status(101).with_websocket(pair.client).empty();
    Ok(Accepted { server: pair.server, response })
}

/// Lets the runtime answer `request` with `response` on every socket of the object without waking
/// it (one pair per object: exact text match).
pub fn auto_response(state: &State, request: &str, response: &str) {
    match WebSocketRequestResponsePair::new(request, response) {
        Ok(pair) => state.set_websocket_auto_response(&pair),
        Err(e) => worker::console_error!("auto-response: {e:?}"),
    }
}

/// A client closed its socket: answer its close frame so the closing handshake completes at once
/// (the client's `onclose` fires; the runtime forgets the socket).
pub fn complete_close(ws: &WebSocket) {
    let _ = ws.close(Some(1000), Some("closed"));
}

/// A socket failed: close it with 1011.
pub fn close_after_error(ws: &WebSocket) {
    let _ = ws.close(Some(switchboard_core::limits::close::INTERNAL), Some("socket error"));
}
