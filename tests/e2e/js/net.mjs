// A network the tests can cut: the `ws` WebSocket and fetch, wrapped so that `net.down()` kills every
// open socket without a close frame (as a dropped network does: the client sees 1006) and makes
// requests fail, and `net.up()` restores them. While down, a request other than a connect ticket
// still reaches the server but its answer is lost (the worst case for a send: did it land?).
// Every frame in and out is recorded per socket (`net.sockets`), for the frame-schema checks.
import WebSocket from "ws";

const nets = [];

/** Cuts every socket of every net made, once the clients are closed: a closing handshake left
 *  waiting would keep node alive. */
export function cutAll() {
  for (const n of nets) for (const s of n.sockets) s.ws.terminate();
}

export function makeNet() {
  const net = {
    isDown: false,
    sockets: [],
    listeners: new Set(),
    /** calls fn after every frame received or sent, and every socket open/close */
    onChange(fn) {
      this.listeners.add(fn);
      return () => this.listeners.delete(fn);
    },
    changed() {
      for (const fn of [...this.listeners]) fn();
    },
    down() {
      this.isDown = true;
      for (const s of this.sockets) if (s.ws.readyState <= 1) s.ws.terminate();
    },
    up() {
      this.isDown = false;
      this.changed();
    },
  };

  nets.push(net);

  class NetWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      const rec = { url: String(url), path: new URL(url).pathname, ws: this, received: [], sent: [] };
      net.sockets.push(rec);
      if (net.isDown) queueMicrotask(() => this.terminate());
      this.addEventListener("message", (ev) => {
        rec.received.push(typeof ev.data === "string" ? ev.data : "<binary>");
        net.changed();
      });
      this.addEventListener("close", () => net.changed());
      this.addEventListener("open", () => net.changed());
      const send = this.send.bind(this);
      this.send = (data) => {
        rec.sent.push(data);
        send(data);
        net.changed();
      };
    }
  }

  const fetchFn = async (url, init) => {
    if (net.isDown && String(url).endsWith("/connect-ticket")) throw new TypeError("fetch failed (network down)");
    const res = await fetch(url, init);
    const text = await res.text();
    if (net.isDown) throw new TypeError("fetch failed (network down; the answer was lost)");
    net.changed();
    return { status: res.status, text: async () => text };
  };

  return { net, WebSocket: NetWebSocket, fetch: fetchFn };
}

/** Resolves when `pred()` is true, re-checked on every change of `net` (no fixed sleeps); fails after `ms`. */
export function waitFor(net, what, pred, ms = 20000) {
  return new Promise((resolve, reject) => {
    const check = () => {
      let v;
      try {
        v = pred();
      } catch (e) {
        done();
        reject(e);
        return;
      }
      if (v) {
        done();
        resolve(v);
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
    const off = net.onChange(check);
    const poll = setInterval(check, 50); // state held outside the sockets (timers of the library) changes too
    function done() {
      clearTimeout(timer);
      clearInterval(poll);
      off();
    }
    check();
  });
}
