//! The per-frame ceiling (bench/baselines/ceiling.mjs) written with workers-rs: a Durable Object
//! that broadcasts each frame it receives (over a socket, or as the body of `POST /send/:room`) to
//! every socket it holds. No parsing, no storage, no auth, none of Switchboard's crates: a Rust
//! worker's own cold start, size and per-delivery cost, the floor the chat worker is measured
//! against (bench/README.md, issue 19).
//!
//!   GET  /ws/:room     WebSocket upgrade (hibernatable), forwarded to the room's object
//!   POST /send/:room   broadcast the body as one text frame
use worker::*;

#[durable_object]
pub struct CeilingRoom {
    state: State,
}

impl DurableObject for CeilingRoom {
    fn new(state: State, _env: Env) -> Self {
        if let Ok(pair) = WebSocketRequestResponsePair::new("ping", "pong") {
            state.set_websocket_auto_response(&pair);
        }
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.headers().get("upgrade")?.as_deref() == Some("websocket") {
            let pair = WebSocketPair::new()?;
            self.state.accept_web_socket(&pair.server);
            return Response::from_websocket(pair.client);
        }
        let frame = req.text().await?;
        self.broadcast(&frame);
        Ok(Response::empty()?.with_status(204))
    }

    async fn websocket_message(&self, _ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        if let WebSocketIncomingMessage::String(frame) = message {
            self.broadcast(&frame);
        }
        Ok(())
    }

    async fn websocket_close(&self, ws: WebSocket, _code: usize, _reason: String, _clean: bool) -> Result<()> {
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }
}

impl CeilingRoom {
    fn broadcast(&self, frame: &str) {
        for ws in self.state.get_websockets() {
            let _ = ws.send_with_str(frame);
        }
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let room = match (parts.next(), parts.next()) {
        (Some("ws" | "send"), Some(room)) if !room.is_empty() && !room.contains('/') => room.to_string(),
        _ => return Response::error("not found", 404),
    };
    env.durable_object("ROOMS")?.get_by_name(&room)?.fetch_with_request(req).await
}
