// Baseline 1, the platform ceiling: a Durable Object that only broadcasts each frame it receives
// (over a socket, or as the body of POST /send/:room) to every socket it holds. No parsing, no
// storage, no auth: what workerd itself costs per delivery.
//
//   GET  /ws/:room     WebSocket upgrade (hibernatable), forwarded to the room's object
//   POST /send/:room   broadcast the body as one text frame
import { DurableObject } from "cloudflare:workers";

export class CeilingRoom extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  async fetch(request) {
    if (request.headers.get("upgrade") === "websocket") {
      const pair = new WebSocketPair();
      this.ctx.acceptWebSocket(pair[1]);
      return new Response(null, { status: 101, webSocket: pair[0] });
    }
    this.broadcast(await request.text());
    return new Response(null, { status: 204 });
  }

  webSocketMessage(_ws, message) {
    this.broadcast(message);
  }

  webSocketClose(ws, code) {
    try { ws.close(1000, "closed"); } catch {}
  }

  broadcast(frame) {
    for (const ws of this.ctx.getWebSockets()) {
      try { ws.send(frame); } catch {}
    }
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const m = url.pathname.match(/^\/(ws|send)\/([^/]+)$/);
    if (!m) return new Response("not found", { status: 404 });
    return env.ROOMS.getByName(m[2]).fetch(request);
  },
};
