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

/// Answers an upgrade with a socket that is closed at once with `code` (browsers can read a close
/// code, not an HTTP status). Accepted without the hibernation API on purpose: the runtime's own
/// read loop then takes the client's answering close frame and ends the connection at once, so the
/// client's `onclose` fires promptly. (A hibernatable socket closed by us first is only let go when
/// the object next hibernates: the runtime drops the connection on the client's answer only when
/// the close was the client's, ~10 s later otherwise.)
pub fn refuse(code: u16, reason: &str) -> Result<Response, ApiError> {
    let pair = worker::WebSocketPair::new().map_err(|e| internal("socket pair", e))?;
    pair.server.accept().map_err(|e| internal("accept", e))?;
    let _ = pair.server.close(Some(code), Some(reason));
    Response::from_websocket(pair.client).map_err(|e| internal("websocket response", e))
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
