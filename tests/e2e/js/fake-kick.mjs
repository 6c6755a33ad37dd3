// Kick's side for the Kick bridge's end-to-end tests (tests/e2e/tests/bridge_kick.rs). The Pusher server is
// Switchboard's own protocol-7 endpoint (`/app/{key}`); this script stands between it and the bridge and plays
// the rest of Kick:
//   WS   /app/...            a pass-through to the Switchboard Pusher endpoint (frames both ways; a close code
//                            from the endpoint is passed on as is), so the test can also cut a connection without
//                            a close frame (1006 at the bridge) or present an unknown app key (the endpoint then
//                            closes with 4001)
//   POST /public/v1/chat     Kick's chat API: records {authorization, body}; answers {data:{is_sent, message_id}}
// Control (JSON, for the test):
//   POST /upstream {base, appId, key, secret}   where the Pusher endpoint is (and the pusher SDK's credentials)
//   POST /trigger {channel, event, data}        publishes through the endpoint's signed HTTP API (pusher SDK)
//   POST /cut                                   every bridge connection dropped without a close frame
//   POST /bad-key {on}                          new connections ask the endpoint for an unknown app key
//   POST /refuse-chat {on}                      the chat API answers 403 (Kick's bot protection)
//   POST /echo {channel}                        as Kick does, each message the chat API accepts is then shown in
//                                               that chatroom: published there as a ChatMessageEvent of the
//                                               bot's account (before the API request is recorded)
//   GET  /state                                 connects, open, clientCloses, chat (the API requests)
// Prints one line `{"kickPort":N,"controlPort":M}` when ready.
import http from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import PusherServer from 'pusher';

const state = { connects: 0, clientCloses: 0, upstreamCloses: [], chat: [] };
const links = new Set(); // {down, up, cut}
let upstream = null;
let sdk = null;
let badKey = false;
let refuseChat = false;
let echoChannel = null;

function readBody(req) {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => resolve(body));
  });
}

const kick = http.createServer(async (req, res) => {
  const body = await readBody(req);
  res.setHeader('content-type', 'application/json');
  if (req.method === 'POST' && req.url === '/public/v1/chat') {
    let parsed = null;
    try { parsed = JSON.parse(body); } catch { /* recorded as null */ }
    const record = { authorization: req.headers.authorization || null, body: parsed };
    if (refuseChat) {
      state.chat.push(record);
      res.statusCode = 403;
      res.end(JSON.stringify({ message: 'Request blocked by security policy.' }));
      return;
    }
    const messageId = `km-${state.chat.length + 1}`;
    if (echoChannel && sdk && parsed && typeof parsed.content === 'string') {
      await sdk.trigger(echoChannel, 'App\\Events\\ChatMessageEvent', {
        id: messageId, chatroom_id: Number(echoChannel.split('.')[1]), content: parsed.content, type: 'message',
        created_at: new Date().toISOString(),
        sender: { id: 999, username: 'SwitchboardBot', slug: 'switchboardbot', identity: { color: '#FFFFFF', badges: [] } },
      });
    }
    state.chat.push(record);
    res.end(JSON.stringify({ data: { is_sent: true, message_id: messageId } }));
    return;
  }
  res.statusCode = 404;
  res.end(JSON.stringify({ message: 'not found' }));
});

const wss = new WebSocketServer({ noServer: true });
kick.on('upgrade', (req, socket, head) => {
  if (!req.url.startsWith('/app/') || !upstream) { socket.destroy(); return; }
  wss.handleUpgrade(req, socket, head, (down) => {
    state.connects += 1;
    const path = badKey ? req.url.replace(/^\/app\/[^?]*/, '/app/unknown-key') : req.url;
    const up = new WebSocket(`${upstream.base}${path}`);
    const link = { down, up, cut: false };
    links.add(link);
    const pending = [];
    up.on('open', () => { for (const m of pending.splice(0)) up.send(m); });
    up.on('message', (data, isBinary) => {
      if (down.readyState === WebSocket.OPEN) down.send(isBinary ? data : data.toString());
    });
    up.on('close', (code, reason) => {
      state.upstreamCloses.push(code);
      if (link.cut || down.readyState !== WebSocket.OPEN) return;
      if (code >= 3000 && code <= 4999) down.close(code, reason.toString());
      else down.terminate();
    });
    up.on('error', () => { if (down.readyState === WebSocket.OPEN) down.terminate(); });
    down.on('message', (data) => {
      const text = data.toString();
      if (up.readyState === WebSocket.OPEN) up.send(text); else pending.push(text);
    });
    down.on('close', () => {
      links.delete(link);
      if (!link.cut) state.clientCloses += 1;
      if (up.readyState === WebSocket.OPEN || up.readyState === WebSocket.CONNECTING) up.terminate();
    });
  });
});

const control = http.createServer(async (req, res) => {
  const raw = await readBody(req);
  let input = {};
  try { input = raw ? JSON.parse(raw) : {}; } catch { /* empty */ }
  const reply = (v, status = 200) => {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(v));
  };
  try {
    switch (`${req.method} ${req.url}`) {
      case 'GET /state':
        return reply({ ...state, open: links.size });
      case 'POST /upstream': {
        upstream = input;
        const url = new URL(input.base);
        sdk = new PusherServer({ appId: input.appId, key: input.key, secret: input.secret, host: url.hostname,
          port: url.port, useTLS: false });
        return reply({ ok: true });
      }
      case 'POST /trigger': {
        const r = await sdk.trigger(input.channel, input.event, input.data);
        return reply({ status: r.status });
      }
      case 'POST /cut':
        for (const link of links) { link.cut = true; link.down.terminate(); link.up.terminate(); }
        return reply({ ok: true });
      case 'POST /refuse-chat':
        refuseChat = !!input.on;
        return reply({ ok: true });
      case 'POST /echo':
        echoChannel = input.channel || null;
        return reply({ ok: true });
      case 'POST /bad-key':
        badKey = !!input.on;
        return reply({ ok: true });
      default:
        return reply({ error: 'no such control' }, 404);
    }
  } catch (e) {
    return reply({ error: String(e && e.message || e) }, 500);
  }
});

await new Promise((r) => kick.listen(0, '127.0.0.1', r));
await new Promise((r) => control.listen(0, '127.0.0.1', r));
process.stdout.write(JSON.stringify({ kickPort: kick.address().port, controlPort: control.address().port }) + '\n');
process.on('SIGTERM', () => process.exit(0));
