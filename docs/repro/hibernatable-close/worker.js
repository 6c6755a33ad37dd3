// A Durable Object with hibernatable sockets and nothing else: GET /ws accepts one, GET /kick closes
// every socket with 4003 from an ordinary request. See README.md here.
export class Room {
  constructor(state) {
    this.state = state;
    state.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }
  async fetch(req) {
    const url = new URL(req.url);
    if (url.pathname === "/ws") {
      const pair = new WebSocketPair();
      this.state.acceptWebSocket(pair[1]);
      return new Response(null, { status: 101, webSocket: pair[0] });
    }
    if (url.pathname === "/kick") {
      for (const ws of this.state.getWebSockets()) ws.close(4003, "left");
      return new Response("ok");
    }
    return new Response("not found", { status: 404 });
  }
  async webSocketMessage() {}
  async webSocketClose() {}
}

export default {
  fetch: (req, env) => env.ROOM.get(env.ROOM.idFromName("a")).fetch(req),
};
