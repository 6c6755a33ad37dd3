// node client.mjs [first-frame]: opens a socket, optionally sends one frame, has the object close it
// from another request, and prints how long Node's `ws` took to report `close` (the TCP connection's end).
import WebSocket from "ws";
const first = process.argv[2];
const ws = new WebSocket("ws://127.0.0.1:8912/ws");
await new Promise((r) => ws.on("open", r));
if (first) ws.send(first);
await new Promise((r) => setTimeout(r, 200));
const t0 = performance.now();
const closed = new Promise((r) => ws.on("close", (code) => r(code)));
await fetch("http://127.0.0.1:8912/kick");
const code = await closed;
console.log(`first frame ${first ?? "(none)"}: close ${code} after ${Math.round(performance.now() - t0)} ms`);
