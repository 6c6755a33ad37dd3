// Unit tests of the conversation and live sockets, reconnect, outbox, typing and errors (the hub's are in
// hub.test.ts), with a fake socket and fake time.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  backoffDelay,
  ConversationSocket,
  LiveSocket,
  Outbox,
  RestClient,
  SwitchboardError,
  TypingNotifier,
  type Message,
  type SentMessage,
} from "../src/index.js";
import { BASE, C, ev, FakeSocket, fakeEnv, flush, msg } from "./fakes.js";


test("backoff: jittered in [d/2, d], doubling from 500 ms, capped at 30 s", () => {
  for (const [attempt, d] of [[0, 500], [1, 1000], [2, 2000], [6, 30_000], [40, 30_000]] as const) {
    assert.equal(backoffDelay(attempt, () => 0), d / 2);
    assert.equal(backoffDelay(attempt, () => 0.999999), d);
    const mid = backoffDelay(attempt, () => 0.5);
    assert.ok(mid > d / 2 && mid < d, `${attempt}: ${mid}`);
  }
});

test("conversation socket: a drop reconnects with a new ticket and ?since=, and the app gets each missed event exactly once, in order", async () => {
  const env = fakeEnv();
  const rest = new RestClient(BASE, "tok", env);
  const s = new ConversationSocket(rest, C, env);
  const seen: number[] = [];
  const states: string[] = [];
  s.on("event", (f) => seen.push(f.seq!));
  s.on("state", (st) => states.push(st));
  await flush();
  const first = FakeSocket.last();
  assert.equal(first.url, `ws://127.0.0.1:8787/v1/conversations/${C}/ws?ticket=t1&batch=1`);
  first.open();
  first.push({ type: "ready", seq: 2 });
  first.push(ev(3));
  first.push(ev(4));
  first.drop(1006);
  assert.equal(s.state, "reconnecting");
  // nothing happens before the backoff runs out
  await env.clock.advance(200);
  assert.equal(FakeSocket.all.length, 1);
  await env.clock.advance(1000);
  assert.equal(FakeSocket.all.length, 2);
  const second = FakeSocket.last();
  assert.equal(second.query().get("since"), "4");
  assert.equal(second.query().get("ticket"), "t2", "a new ticket per connect");
  second.open();
  // a replay overlapping what was seen, and a batched text frame (two frames, one per line)
  second.push(ev(4));
  second.push(`${JSON.stringify(ev(5))}\n${JSON.stringify(ev(6))}`);
  second.push({ type: "ready", seq: 6 });
  second.push(ev(7));
  assert.deepEqual(seen, [3, 4, 5, 6, 7]);
  assert.equal(s.seq, 7);
  assert.deepEqual(states, ["open", "reconnecting", "open"]);
  s.close();
  assert.equal(s.state, "closed");
  assert.equal(env.clock.pending(), 0, "no timer left after close");
});

test("conversation socket: resync sets the position and asks for a refetch; ephemeral events pass without seq", async () => {
  const env = fakeEnv();
  const s = new ConversationSocket(new RestClient(BASE, "tok", env), C, env, { since: 10 });
  const resyncs: number[] = [];
  const names: string[] = [];
  s.on("resync", (r) => resyncs.push(r.seq));
  s.on("event", (f) => names.push(f.event));
  await flush();
  const ws = FakeSocket.last();
  assert.equal(ws.query().get("since"), "10");
  ws.open();
  ws.push({ type: "resync", seq: 2000 });
  ws.push({ type: "ready", seq: 2000 });
  ws.push({ type: "event", event: "typing", payload: { memberId: "bob" } });
  ws.push(ev(2001));
  assert.deepEqual(resyncs, [2000]);
  assert.deepEqual(names, ["typing", "message.deleted"]);
  assert.equal(s.seq, 2001);
  s.close();
});

test("conversation socket: 4003 (left) closes for good; backoff grows while the server stays away", async () => {
  const env = fakeEnv();
  const s = new ConversationSocket(new RestClient(BASE, "tok", env), C, env);
  await flush();
  FakeSocket.last().drop(1006); // never opened
  await env.clock.advance(500);
  assert.equal(FakeSocket.all.length, 2);
  FakeSocket.last().drop(1006);
  await env.clock.advance(500);
  assert.equal(FakeSocket.all.length, 2, "second wait is longer than the first");
  await env.clock.advance(500);
  assert.equal(FakeSocket.all.length, 3);
  const ws = FakeSocket.last();
  ws.open();
  ws.push({ type: "ready", seq: 0 });
  let closed: number | null = null;
  s.on("closed", (c) => (closed = c.code));
  ws.drop(4003, "left");
  await env.clock.advance(120_000);
  assert.equal(closed, 4003);
  assert.equal(s.state, "closed");
  assert.equal(FakeSocket.all.length, 3);
});

test("conversation socket: createMessage resolves on its ack and fails when the socket drops first", async () => {
  const env = fakeEnv();
  const s = new ConversationSocket(new RestClient(BASE, "tok", env), C, env);
  await flush();
  const ws = FakeSocket.last();
  ws.open();
  ws.push({ type: "ready", seq: 0 });
  const p = s.createMessage({ content: [{ type: "text", text: "hi" }], clientId: "k1" });
  const [sent] = ws.frames();
  assert.equal(sent.type, "message.create");
  assert.equal(sent.clientId, "k1");
  ws.push({ type: "message.ack", requestId: sent.requestId, messageId: "M1", message: msg("M1", "k1"), duplicate: false });
  assert.equal((await p).messageId, "M1");
  const lost = s.createMessage({ content: [{ type: "text", text: "x" }] });
  ws.drop(1006);
  await assert.rejects(lost, (e: SwitchboardError) => e.code === "network");
  s.close();
});

test("a ticket refused for good (403) closes the socket; a network failure is retried", async () => {
  let fail: "network" | "forbidden" = "network";
  const env = fakeEnv();
  const realFetch = env.fetch;
  env.fetch = async (url, init) => {
    if (url.endsWith("/connect-ticket")) {
      if (fail === "network") throw new TypeError("fetch failed");
      return { status: 403, text: async () => JSON.stringify({ error: { code: "forbidden", message: "no" } }) };
    }
    return realFetch(url, init);
  };
  const s = new ConversationSocket(new RestClient(BASE, "tok", env), C, env);
  let closed: SwitchboardError | undefined;
  s.on("closed", (c) => (closed = c.error));
  await flush();
  assert.equal(s.state, "reconnecting");
  fail = "forbidden";
  await env.clock.advance(1000);
  assert.equal(s.state, "closed");
  assert.equal(closed?.code, "forbidden");
  assert.equal(FakeSocket.all.length, 0);
});

test("a socket pings at open and every period; a silent connection (no pong for a whole ping period) is dropped and reopened", async () => {
  const env = fakeEnv();
  const s = new ConversationSocket(new RestClient(BASE, "tok", env), C, env);
  await flush();
  const ws = FakeSocket.last();
  ws.open();
  // the first ping goes at open (it lets the server's closes of this socket complete at once)
  assert.deepEqual(ws.sent, ["ping"]);
  ws.push("pong");
  ws.push({ type: "ready", seq: 0 });
  await env.clock.advance(15_000);
  assert.deepEqual(ws.sent, ["ping", "ping"]);
  ws.push("pong");
  await env.clock.advance(15_000);
  assert.deepEqual(ws.sent, ["ping", "ping", "ping"]);
  // no pong this time
  await env.clock.advance(15_000);
  assert.ok(ws.closedWith, "the dead socket was closed");
  await env.clock.advance(1000);
  assert.equal(FakeSocket.all.length, 2);
  assert.equal(FakeSocket.last().query().get("since"), "0");
  s.close();
});

test("live: acks the count of frames received, after 64 frames or 200 ms; counts restart per connection", async () => {
  const env = fakeEnv();
  const live = new LiveSocket(new RestClient(BASE, "tok", env), C, env);
  const lines: unknown[] = [];
  live.on("line", (v) => lines.push(v));
  await flush();
  const ws = FakeSocket.last();
  assert.match(ws.url, new RegExp(`/v1/conversations/${C}/live\\?ticket=t1$`));
  ws.open();
  const line = (v: unknown) => ({ type: "line", from: "bot:kiloclaw:sb1", line: v });
  for (let i = 0; i < 64; i++) ws.push(line({ delta: i }));
  ws.push("pong");
  assert.deepEqual(ws.frames(), [{ type: "ack", received: 64 }]);
  ws.push(line([1, 2]));
  await env.clock.advance(200);
  assert.deepEqual(ws.frames().at(-1), { type: "ack", received: 65 });
  assert.equal(lines.length, 65);
  assert.deepEqual(lines[64], [1, 2]);
  ws.drop(1006);
  await env.clock.advance(1000);
  const again = FakeSocket.last();
  again.open();
  again.push(line({ delta: "after" }));
  await env.clock.advance(200);
  assert.deepEqual(again.frames(), [{ type: "ack", received: 1 }]);
  // the bot went offline: closed for good by default
  again.drop(4002, "bot is not online");
  await env.clock.advance(60_000);
  assert.equal(live.state, "closed");
});

test("outbox: a send whose answer is lost is retried with the same clientId until answered; the server's duplicate answer resolves it once", async () => {
  const env = fakeEnv();
  const stored = new Map<string, Message>();
  let network = false;
  const posts: string[] = [];
  const transport = async (m: { clientId?: string; content: unknown }): Promise<SentMessage> => {
    posts.push(m.clientId!);
    // the request reaches the server, which stores it, but the answer is lost while the network is down
    const had = stored.get(m.clientId!);
    const message = had ?? msg(`M${stored.size + 1}`, m.clientId!);
    stored.set(m.clientId!, message);
    if (!network) throw new SwitchboardError(0, "network", "down");
    return { messageId: message.id, message, clientId: m.clientId, duplicate: !!had };
  };
  const outbox = new Outbox(transport, env);
  const a = outbox.send({ conversationId: C, content: [{ type: "text", text: "a" }] });
  const b = outbox.send({ conversationId: C, content: [{ type: "text", text: "b" }], clientId: "mine" });
  let resolved = 0;
  a.done.then(() => resolved++);
  await flush();
  assert.equal(outbox.entries.length, 2);
  assert.equal(outbox.entries[0]!.state, "waiting");
  await env.clock.advance(5_000);
  assert.ok(posts.length >= 3, `retried: ${posts}`);
  assert.ok(posts.every((p) => p === a.clientId), "b waits for a: order kept");
  network = true;
  await env.clock.advance(20_000);
  const ra = await a.done;
  const rb = await b.done;
  assert.equal(resolved, 1);
  assert.equal(ra.duplicate, true);
  assert.equal(ra.messageId, "M1");
  assert.equal(rb.messageId, "M2");
  assert.equal(b.clientId, "mine");
  assert.equal(stored.size, 2, "no duplicate message");
  assert.deepEqual(outbox.entries, []);
});

test("outbox: retryNow skips the wait; a 4xx is final; bounded; restored entries are sent", async () => {
  const env = fakeEnv();
  let mode: "down" | "ok" | "refuse" = "down";
  const sent: string[] = [];
  const transport = async (m: { clientId?: string }): Promise<SentMessage> => {
    if (mode === "down") throw new SwitchboardError(503, "internal", "later");
    if (mode === "refuse") throw new SwitchboardError(400, "invalid_request", "content: bad");
    sent.push(m.clientId!);
    return { messageId: "M", message: msg("M", m.clientId!) };
  };
  const outbox = new Outbox(transport, env, { max: 2, restore: [{ clientId: "old", conversationId: C, content: [{ type: "text", text: "o" }], queuedAt: 0, attempts: 3, state: "waiting" }] });
  const x = outbox.send({ conversationId: C, content: [{ type: "text", text: "x" }] });
  assert.throws(() => outbox.send({ conversationId: C, content: [{ type: "text", text: "y" }] }), (e: SwitchboardError) => e.code === "outbox_full");
  await flush();
  mode = "ok";
  outbox.retryNow();
  await x.done;
  assert.deepEqual(sent, ["old", x.clientId]);
  mode = "refuse";
  const z = outbox.send({ conversationId: C, content: [{ type: "text", text: "z" }] });
  const failed: string[] = [];
  outbox.on("failed", (f) => failed.push(f.error.code));
  await assert.rejects(z.done, (e: SwitchboardError) => e.code === "invalid_request");
  assert.deepEqual(failed, ["invalid_request"]);
  assert.deepEqual(outbox.entries, []);
});

test("typing: one start per 3 s while typing, a stop after 5 s idle or on stop(), none without a start", async () => {
  const env = fakeEnv();
  const out: string[] = [];
  const t = new TypingNotifier((stop) => out.push(`${stop ? "stop" : "start"}@${env.clock.now() - 1_700_000_000_000}`), env);
  t.stop();
  assert.deepEqual(out, []);
  for (let i = 0; i < 8; i++) {
    t.keystroke();
    await env.clock.advance(1000);
  }
  assert.deepEqual(out, ["start@0", "start@3000", "start@6000"]);
  await env.clock.advance(4000); // last keystroke at 7000: idle until 12000
  assert.deepEqual(out.slice(3), ["stop@12000"]);
  t.keystroke();
  t.stop();
  t.stop();
  assert.deepEqual(out.slice(4), ["start@12000", "stop@12000"]);
});

test("typing: the throttle survives stops, as the server's does: typing again soon after a stop starts when the window ends", async () => {
  const env = fakeEnv();
  const out: string[] = [];
  const t = new TypingNotifier((stop) => out.push(`${stop ? "stop" : "start"}@${env.clock.now() - 1_700_000_000_000}`), env);
  t.keystroke(); // start@0
  await env.clock.advance(500);
  t.stop(); // sent: stop@500
  await env.clock.advance(500);
  t.keystroke(); // within the server's window: waits for 3000 (+ margin)
  await env.clock.advance(1000);
  t.keystroke();
  assert.deepEqual(out, ["start@0", "stop@500"]);
  await env.clock.advance(1300);
  assert.deepEqual(out, ["start@0", "stop@500", "start@3250"]);
  // a stop before the window ends cancels the waiting start, and sends no stop (nothing started)
  t.stop();
  await env.clock.advance(100);
  t.keystroke();
  await env.clock.advance(500);
  t.stop();
  await env.clock.advance(10_000);
  assert.deepEqual(out, ["start@0", "stop@500", "start@3250", "stop@3300"]);
});

test("errors: {error:{code,message}} becomes a SwitchboardError; a 401 asks the token provider again and retries once", async () => {
  let tokens = 0;
  const env = fakeEnv((method, path) => {
    if (path === "/v1/conversations/X") return { status: 404, body: { error: { code: "not_found", message: "no such conversation" } } };
    return tokens < 2 ? { status: 401, body: { error: { code: "unauthorized", message: "expired" } } } : { status: 200, body: { present: ["a"] } };
  });
  const rest = new RestClient(BASE, async (refresh) => {
    tokens++;
    return refresh ? "fresh" : "old";
  }, env);
  await assert.rejects(rest.getConversation("X"), (e: SwitchboardError) => e instanceof SwitchboardError && e.status === 404 && e.code === "not_found" && e.message === "no such conversation");
  tokens = 1;
  assert.deepEqual(await rest.presence(C), { present: ["a"] });
  assert.equal(tokens, 2);
});

test("Switchboard: retryNow connects a waiting socket at once and leaves an open one alone; close() closes every socket", async () => {
  const { Switchboard } = await import("../src/index.js");
  const env = fakeEnv();
  const client = new Switchboard({ baseUrl: BASE, token: "tok", env, watchOnline: false });
  const convo = client.openConversation(C);
  const hub = client.connectHub();
  await flush();
  const [c1, h1] = FakeSocket.all;
  h1!.open();
  c1!.drop(1006);
  assert.equal(FakeSocket.all.length, 2);
  client.retryNow();
  await flush();
  assert.equal(FakeSocket.all.length, 3, "the waiting conversation socket reconnected without waiting");
  assert.equal(h1!.closedWith, null, "the open hub was left alone");
  client.close();
  assert.equal(convo.state, "closed");
  assert.equal(hub.state, "closed");
  assert.equal(env.clock.pending(), 0);
});

test("every HTTP call of the client is a route of docs/openapi.yaml, with its method", async () => {
  const { readFileSync } = await import("node:fs");
  const yaml = readFileSync(new URL("../../../../docs/openapi.yaml", import.meta.url), "utf8");
  // paths are the two-space-indented keys under `paths:`; methods the four-space-indented ones below
  const routes: { re: RegExp; methods: Set<string> }[] = [];
  let inPaths = false;
  for (const line of yaml.split("\n")) {
    if (/^\S/.test(line)) inPaths = line.startsWith("paths:");
    if (!inPaths) continue;
    const p = /^  (\/\S*):\s*$/.exec(line);
    if (p) routes.push({ re: new RegExp(`^${p[1]!.replace(/\{[^}]+\}/g, "[^/]+")}$`), methods: new Set() });
    const m = /^    (get|post|put|patch|delete):/.exec(line);
    if (m && routes.length) routes[routes.length - 1]!.methods.add(m[1]!.toUpperCase());
  }
  assert.ok(routes.length > 30, "openapi.yaml read");
  const env = fakeEnv(() => ({ status: 200, body: {} }));
  const rest = new RestClient(BASE, "tok", env);
  const content = [{ type: "text" as const, text: "x" }];
  await Promise.all([
    rest.connectTicket(), rest.listConversations({ sandboxId: "sb", limit: 5, cursor: "c" }), rest.createConversation({ sandboxId: "sb" }),
    rest.getConversation(C), rest.renameConversation(C, "t"), rest.addMember(C, "bob"), rest.leaveConversation(C), rest.markRead(C, C),
    rest.presence(C), rest.typing(C), rest.typingStop(C), rest.botStatus(C), rest.listMessages(C, { before: C, limit: 10 }),
    rest.sendMessage({ conversationId: C, content }), rest.editMessage(C, { conversationId: C, content, timestamp: 1 }), rest.deleteMessage(C, C),
    rest.addReaction(C, C, "👍"), rest.removeReaction(C, C, "👍"), rest.badges(), rest.markBadgeRead("b"),
    rest.registerPushToken({ token: "t" }), rest.deletePushToken("t"), rest.notificationPreferences(), rest.setNotificationPreferences({ preview: "full" }),
  ]);
  assert.equal(env.calls.length, 24);
  for (const call of env.calls) {
    const path = call.path.split("?")[0]!;
    const route = routes.find((r) => r.re.test(path));
    assert.ok(route, `${call.method} ${path}: no such path in openapi.yaml`);
    assert.ok(route.methods.has(call.method), `${call.method} ${path}: the path has only ${[...route.methods]}`);
  }
  assert.ok(env.calls.some((c) => c.path === `/v1/messages/${C}/reactions?conversationId=${C}&emoji=%F0%9F%91%8D`), "query strings are encoded");
});

test("outbox: an attempt that never gets an answer (a silently dead connection) is retried with the same clientId after its timeout", async () => {
  const env = fakeEnv();
  const seen: string[] = [];
  const transport = (m: { clientId?: string }): Promise<SentMessage> => {
    seen.push(m.clientId!);
    if (seen.length === 1) return new Promise(() => {}); // hangs forever
    return Promise.resolve({ messageId: "M", message: msg("M", m.clientId!), duplicate: true });
  };
  const outbox = new Outbox(transport, env, { attemptTimeoutMs: 10_000 });
  const s = outbox.send({ conversationId: C, content: [{ type: "text", text: "x" }] });
  await env.clock.advance(9_000);
  assert.equal(seen.length, 1);
  await env.clock.advance(3_000);
  assert.deepEqual(seen, [s.clientId, s.clientId]);
  assert.equal((await s.done).duplicate, true);
  outbox.close();
  assert.equal(env.clock.pending(), 0);
});

test("live with reconnectWhenBotOffline: a channel that accepts and closes at once (4002) is retried with growing waits, not every half second", async () => {
  const env = fakeEnv();
  const live = new LiveSocket(new RestClient(BASE, "tok", env), C, env, { reconnectWhenBotOffline: true });
  await flush();
  const waits: number[] = [];
  for (let i = 0; i < 6; i++) {
    const ws = FakeSocket.last();
    ws.open();
    ws.drop(4002, "bot is not online");
    const before = FakeSocket.all.length;
    let waited = 0;
    while (FakeSocket.all.length === before) {
      await env.clock.advance(100);
      waited += 100;
      assert.ok(waited <= 60_000, "it reconnects");
    }
    waits.push(waited);
  }
  // full-jitter exponential: the sixth wait is at least half of 500 ms * 2^5
  assert.ok(waits[5] >= 8_000, `waits grow: ${waits}`);
  assert.ok(waits[5] > waits[0], `waits grow: ${waits}`);
  // a connection that stays open long enough resets the backoff
  const ws = FakeSocket.last();
  ws.open();
  await env.clock.advance(10_000);
  ws.drop(1006);
  const before = FakeSocket.all.length;
  await env.clock.advance(600);
  assert.equal(FakeSocket.all.length, before + 1, "after a stable connection: at once again");
  live.close();
});

test("conversation socket: refused before opening three times in a row, it asks over HTTP; 403 (no longer a member) ends it for good", async () => {
  let member = true;
  const env = fakeEnv((method, path) =>
    method === "GET" && path === `/v1/conversations/${C}`
      ? member
        ? { status: 200, body: { id: C, members: [] } }
        : { status: 403, body: { error: { code: "forbidden", message: "not a member of this conversation" } } }
      : { status: 404, body: { error: { code: "not_found", message: "no" } } },
  );
  const s = new ConversationSocket(new RestClient(BASE, "tok", env), C, env);
  const closed: { code: number; reason: string }[] = [];
  s.on("closed", (c) => closed.push(c));
  await flush();
  // Still a member (a network failure): it keeps trying after the check.
  for (let i = 0; i < 3; i++) {
    FakeSocket.last().drop(1006);
    await env.clock.advance(30_000);
  }
  assert.equal(closed.length, 0);
  assert.equal(env.calls.filter((c) => c.path === `/v1/conversations/${C}`).length, 1);
  // Removed while offline: the next check ends it.
  member = false;
  for (let i = 0; i < 3; i++) {
    FakeSocket.last().drop(1006);
    await env.clock.advance(30_000);
  }
  assert.equal(closed.length, 1);
  assert.equal(closed[0].code, 4003);
  assert.equal(s.state, "closed");
  const sockets = FakeSocket.all.length;
  await env.clock.advance(120_000);
  assert.equal(FakeSocket.all.length, sockets, "no more attempts");
});

test("live: after a reconnect it emits reset before the channel replays the publish in progress", async () => {
  const env = fakeEnv();
  const live = new LiveSocket(new RestClient(BASE, "tok", env), C, env);
  const seen: string[] = [];
  live.on("line", (v) => seen.push(JSON.stringify(v)));
  live.on("reset", () => seen.push("reset"));
  await flush();
  const a = FakeSocket.last();
  a.open();
  const line = (v: unknown) => ({ type: "line", from: "bot:kiloclaw:sb1", line: v });
  a.push(line({ delta: "Hel" }));
  a.drop(1006);
  await env.clock.advance(1000);
  const b = FakeSocket.last();
  b.open();
  b.push(line({ delta: "Hel" })); // the replay of the publish in progress
  b.push(line({ delta: "lo" }));
  assert.deepEqual(seen, ['{"delta":"Hel"}', "reset", '{"delta":"Hel"}', '{"delta":"lo"}']);
  live.close();
});
