// Unit tests of the hub socket (resume, batched frames, acks, contexts, a refused or replaced session),
// with a fake socket and fake time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HubSocket, RestClient } from "../src/index.js";
import { BASE, C, FakeSocket, fakeEnv, flush, hubEv } from "./fakes.js";

test("hub: resumes its session with session= and since=, replays are deduplicated, contexts are restored or subscribed again", async () => {
  const env = fakeEnv();
  const ctx = "/kiloclaw/sb/" + C;
  const hub = new HubSocket(new RestClient(BASE, "tok", env), env, { contexts: [ctx, "/kiloclaw/sb"] });
  const seen: number[] = [];
  hub.on("event", (f) => seen.push(f.seq!));
  const readies: boolean[] = [];
  hub.on("ready", (r) => readies.push(r.resumed));
  await flush();
  const a = FakeSocket.last();
  assert.deepEqual(a.protocols, ["kilo.events.v1"]);
  assert.equal(a.query().get("session"), null);
  assert.equal(a.query().get("since"), null);
  a.open();
  a.push({ type: "hello", sessionId: "S1", seq: 7, member: "alice", contexts: [], restored: false });
  a.push({ type: "ready", seq: 7 });
  assert.deepEqual(a.frames()[0], { type: "context.subscribe", contexts: [ctx, "/kiloclaw/sb"] });
  a.push({ type: "context.subscribed", contexts: [ctx, "/kiloclaw/sb"] });
  a.push(hubEv(9));
  a.push(hubEv(12, "/kiloclaw/sb"));
  a.drop(1006);
  await env.clock.advance(1000);
  const b = FakeSocket.last();
  assert.equal(b.query().get("session"), "S1");
  assert.equal(b.query().get("since"), "12");
  b.open();
  b.push({ type: "hello", sessionId: "S1", seq: 15, member: "alice", contexts: [ctx, "/kiloclaw/sb"], restored: true });
  b.push(hubEv(12, "/kiloclaw/sb"));
  b.push(hubEv(14));
  b.push({ type: "ready", seq: 15 });
  assert.deepEqual(seen, [9, 12, 14]);
  assert.ok(!b.frames().some((f) => f.type === "context.subscribe"), "restored contexts are not subscribed again");
  assert.deepEqual(b.frames().at(-1), { type: "ack", seq: 15 });
  assert.deepEqual(hub.position, { sessionId: "S1", seq: 15 });
  // the session expired meanwhile: a new one, resync, and the contexts subscribed again
  b.drop(1006);
  await env.clock.advance(1000);
  const c = FakeSocket.last();
  assert.equal(c.query().get("since"), "15");
  c.open();
  const resyncs: number[] = [];
  hub.on("resync", (r) => resyncs.push(r.seq));
  c.push({ type: "hello", sessionId: "S2", seq: 40, member: "alice", contexts: [], restored: false });
  c.push({ type: "resync", seq: 40 });
  c.push({ type: "ready", seq: 40 });
  assert.deepEqual(resyncs, [40]);
  assert.deepEqual(c.frames()[0], { type: "context.subscribe", contexts: [ctx, "/kiloclaw/sb"] });
  assert.deepEqual(readies, [false, true, false], "a new session replayed nothing: not resumed");
  assert.equal(hub.position.sessionId, "S2");
  hub.close();
});

test("hub: asks for batched frames by default and takes several frames per text frame, one per line, exactly as one per frame", async () => {
  const env = fakeEnv();
  const ctx = "/kiloclaw/sb/" + C;
  const hub = new HubSocket(new RestClient(BASE, "tok", env), env, { contexts: [ctx] });
  const seen: number[] = [];
  hub.on("event", (f) => seen.push(f.seq!));
  const subscribed: string[][] = [];
  hub.on("subscribed", (c) => subscribed.push(c));
  await flush();
  const a = FakeSocket.last();
  assert.equal(a.query().get("batch"), "1");
  a.open();
  // the opening in one text frame: hello, a replay overlapping nothing, ready
  const line = (f: object) => JSON.stringify(f);
  a.push([line({ type: "hello", sessionId: "S1", seq: 3, member: "alice", contexts: [], restored: false }), line({ type: "ready", seq: 3 })].join("\n"));
  assert.deepEqual(a.frames()[0], { type: "context.subscribe", contexts: [ctx] });
  // an answer and events in one text frame; 20 events in one frame still ack at the 20th
  a.push([line({ type: "context.subscribed", contexts: [ctx] }), ...Array.from({ length: 21 }, (_, i) => line(hubEv(4 + i)))].join("\n") + "\n");
  assert.deepEqual(subscribed, [[ctx]]);
  assert.deepEqual(seen, Array.from({ length: 21 }, (_, i) => 4 + i));
  assert.deepEqual(a.frames().filter((f) => f.type === "ack").map((f) => f.seq), [3, 23], "at ready, then at the 20th event");
  // after a drop the resume still names session and since, and a batched replay is deduplicated per line
  a.drop(1006);
  await env.clock.advance(1000);
  const b = FakeSocket.last();
  assert.equal(b.query().get("since"), "24");
  assert.equal(b.query().get("batch"), "1");
  b.open();
  b.push([
    line({ type: "hello", sessionId: "S1", seq: 26, member: "alice", contexts: [ctx], restored: true }),
    line(hubEv(24)),
    line(hubEv(25)),
    line(hubEv(26)),
    line({ type: "ready", seq: 26 }),
  ].join("\n"));
  assert.deepEqual(seen.slice(-2), [25, 26]);
  assert.equal(seen.length, 23, "24 was seen before the drop");
  hub.close();
  // opting out: no batch parameter
  const plain = new HubSocket(new RestClient(BASE, "tok", env), env, { batch: false });
  await flush();
  assert.equal(FakeSocket.last().query().get("batch"), null);
  plain.close();
});

test("hub: acks after 20 events at once, and after 250 ms otherwise; subscribe/unsubscribe while open", async () => {
  const env = fakeEnv();
  const hub = new HubSocket(new RestClient(BASE, "tok", env), env);
  await flush();
  const ws = FakeSocket.last();
  ws.open();
  ws.push({ type: "hello", sessionId: "S", seq: 0, member: "alice", contexts: [], restored: false });
  ws.push({ type: "ready", seq: 0 });
  const acks = () => ws.frames().filter((f) => f.type === "ack").map((f) => f.seq);
  for (let i = 1; i <= 20; i++) ws.push(hubEv(i));
  assert.deepEqual(acks(), [20]);
  ws.push(hubEv(21));
  assert.deepEqual(acks(), [20]);
  await env.clock.advance(250);
  assert.deepEqual(acks(), [20, 21]);
  hub.subscribe("/presence/app");
  hub.unsubscribe("/presence/app");
  assert.deepEqual(ws.frames().slice(-2), [
    { type: "context.subscribe", contexts: ["/presence/app"] },
    { type: "context.unsubscribe", contexts: ["/presence/app"] },
  ]);
  assert.ok(hub.typing(C));
  assert.deepEqual(ws.frames().at(-1), { type: "typing", conversationId: C });
  hub.close();
});

test("hub: after 3 failed opens in a row it stops naming its session (a refused session cannot loop forever)", async () => {
  const env = fakeEnv();
  const hub = new HubSocket(new RestClient(BASE, "tok", env), env, { resume: { sessionId: "ab".repeat(16), seq: 4 } });
  await flush();
  for (let i = 0; i < 3; i++) {
    assert.equal(FakeSocket.last().query().get("session"), "ab".repeat(16));
    FakeSocket.last().drop(1006); // refused before opening
    await env.clock.advance(30_000);
  }
  const ws = FakeSocket.last();
  assert.equal(FakeSocket.all.length, 4);
  assert.equal(ws.query().get("session"), null);
  assert.equal(ws.query().get("since"), null, "since alone would take up another session");
  const resyncs: number[] = [];
  hub.on("resync", (r) => resyncs.push(r.seq));
  ws.open();
  ws.push({ type: "hello", sessionId: "S9", seq: 20, member: "alice", contexts: [], restored: false });
  ws.push({ type: "ready", seq: 20 });
  assert.deepEqual(resyncs, [20], "events after seq 4 were not replayed: refetch");
  hub.close();
});

test("hub: replaced by another connection of its session (4009), it carries on with a session of its own", async () => {
  const env = fakeEnv();
  const hub = new HubSocket(new RestClient(BASE, "tok", env), env);
  await flush();
  const a = FakeSocket.last();
  a.open();
  a.push({ type: "hello", sessionId: "S1", seq: 3, member: "alice", contexts: [], restored: false });
  a.push({ type: "ready", seq: 3 });
  const resyncs: number[] = [];
  hub.on("resync", (r) => resyncs.push(r.seq));
  const readies: boolean[] = [];
  hub.on("ready", (r) => readies.push(r.resumed));
  a.drop(4009, "replaced by a newer connection");
  await env.clock.advance(1000);
  const b = FakeSocket.last();
  // Neither the session nor `since`: alone, `since` would take up the user's most recently closed
  // session, which may be another tab's.
  assert.equal(b.query().get("session"), null);
  assert.equal(b.query().get("since"), null);
  b.open();
  b.push({ type: "hello", sessionId: "S2", seq: 9, member: "alice", contexts: [], restored: false });
  b.push({ type: "ready", seq: 9 });
  // A new session replays nothing: the app is told to refetch, as after a resync frame.
  assert.deepEqual(resyncs, [9]);
  assert.deepEqual(readies, [false]);
  b.drop(1006);
  await env.clock.advance(1000);
  const c = FakeSocket.last();
  assert.equal(c.query().get("session"), "S2");
  assert.equal(c.query().get("since"), "9");
  hub.close();
});

test("hub: more contexts than one frame may list go in frames of at most 200, in order", async () => {
  const env = fakeEnv();
  const wanted = Array.from({ length: 450 }, (_, i) => `/kiloclaw/sb${i}`);
  const hub = new HubSocket(new RestClient(BASE, "tok", env), env, { contexts: wanted });
  await flush();
  const a = FakeSocket.last();
  a.open();
  a.push({ type: "hello", sessionId: "S1", seq: 0, member: "alice", contexts: [], restored: false });
  a.push({ type: "ready", seq: 0 });
  const subs = a.frames().filter((f) => f.type === "context.subscribe");
  assert.deepEqual(subs.map((f) => f.contexts.length), [200, 200, 50]);
  assert.deepEqual(subs.flatMap((f) => f.contexts), wanted);
  hub.unsubscribe(...wanted.slice(0, 201));
  const unsubs = a.frames().filter((f) => f.type === "context.unsubscribe");
  assert.deepEqual(unsubs.map((f) => f.contexts.length), [200, 1]);
  hub.close();
});
