// Unmodified pusher-js 8 (client) and pusher 5 (HTTP SDK) against a local Switchboard.
// Started by tests/e2e/tests/pusher.rs with: SWITCHBOARD_URL, PUSHER_APP_ID, PUSHER_APP_KEY,
// PUSHER_APP_SECRET, WEBHOOK_PORT (the server posts its webhooks to 127.0.0.1:WEBHOOK_PORT).
// Every wait ends on an event (with a deadline), never on a fixed sleep.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import Pusher from 'pusher-js';
import PusherServer from 'pusher';

const BASE = process.env.SWITCHBOARD_URL;
const APP_ID = process.env.PUSHER_APP_ID;
const KEY = process.env.PUSHER_APP_KEY;
const SECRET = process.env.PUSHER_APP_SECRET;
const WEBHOOK_PORT = Number(process.env.WEBHOOK_PORT || 0);
assert.ok(BASE && APP_ID && KEY && SECRET, 'SWITCHBOARD_URL and PUSHER_APP_* must be set');
const url = new URL(BASE);
const DEADLINE_MS = 15000;
const rnd = () => crypto.randomBytes(6).toString('hex');

const sdk = new PusherServer({ appId: APP_ID, key: KEY, secret: SECRET, host: url.hostname, port: url.port, useTLS: false });
const clients = [];

// ---- webhooks: every request the server posts, checked with the SDK --------------------------------
const webhooks = [];
const hookServer = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const valid = sdk.webhook({ headers: req.headers, rawBody: body }).isValid();
    webhooks.push({ valid, body: JSON.parse(body) });
    res.writeHead(200).end('{}');
  });
});
if (WEBHOOK_PORT) hookServer.listen(WEBHOOK_PORT, '127.0.0.1');

after(() => {
  for (const c of clients) c.disconnect();
  hookServer.close();
});

// ---- helpers -----------------------------------------------------------------------------------------
async function until(what, pred, ms = DEADLINE_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function waitFor(bindable, event, pred = () => true, ms = DEADLINE_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), ms);
    const handler = (data) => {
      if (!pred(data)) return;
      clearTimeout(timer);
      bindable.unbind(event, handler);
      resolve(data);
    };
    bindable.bind(event, handler);
  });
}

async function token(userId) {
  const r = await fetch(`${BASE}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId }) });
  assert.equal(r.status, 200);
  return (await r.json()).token;
}

async function api(method, path, tok, body) {
  const r = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

function client(tok) {
  const headers = { Authorization: `Bearer ${tok}` };
  const c = new Pusher(KEY, {
    cluster: 'local',
    wsHost: url.hostname,
    wsPort: Number(url.port),
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: { endpoint: `${BASE}/pusher/auth`, transport: 'ajax', headers },
    userAuthentication: { endpoint: `${BASE}/pusher/user-auth`, transport: 'ajax', headers },
  });
  clients.push(c);
  return c;
}

async function connected(c) {
  if (c.connection.state !== 'connected') await waitFor(c.connection, 'connected');
  return c;
}

async function subscribed(c, name) {
  const ch = c.subscribe(name);
  if (!ch.subscribed) await waitFor(ch, 'pusher:subscription_succeeded');
  return ch;
}

/// A user with a token and a connected pusher-js client.
async function user(prefix) {
  const id = `${prefix}-${rnd()}`;
  const tok = await token(id);
  return { id, tok, c: await connected(client(tok)) };
}

/// Signs an HTTP API request as the SDK would (for the cases the SDK refuses to send).
function signed(method, path, params, body, { secret = SECRET, timestamp } = {}) {
  const all = { auth_key: KEY, auth_timestamp: String(timestamp ?? Math.floor(Date.now() / 1000)), auth_version: '1.0', ...params };
  if (body !== undefined) all.body_md5 = crypto.createHash('md5').update(body).digest('hex');
  const query = Object.keys(all).sort().map((k) => `${k}=${all[k]}`).join('&');
  const sig = crypto.createHmac('sha256', secret).update(`${method}\n${path}\n${query}`).digest('hex');
  return fetch(`${BASE}${path}?${query}&auth_signature=${sig}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body,
  });
}

// ---- tests -------------------------------------------------------------------------------------------
test('connects with a socket id and a 30 s activity timeout; public channel gets SDK events, not the excluded socket', async () => {
  const a = await user('pub');
  assert.match(a.c.connection.socket_id, /^\d+\.\d+$/);
  assert.equal(a.c.connection.activityTimeout, 30000);
  const name = `public-${rnd()}`;
  const ch = await subscribed(a.c, name);
  const got = [];
  ch.bind('greet', (d) => got.push(d));
  await sdk.trigger(name, 'greet', { n: 1 }, { socket_id: a.c.connection.socket_id });
  await sdk.trigger(name, 'greet', { n: 2 });
  await until('the second event', () => got.length >= 1);
  assert.deepEqual(got, [{ n: 2 }], 'the excluded socket never gets the first event');
});

test('private channel: authorized by /pusher/auth, gets events', async () => {
  const a = await user('priv');
  const name = `private-room-${rnd()}`;
  const ch = await subscribed(a.c, name);
  const got = waitFor(ch, 'hello');
  await sdk.trigger(name, 'hello', 'text data');
  assert.equal(await got, 'text data');
});

test('presence: two tabs of one user are one member; added and removed once each', async () => {
  const name = `presence-room-${rnd()}`;
  const watcher = await user('watch');
  const wch = await subscribed(watcher.c, name);
  assert.equal(wch.members.count, 1);
  assert.equal(wch.members.me.id, watcher.id);
  const added = [];
  const removed = [];
  wch.bind('pusher:member_added', (m) => added.push(m.id));
  wch.bind('pusher:member_removed', (m) => removed.push(m.id));
  const id = `tabs-${rnd()}`;
  const tok = await token(id);
  const tab1 = await connected(client(tok));
  const t1 = await subscribed(tab1, name);
  await until('member_added', () => added.length === 1);
  assert.equal(t1.members.count, 2);
  const tab2 = await connected(client(tok));
  const t2 = await subscribed(tab2, name);
  assert.equal(t2.members.count, 2, 'the second tab sees two members, not three');
  const users = await sdk.get({ path: `/channels/${name}/users` });
  assert.deepEqual((await users.json()).users.map((u) => u.id).sort(), [id, watcher.id].sort());
  tab1.disconnect();
  // tab1's departure must not remove the member: a server event sent after it arrives first
  const marker = waitFor(wch, 'marker');
  await until('tab1 gone', async () => {
    const r = await sdk.get({ path: `/channels/${name}`, params: { info: 'subscription_count' } });
    return (await r.json()).subscription_count === 2;
  });
  await sdk.trigger(name, 'marker', {});
  await marker;
  assert.deepEqual(removed, []);
  tab2.disconnect();
  await until('member_removed', () => removed.length === 1);
  assert.deepEqual(added, [id]);
  assert.deepEqual(removed, [id]);
});

test('auth refused: a non-member gets subscription_error 403; the channel keeps working for members', async () => {
  const owner = await user('owner');
  const stranger = await user('stranger');
  const conv = await api('POST', '/v1/conversations', owner.tok, { sandboxId: `sb${rnd()}` });
  assert.equal(conv.status, 201);
  const name = `private-conversation-${conv.body.conversationId}`;
  const ch = stranger.c.subscribe(name);
  const err = await waitFor(ch, 'pusher:subscription_error');
  assert.equal(err.type, 'AuthError');
  assert.equal(err.status, 403);
  const mine = await subscribed(owner.c, name);
  const got = waitFor(mine, 'message.created');
  const sent = await api('POST', '/v1/messages', owner.tok, { conversationId: conv.body.conversationId, content: [{ type: 'text', text: 'hi' }] });
  assert.equal(sent.status, 201);
  assert.equal((await got).messageId, sent.body.messageId);
});

test('client events: delivered to others, never echoed, carry user_id on presence, rate limited with 4301', async () => {
  const a = await user('ce-a');
  const b = await user('ce-b');
  const name = `presence-chat-${rnd()}`;
  const cha = await subscribed(a.c, name);
  const chb = await subscribed(b.c, name);
  const echoed = [];
  cha.bind('client-typing', (d) => echoed.push(d));
  const first = waitFor(chb, 'client-typing', () => true);
  let meta;
  chb.bind('client-typing', (_d, m) => (meta = meta ?? m));
  assert.ok(cha.trigger('client-typing', { on: true }));
  assert.deepEqual(await first, { on: true });
  assert.equal(meta?.user_id, a.id, 'presence client events name the sender');
  // the flood: 25 at once; about 10 pass, the rest are answered with pusher:error 4301
  const errors = [];
  a.c.connection.bind('error', (e) => errors.push(e));
  const got = [];
  chb.bind('client-burst', (d) => got.push(d));
  for (let i = 0; i < 25; i++) cha.trigger('client-burst', { i });
  await until('every burst event delivered or refused', () => got.length + errors.length >= 25);
  assert.ok(errors.length >= 10, `refused: ${errors.length}`);
  assert.ok(errors.every((e) => e.data?.code === 4301), JSON.stringify(errors[0]));
  assert.ok(got.length >= 8 && got.length <= 15, `delivered: ${got.length}`);
  // a server event sent after all of them arrives after any echo would have: there is none
  const marker = waitFor(cha, 'marker');
  await sdk.trigger(name, 'marker', {});
  await marker;
  assert.deepEqual(echoed, []);
  assert.equal(a.c.connection.state, 'connected', 'a burst is refused, not disconnected');
});

test('conversation channels: events as Pusher events, presence is the roster, signin', async () => {
  const a = await user('conv-a');
  const b = await user('conv-b');
  const conv = await api('POST', '/v1/conversations', a.tok, { sandboxId: `sb${rnd()}`, additionalMembers: [b.id] });
  assert.equal(conv.status, 201);
  const id = conv.body.conversationId;
  a.c.signin();
  await until('signin_success', () => a.c.user.user_data?.id === a.id);
  const events = await subscribed(a.c, `private-conversation-${id}`);
  const presence = await subscribed(a.c, `presence-conversation-${id}`);
  assert.equal(presence.members.me.id, a.id);
  const joined = waitFor(presence, 'pusher:member_added');
  await subscribed(b.c, `presence-conversation-${id}`);
  assert.equal((await joined).id, b.id);
  const created = waitFor(events, 'message.created');
  const onPresence = waitFor(presence, 'message.created');
  const sent = await api('POST', '/v1/messages', b.tok, { conversationId: id, content: [{ type: 'text', text: 'hello a' }] });
  assert.equal(sent.status, 201);
  const data = await created;
  assert.equal(data.messageId, sent.body.messageId);
  assert.equal(data.senderId, b.id);
  assert.equal((await onPresence).messageId, sent.body.messageId);
  const reacted = waitFor(events, 'reaction.added');
  const r = await api('POST', `/v1/messages/${sent.body.messageId}/reactions`, b.tok, { conversationId: id, emoji: '👍' });
  assert.equal(r.status, 201);
  assert.equal((await reacted).emoji, '👍');
  const renamed = waitFor(events, 'conversation.renamed');
  assert.equal((await api('PATCH', `/v1/conversations/${id}`, a.tok, { title: 'pushed' })).status, 200);
  assert.equal((await renamed).title, 'pushed');
});

test('HTTP API: batches, channel info, users; a bad signature is refused', async () => {
  const a = await user('sdk');
  const p1 = `presence-sdk-${rnd()}`;
  const pub = `public-sdk-${rnd()}`;
  const chp = await subscribed(a.c, p1);
  const chu = await subscribed(a.c, pub);
  const both = Promise.all([waitFor(chp, 'multi'), waitFor(chu, 'multi')]);
  const t = await sdk.trigger([p1, pub], 'multi', { m: 1 });
  assert.equal(t.status, 200);
  assert.deepEqual(await both, [{ m: 1 }, { m: 1 }]);
  const batched = Promise.all([waitFor(chp, 'b1'), waitFor(chu, 'b2')]);
  const b = await sdk.triggerBatch([
    { channel: p1, name: 'b1', data: { x: 1 } },
    { channel: pub, name: 'b2', data: 'two', info: 'subscription_count' },
  ]);
  assert.equal(b.status, 200);
  assert.deepEqual((await b.json()).batch, [{}, { subscription_count: 1 }]);
  assert.deepEqual(await batched, [{ x: 1 }, 'two']);
  const list = await (await sdk.get({ path: '/channels', params: { filter_by_prefix: p1, info: 'user_count' } })).json();
  assert.deepEqual(list, { channels: { [p1]: { user_count: 1 } } });
  const info = await (await sdk.get({ path: `/channels/${p1}`, params: { info: 'user_count,subscription_count' } })).json();
  assert.deepEqual(info, { occupied: true, user_count: 1, subscription_count: 1 });
  const empty = await (await sdk.get({ path: `/channels/public-nobody-${rnd()}` })).json();
  assert.deepEqual(empty, { occupied: false });
  const users = await (await sdk.get({ path: `/channels/${p1}/users` })).json();
  assert.deepEqual(users, { users: [{ id: a.id }] });
  const forger = new PusherServer({ appId: APP_ID, key: KEY, secret: 'not-the-secret', host: url.hostname, port: url.port, useTLS: false });
  await assert.rejects(forger.trigger(pub, 'x', {}), (e) => e.status === 401 && /signature/.test(e.body));
});

test('HTTP API bad input: each answers an error with a message, and the channel keeps working', async () => {
  const a = await user('bad');
  const name = `public-bad-${rnd()}`;
  const ch = await subscribed(a.c, name);
  const events = `/apps/${APP_ID}/events`;
  const ev = (extra) => JSON.stringify({ name: 'e', data: '{}', channels: [name], ...extra });
  const cases = [
    ['stale timestamp', 401, () => signed('POST', events, {}, ev(), { timestamp: Math.floor(Date.now() / 1000) - 3600 })],
    ['wrong secret', 401, () => signed('POST', events, {}, ev(), { secret: 'nope' })],
    ['no signature', 401, () => fetch(`${BASE}${events}`, { method: 'POST', body: ev() })],
    ['data over 10 KB', 413, () => signed('POST', events, {}, ev({ data: 'x'.repeat(10 * 1024 + 1) }))],
    ['101 channels', 400, () => signed('POST', events, {}, ev({ channels: Array.from({ length: 101 }, (_, i) => `c${i}`) }))],
    ['bad channel name', 400, () => signed('POST', events, {}, ev({ channels: ['bad name!'] }))],
    ['not JSON', 400, () => signed('POST', events, {}, '{nope')],
    ['no name', 400, () => signed('POST', events, {}, JSON.stringify({ data: '{}', channel: name }))],
    ['11 in a batch', 400, () => signed('POST', `/apps/${APP_ID}/batch_events`, {}, JSON.stringify({ batch: Array.from({ length: 11 }, () => ({ name: 'e', data: '{}', channel: name })) }))],
    ['user_count of a public channel', 400, () => signed('GET', `/apps/${APP_ID}/channels/${name}`, { info: 'user_count' })],
    ['users of a public channel', 400, () => signed('GET', `/apps/${APP_ID}/channels/${name}/users`, {})],
    ['another app', 404, () => signed('POST', `/apps/not-${APP_ID}/events`, {}, ev())],
  ];
  for (const [what, status, send] of cases) {
    const r = await send();
    const body = await r.json();
    assert.equal(r.status, status, `${what}: ${JSON.stringify(body)}`);
    assert.ok(typeof body.error === 'string' && body.error.length > 5, `${what}: ${JSON.stringify(body)}`);
  }
  const got = waitFor(ch, 'after');
  await sdk.trigger(name, 'after', { ok: true });
  assert.deepEqual(await got, { ok: true });
});

test('webhooks: occupied, vacated, member added and removed, client events; signed', { skip: !WEBHOOK_PORT }, async () => {
  const a = await user('hook-a');
  const b = await user('hook-b');
  const name = `presence-hook-${rnd()}`;
  const cha = await subscribed(a.c, name);
  const chb = await subscribed(b.c, name);
  // Each step waits until the server has done the previous one: the two sockets are two
  // connections, and the order of the webhooks is the order the server saw.
  const heard = waitFor(chb, 'client-hi');
  cha.trigger('client-hi', { h: 1 });
  await heard;
  const bLeft = waitFor(cha, 'pusher:member_removed', (m) => m.id === b.id);
  b.c.unsubscribe(name);
  await bLeft;
  a.c.unsubscribe(name);
  const seen = () => webhooks.flatMap((w) => w.body.events).filter((e) => e.channel === name);
  await until('webhooks for the channel', () => seen().some((e) => e.name === 'channel_vacated'));
  assert.ok(webhooks.every((w) => w.valid && typeof w.body.time_ms === 'number'));
  const names = seen().map((e) => (e.user_id && e.name !== 'client_event' ? `${e.name}:${e.user_id}` : e.name));
  assert.deepEqual(names, [
    'channel_occupied',
    `member_added:${a.id}`,
    `member_added:${b.id}`,
    'client_event',
    `member_removed:${b.id}`,
    `member_removed:${a.id}`,
    'channel_vacated',
  ]);
  const ce = seen().find((e) => e.name === 'client_event');
  assert.equal(ce.event, 'client-hi');
  assert.equal(ce.user_id, a.id);
  assert.deepEqual(JSON.parse(ce.data), { h: 1 });
});

// Last: it closes every Pusher socket of the app.
test('a 4200 close (server restart) makes pusher-js reconnect at once and resubscribe', async () => {
  const a = await user('re');
  const name = `public-re-${rnd()}`;
  const ch = await subscribed(a.c, name);
  const before = a.c.connection.socket_id;
  const again = waitFor(ch, 'pusher:subscription_succeeded');
  const r = await fetch(`${BASE}/dev/pusher/reconnect`, { method: 'POST' });
  assert.equal(r.status, 200);
  assert.ok((await r.json()).closed >= 1);
  await again;
  assert.notEqual(a.c.connection.socket_id, before);
  const got = waitFor(ch, 'back');
  await sdk.trigger(name, 'back', { ok: 1 });
  assert.deepEqual(await got, { ok: 1 });
});
