// A fake Kosmi for the Kosmi bridge's end-to-end tests (tests/e2e/tests/bridge_kosmi.rs), built on the real
// `graphql-ws` server (with `graphql` and `ws`), speaking what the bridge expects of engine.kosmi.io:
//   POST /            `mutation { anonLogin { token } }` -> {data:{anonLogin:{token}}} (a new token each time)
//   WS   /gql-ws      graphql-transport-ws; connection_init {token, ua, v, r}: an unknown or refused token is
//                     closed with 4403; `subscription OnNewMessage($roomId)`, `mutation JoinRoom($id)`,
//                     `mutation SendMessage($body, $roomId)`. A room delivers nothing to a connection that has not
//                     joined it, and on join it replays the room's last messages, the bridge's own included (as
//                     Kosmi's history does), so a reconnect sees old messages again. What the bridge sends is echoed
//                     back from its user.
// A second HTTP server, for the test, controls it (JSON):
//   GET  /state       counters: logins, connects, open, clientCloses, sent, joins, tokens refused
//   POST /inject      {room, id?, user, body}: a message from a person in the room
//   POST /drop        every socket dropped without a close frame (1006 at the client)
//   POST /refuse      every token issued so far is refused from now on (open sockets are dropped)
//   POST /stop        the Kosmi server stops listening (connections refused), sockets dropped
//   POST /start       it listens again on the same port
// Prints one line `{"kosmiPort":N,"controlPort":M}` when ready.
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { buildSchema } from 'graphql';

const schema = buildSchema(`
  type User { id: String! username: String displayName: String }
  type Message { id: String! body: String! time: Int user: User! }
  type Token { token: String! }
  type Ok { ok: Boolean! }
  type Query { hello: String }
  type Mutation { anonLogin: Token! joinRoom(id: String!): Ok! sendMessage(body: String!, roomId: String!): Ok! }
  type Subscription { newMessage(roomId: String!): Message! }
`);

const HISTORY = 3;
const state = { logins: 0, connects: 0, clientCloses: 0, serverDrops: 0, joins: 0, sent: [], refusedConnects: 0 };
const tokens = new Map(); // token -> user id
const refused = new Set();
const sockets = new Set();
const subscribers = new Set();
const history = new Map(); // room -> [message]
let nextId = 1;

function deliver(room, message, onlyTo) {
  for (const sub of subscribers) {
    if (sub.room !== room || !sub.socket.kosmi.joined.has(room)) continue;
    if (onlyTo && sub.socket !== onlyTo) continue;
    sub.push(message);
  }
}

function roomSubscription(socket, room) {
  const queue = [];
  let wake = null;
  let done = false;
  const sub = { socket, room, push(m) { queue.push(m); if (wake) { wake(); wake = null; } } };
  subscribers.add(sub);
  return {
    [Symbol.asyncIterator]() { return this; },
    async next() {
      while (!queue.length && !done) await new Promise((r) => (wake = r));
      if (done) return { done: true, value: undefined };
      return { done: false, value: { newMessage: queue.shift() } };
    },
    async return() {
      done = true;
      subscribers.delete(sub);
      if (wake) wake();
      return { done: true, value: undefined };
    },
  };
}

const mutations = schema.getMutationType().getFields();
mutations.anonLogin.resolve = () => {
  state.logins += 1;
  const token = `tok-${state.logins}-${Math.random().toString(36).slice(2)}`;
  tokens.set(token, `anon-${state.logins}`);
  return { token };
};
mutations.joinRoom.resolve = (_root, { id }, ctx) => {
  const socket = ctx.extra.socket;
  socket.kosmi.joined.add(id);
  state.joins += 1;
  // Kosmi shows a joining client the room's recent messages.
  for (const m of (history.get(id) || []).slice(-HISTORY)) deliver(id, m, socket);
  return { ok: true };
};
mutations.sendMessage.resolve = (_root, { body, roomId }, ctx) => {
  const socket = ctx.extra.socket;
  const userId = socket.kosmi.user;
  state.sent.push({ body, roomId, user: userId });
  const message = { id: `m${nextId++}`, body, time: Math.floor(Date.now() / 1000),
    user: { id: userId, username: userId, displayName: 'Anonymous' } };
  const list = history.get(roomId) || [];
  list.push(message);
  history.set(roomId, list);
  deliver(roomId, message);
  return { ok: true };
};
schema.getSubscriptionType().getFields().newMessage.subscribe = (_root, { roomId }, ctx) =>
  roomSubscription(ctx.extra.socket, roomId);

// ---- the Kosmi server ---------------------------------------------------------------------------
function graphqlHttp(req, res) {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    let q = '';
    try { q = JSON.parse(body).query || ''; } catch { /* not JSON */ }
    if (req.method === 'POST' && q.includes('anonLogin')) {
      res.end(JSON.stringify({ data: { anonLogin: mutations.anonLogin.resolve() } }));
    } else {
      res.statusCode = 400;
      res.end(JSON.stringify({ errors: [{ message: 'only anonLogin is served here' }] }));
    }
  });
}

const kosmi = http.createServer(graphqlHttp);
const wss = new WebSocketServer({ noServer: true });
kosmi.on('upgrade', (req, socket, head) => {
  if (!req.url.startsWith('/gql-ws')) { socket.destroy(); return; }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
wss.on('connection', (ws) => {
  state.connects += 1;
  ws.kosmi = { joined: new Set(), user: null, dropped: false };
  sockets.add(ws);
  ws.on('close', () => {
    sockets.delete(ws);
    if (!ws.kosmi.dropped) state.clientCloses += 1;
    for (const sub of [...subscribers]) if (sub.socket === ws) subscribers.delete(sub);
  });
});
useServer({
  schema,
  context: (ctx) => ctx,
  onConnect: (ctx) => {
    const token = ctx.connectionParams && ctx.connectionParams.token;
    if (typeof token !== 'string' || !tokens.has(token) || refused.has(token)) {
      state.refusedConnects += 1;
      return false; // graphql-ws closes with 4403 Forbidden
    }
    ctx.extra.socket.kosmi.user = tokens.get(token);
    return true;
  },
}, wss);

function dropAll() {
  for (const ws of sockets) { ws.kosmi.dropped = true; state.serverDrops += 1; ws.terminate(); }
}

let kosmiPort = 0;
function listen(port) {
  return new Promise((resolve) => kosmi.listen(port, '127.0.0.1', () => resolve(kosmi.address().port)));
}

// ---- control ------------------------------------------------------------------------------------
const control = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', async () => {
    let input = {};
    try { input = body ? JSON.parse(body) : {}; } catch { /* empty */ }
    const reply = (v) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(v)); };
    switch (`${req.method} ${req.url}`) {
      case 'GET /state':
        return reply({ ...state, open: sockets.size, listening: kosmi.listening,
          joinedOpen: [...sockets].filter((s) => s.kosmi.joined.size > 0).length });
      case 'POST /inject': {
        const message = { id: input.id || `m${nextId++}`, body: input.body, time: Math.floor(Date.now() / 1000),
          user: { id: input.user, username: input.user, displayName: `${input.user} D` } };
        const list = history.get(input.room) || [];
        list.push(message);
        history.set(input.room, list);
        deliver(input.room, message);
        return reply({ id: message.id });
      }
      case 'POST /drop': dropAll(); return reply({ ok: true });
      case 'POST /refuse':
        for (const t of tokens.keys()) refused.add(t);
        dropAll();
        return reply({ ok: true });
      case 'POST /stop':
        kosmi.close();
        dropAll();
        kosmi.closeAllConnections();
        return reply({ ok: true });
      case 'POST /start':
        if (!kosmi.listening) await listen(kosmiPort);
        return reply({ ok: true });
      default:
        res.statusCode = 404;
        return reply({ error: 'no such control' });
    }
  });
});

kosmiPort = await listen(0);
await new Promise((r) => control.listen(0, '127.0.0.1', r));
process.stdout.write(JSON.stringify({ kosmiPort, controlPort: control.address().port }) + '\n');
process.on('SIGTERM', () => process.exit(0));
