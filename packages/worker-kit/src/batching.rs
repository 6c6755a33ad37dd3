//! Adaptive multi-event frames for an object's opted-in sockets (`switchboard_core::batch` decides;
//! this carries it out). A socket opts in through its attachment's `batch: true`; the JavaScript
//! side remembers each socket's kind (read once per socket and wake from its attachment), so a
//! broadcast stays one call: `broadcast` sends every frame as today to the sockets that did not opt
//! in, and hands the frames to the batcher for those that did. When the batcher becomes busy, the
//! returned future (run it with `waitUntil`) ticks after each runtime turn until a turn adds nothing.
//!
//! [`SocketBatcher`] serves objects that send every frame to every socket (a conversation);
//! [`PerSocketBatcher`] serves those whose sockets each get their own frames (the hub: each socket
//! follows its own contexts), over `switchboard_core::batch::PerSocket`, with the same tick.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use switchboard_core::batch::{Batcher, Out, PerSocket};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = "const kinds = new WeakMap();
function isBatched(ws) { let k = kinds.get(ws); if (k === undefined) { k = false; try { const a = ws.deserializeAttachment(); k = !!(a && a.batch === true); } catch (_) {} kinds.set(ws, k); } return k; }
export function broadcast_unbatched(state, frame) { let b = 0; for (const ws of state.getWebSockets()) { if (isBatched(ws)) { b++; continue; } try { ws.send(frame); } catch (_) {} } return b; }
export function broadcast_batched(state, frame, skip) { let n = 0; for (const ws of state.getWebSockets()) { if (!isBatched(ws) || (skip.length > 0 && skip.includes(ws))) continue; try { ws.send(frame); n++; } catch (_) {} } return n; }
export function socket_batched(ws) { return isBatched(ws); }
export function count_batched(state) { let b = 0; for (const ws of state.getWebSockets()) { if (isBatched(ws)) b++; } return b; }")]
extern "C" {
    fn broadcast_unbatched(state: &JsValue, frame: &str) -> u32;
    fn broadcast_batched(state: &JsValue, frame: &str, skip: &js_sys::Array) -> u32;
    fn socket_batched(ws: &JsValue) -> bool;
    fn count_batched(state: &JsValue) -> u32;
}

/// A socket, compared by JavaScript identity.
#[derive(Clone, PartialEq)]
pub struct SocketKey(JsValue);

/// The batcher of one object, shared with its tick future.
#[derive(Clone)]
pub struct SocketBatcher {
    state: JsValue,
    inner: Rc<RefCell<Batcher<SocketKey>>>,
}

fn js(ws: &worker::WebSocket) -> &JsValue {
    let raw: &worker::web_sys::WebSocket = ws.as_ref();
    raw.as_ref()
}

impl SocketBatcher {
    /// The batcher of the object whose JavaScript `DurableObjectState` is `state`.
    pub fn new(state: JsValue) -> Self {
        SocketBatcher { state, inner: Rc::new(RefCell::new(Batcher::new())) }
    }

    /// Sends frames (commit order) to every socket: as today to those that did not opt in; to those
    /// that did, now or at the next tick. Answers the tick future when the batcher just became busy.
    pub fn broadcast(&self, frames: Vec<String>) -> Option<impl Future<Output = ()> + 'static> {
        if frames.is_empty() {
            return None;
        }
        let mut batched = 0;
        for f in &frames {
            batched = broadcast_unbatched(&self.state, f);
        }
        if batched == 0 && !self.inner.borrow().busy() {
            return None;
        }
        let out = self.inner.borrow_mut().ready(frames);
        self.deliver(out)
    }

    /// Whether this socket opted in.
    pub fn is_batched(ws: &worker::WebSocket) -> bool {
        socket_batched(js(ws))
    }

    /// A frame for one socket (an ack, an error): after the events that wait, if it opted in.
    pub fn reply(&self, ws: &worker::WebSocket, frame: String) {
        if !Self::is_batched(ws) {
            let _ = ws.send_with_str(&frame);
            return;
        }
        let now = self.inner.borrow_mut().reply(SocketKey(js(ws).clone()), frame);
        if let Some(frame) = now {
            let _ = ws.send_with_str(&frame);
        }
    }

    /// Sends what waits now (before a socket is accepted or closed).
    pub fn flush(&self) {
        let out = self.inner.borrow_mut().flush();
        self.deliver(out);
    }

    /// How many of the object's sockets opted in.
    pub fn opted_in(&self) -> u32 {
        count_batched(&self.state)
    }

    fn deliver(&self, out: Out<SocketKey>) -> Option<impl Future<Output = ()> + 'static> {
        let tick = out.schedule_tick;
        send(&self.state, out);
        tick.then(|| {
            let me = self.clone();
            ticks(move || {
                let out = me.inner.borrow_mut().tick();
                let again = out.schedule_tick;
                send(&me.state, out);
                again
            })
        })
    }
}

/// Calls `tick` after each runtime turn (a zero-delay timer) until it answers that nothing was sent.
async fn ticks(mut tick: impl FnMut() -> bool + 'static) {
    loop {
        crate::platform::sleep_ms(0).await;
        if !tick() {
            break;
        }
    }
}

fn send_to(k: &SocketKey, frames: &[String]) {
    let ws: &worker::web_sys::WebSocket = k.0.unchecked_ref();
    for f in frames {
        let _ = ws.send_with_str(f);
    }
}

/// The batchers of an object whose opted-in sockets each get their own frames (the hub), shared
/// with its tick future. Only for sockets that opted in ([`SocketBatcher::is_batched`]): the
/// others are sent to as today by the caller.
#[derive(Clone, Default)]
pub struct PerSocketBatcher {
    inner: Rc<RefCell<PerSocket<SocketKey>>>,
}

impl PerSocketBatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames for one opted-in socket, in order: now or at the next tick. Answers the tick future
    /// when the first socket just became busy (run it with `waitUntil`).
    pub fn ready(&self, ws: &worker::WebSocket, frames: Vec<String>) -> Option<impl Future<Output = ()> + 'static> {
        let key = SocketKey(js(ws).clone());
        let now = self.inner.borrow_mut().ready(key.clone(), frames);
        send_to(&key, &now.frames);
        now.schedule_tick.then(|| {
            let me = self.clone();
            ticks(move || {
                let (out, again) = me.inner.borrow_mut().tick();
                for (k, frames) in &out {
                    send_to(k, frames);
                }
                again
            })
        })
    }

    /// A frame for one socket (an answer, an error): after the frames that wait for it, if it
    /// opted in; at once otherwise.
    pub fn reply(&self, ws: &worker::WebSocket, frame: String) {
        let now = if SocketBatcher::is_batched(ws) {
            self.inner.borrow_mut().reply(&SocketKey(js(ws).clone()), frame)
        } else {
            Some(frame)
        };
        if let Some(frame) = now {
            let _ = ws.send_with_str(&frame);
        }
    }

    /// Sends what waits for this socket now (before it is closed).
    pub fn flush(&self, ws: &worker::WebSocket) {
        let key = SocketKey(js(ws).clone());
        let frames = self.inner.borrow_mut().flush(&key);
        send_to(&key, &frames);
    }

    /// Sends what waits for every socket now (before sockets are closed in bulk).
    pub fn flush_all(&self) {
        let all = self.inner.borrow_mut().flush_all();
        for (k, frames) in &all {
            send_to(k, frames);
        }
    }

    /// The socket is gone: what waited for it is dropped.
    pub fn forget(&self, ws: &worker::WebSocket) {
        self.inner.borrow_mut().forget(&SocketKey(js(ws).clone()));
    }
}

fn send(state: &JsValue, out: Out<SocketKey>) {
    let skip = js_sys::Array::new();
    for (k, _) in &out.own {
        skip.push(&k.0);
    }
    for frame in &out.all {
        broadcast_batched(state, frame, &skip);
    }
    for (k, frames) in &out.own {
        send_to(k, frames);
    }
}
