//! The outbound socket of one connection: opened with a plain `GET` + `upgrade: websocket` (so Kosmi gets the
//! `Origin`, `User-Agent` and subprotocol it wants), then read until it closes; every frame and the close go to the
//! machine in order, each followed by the pump, so the conversation gets the room's events in arrival order.

use super::{clock, Inner};
use futures::StreamExt;
use std::rc::Rc;
use worker::{Fetch, Headers, Method, Request, RequestInit, WebSocket, WebsocketEvent};

/// How a connection is opened: its URL and the headers of the upgrade request.
pub struct Target {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
}

/// Opens the upgrade (ws → http, wss → https, as `WebSocket::connect` does).
async fn open(target: &Target) -> Result<WebSocket, String> {
    let mut url = worker::Url::parse(&target.url).map_err(|e| format!("bad url {}: {e}", target.url))?;
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        other => return Err(format!("not a websocket url: {other}")),
    };
    url.set_scheme(scheme).map_err(|_| "cannot set the url's scheme".to_string())?;
    let headers = Headers::new();
    headers.set("upgrade", "websocket").map_err(|e| e.to_string())?;
    for (k, v) in &target.headers {
        headers.set(k, v).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let req = Request::new_with_init(url.as_str(), &init).map_err(|e| e.to_string())?;
    let resp = Fetch::Request(req).send().await.map_err(|e| e.to_string())?;
    let status = resp.status_code();
    match resp.websocket() {
        Some(ws) => Ok(ws),
        None => Err(format!("the server answered {status} instead of upgrading")),
    }
}

/// Runs connection `conn` from opening to close.
pub async fn run(inner: Rc<Inner>, conn: u64) {
    let target = match inner.target() {
        Some(t) => t,
        None => return,
    };
    let ws = match open(&target).await {
        Ok(ws) => ws,
        Err(e) => {
            worker::console_warn!("bridge connect {}: {e}", target.url);
            inner.reason.replace(Some(format!("could not connect: {e}")));
            let (now, random) = clock();
            inner.step(|m| m.connect_failed(conn, now, random));
            inner.settle().await;
            return;
        }
    };
    // Listeners first, then accept, so that no frame is missed.
    let mut events = match ws.events() {
        Ok(e) => e,
        Err(e) => {
            worker::console_error!("bridge socket events: {e}");
            let _ = ws.close(Some(1011), Some("internal error"));
            let (now, random) = clock();
            inner.step(|m| m.connect_failed(conn, now, random));
            inner.settle().await;
            return;
        }
    };
    if let Err(e) = ws.accept() {
        worker::console_error!("bridge socket accept: {e}");
        let (now, random) = clock();
        inner.step(|m| m.connect_failed(conn, now, random));
        inner.settle().await;
        return;
    }
    if !inner.socket_opened(conn, ws.clone()) {
        return;
    }
    let (now, random) = clock();
    inner.step(|m| m.opened(conn, now, random));
    inner.settle().await;
    let mut close: Option<(u16, String)> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(WebsocketEvent::Message(msg)) => {
                let Some(text) = msg.text() else { continue };
                let (now, random) = clock();
                inner.step(|m| m.text(conn, &text, now, random));
                inner.settle().await;
            }
            Ok(WebsocketEvent::Close(c)) => {
                close = Some((c.code(), c.reason()));
                break;
            }
            // An error is followed by a close event (or by the end of the stream).
            Err(e) => worker::console_warn!("bridge socket error: {e}"),
        }
    }
    drop(events);
    inner.socket_ended(conn);
    let (code, reason) = close.unwrap_or((1006, "connection lost".to_string()));
    // 1005 (no status) is a close without a code: treat it like a drop.
    let code = if code == 1005 { 1006 } else { code };
    inner.reason.replace(Some(format!("closed with {code}: {reason}")));
    let (now, random) = clock();
    inner.step(|m| m.closed(conn, code, &reason, now, random));
    inner.settle().await;
}
