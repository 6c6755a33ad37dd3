// Every socket frame of a scenario on the real server, both directions, validated against the JSON
// Schemas of docs/schemas/frames.json (ajv, draft 2020-12). Started by tests/e2e/tests/frames.rs
// with SWITCHBOARD_URL. The scenario drives the three socket kinds through the client library
// (whose frames are recorded on the wire) plus a few deliberate bad frames, and covers every event
// kind the schemas name (but the bridges' bridge.*, which need a bridged platform: the bridge e2e
// tests cover those), ready, resync, hello, acks, error frames, hub events and live frames. A frame
// that matches no schema, an unknown type among them, fails the test; so does an event kind of
// the schemas that the scenario never saw.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import { isDeepStrictEqual } from "node:util";
import Ajv2020 from "ajv/dist/2020.js";
import { Switchboard, HubSocket, contexts } from "../../../packages/client-ts/dist/switchboard-client.js";
import { cutAll, makeNet, waitFor } from "./net.mjs";

const BASE = process.env.SWITCHBOARD_URL;
assert.ok(BASE, "SWITCHBOARD_URL must be set");
const schema = JSON.parse(fs.readFileSync(new URL("../../../docs/schemas/frames.json", import.meta.url), "utf8"));
const ajv = new Ajv2020({ allErrors: true, strict: true });
ajv.addSchema(schema);
const validator = (name) => {
  const v = ajv.getSchema(`${schema.$id}#/$defs/${name}`);
  assert.ok(v, `schema ${name}`);
  return v;
};
const V = {
  HubServerFrame: validator("HubServerFrame"),
  HubClientFrame: validator("HubClientFrame"),
  ConversationServerFrame: validator("ConversationServerFrame"),
  ConversationClientFrame: validator("ConversationClientFrame"),
  LiveClientFrame: validator("LiveClientFrame"),
  LiveServerFrame: validator("LiveServerFrame"),
  ErrorFrame: validator("ErrorFrame"),
};
const rnd = () => crypto.randomBytes(5).toString("hex");
const clients = [];
after(() => {
  clients.forEach((c) => c.close());
  cutAll();
});

test("every frame of every socket kind, both directions, matches docs/schemas/frames.json", async () => {
  const { net, WebSocket, fetch } = makeNet();
  const env = { WebSocket, fetch };
  const sign = async (name) => {
    const r = await Switchboard.devSignIn({ baseUrl: BASE, userId: `${name}-${rnd()}`, env });
    clients.push(r.client);
    return { client: r.client, id: r.session.userId };
  };
  const alice = await sign("alice");
  const bob = await sign("bob");
  const carol = await sign("carol");
  const sb = `sb${rnd()}`;
  const botToken = (await (await globalThis.fetch(`${BASE}/dev/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sandboxId: sb }) })).json()).token;
  const bot = new Switchboard({ baseUrl: BASE, token: botToken, env });
  clients.push(bot);
  const deliberate = new Set(); // bad frames sent on purpose (not validated as client frames)
  const rawSend = (path, text) => {
    const s = net.sockets.filter((x) => x.path.endsWith(path) && x.ws.readyState === 1).at(-1);
    assert.ok(s, `an open socket on ${path}`);
    deliberate.add(text);
    s.ws.send(text);
  };
  // a conversation socket's or hub's text frame may hold several frames, one per line (?batch=1, which the library asks for)
  const lines = (s) => (s.path.endsWith("/ws") || s.path === "/connect" ? s.received.flatMap((t) => t.split("\n")) : s.received);
  const got = (pathEnd, pred) => net.sockets.filter((s) => s.path.endsWith(pathEnd)).flatMap(lines).filter((t) => t !== "pong").map((t) => JSON.parse(t)).some(pred);
  const hubGot = (pred) => got("/connect", pred);
  const convGot = (pred) => got("/ws", pred);
  const isEv = (name, extra = () => true) => (f) => f.type === "event" && f.event === name && extra(f);

  // the hub, with the instance context first: conversation.created reaches it
  const instance = contexts.instance(sb);
  const hub = alice.client.connectHub({ contexts: [instance] });
  await waitFor(net, "hub subscribed", () => hubGot((f) => f.type === "context.subscribed"));
  const { conversationId: c } = await alice.client.createConversation({ sandboxId: sb, additionalMembers: [bob.id] });
  const ctx = contexts.conversation(sb, c);
  await waitFor(net, "conversation.created", () => hubGot(isEv("conversation.created")));
  hub.subscribe(ctx, contexts.presence(ctx));
  await waitFor(net, "presence.joined", () => hubGot(isEv("presence.joined")));
  const convo = alice.client.openConversation(c);
  await waitFor(net, "conversation socket ready", () => convGot((f) => f.type === "ready"));

  // messages (the first sets the auto-title), an edit, reactions, a rename, a reply, a deletion
  const first = await bob.client.sendMessage({ conversationId: c, content: [{ type: "text", text: "first words" }], clientId: `k${rnd()}` });
  await bob.client.editMessage(first.messageId, { conversationId: c, content: [{ type: "text", text: "first words, edited" }], timestamp: Date.now() });
  await alice.client.addReaction(c, first.messageId, "👍");
  await alice.client.removeReaction(c, first.messageId, "👍");
  await alice.client.renameConversation(c, "Plans");
  const ack = await convo.createMessage({ content: [{ type: "actions", groupId: "g1", actions: [{ label: "Allow", style: "primary", value: "allow-once" }] }], clientId: `k${rnd()}`, inReplyToMessageId: first.messageId });
  assert.equal(ack.type, "message.ack");
  const second = await bob.client.sendMessage({ conversationId: c, content: [{ type: "text", text: "to delete" }] });
  await bob.client.deleteMessage(c, second.messageId);
  // members
  await alice.client.addMember(c, carol.id);
  await carol.client.leaveConversation(c);
  // typing over HTTP (bob) and over the hub (alice)
  await bob.client.typing(c);
  await bob.client.typingStop(c);
  const typing = alice.client.typingNotifier(c);
  typing.keystroke();
  typing.stop();
  // bob on the roster and off it
  const bobHub = bob.client.connectHub({ contexts: [contexts.presence(ctx)] });
  await waitFor(net, "bob present", () => hubGot(isEv("presence.joined", (f) => f.payload.memberId === bob.id)));
  bobHub.unsubscribe(contexts.presence(ctx));
  await waitFor(net, "bob gone", () => hubGot(isEv("presence.left", (f) => f.payload.memberId === bob.id)));
  // read receipts (and the badge bucket cleared: badge.updated), the bot's status
  const third = await bob.client.sendMessage({ conversationId: c, content: [{ type: "text", text: "read me" }] });
  await alice.client.markRead(c, third.messageId);
  await bot.request("POST", `/bot/v1/sandboxes/${sb}/bot-status`, { online: true });
  // the socket's errors: invalid JSON, an unknown type, a bad message.create; and the hub's
  rawSend("/ws", "not json");
  rawSend("/ws", JSON.stringify({ type: "dance" }));
  rawSend("/ws", JSON.stringify({ type: "message.create", requestId: "bad1", content: [] }));
  rawSend("/connect", JSON.stringify({ type: "dance" }));
  rawSend("/connect", "{");
  const other = await bob.client.createConversation({ sandboxId: sb });
  hub.subscribe(contexts.conversation(sb, other.conversationId)); // not alice's: forbidden_context
  hub.subscribe(contexts.app);
  hub.unsubscribe(contexts.app);
  // resync on both event sockets: a conversation socket asking since= a seq it cannot have, a hub
  // resuming a session that does not exist
  const ahead = alice.client.openConversation(c, { since: 1_000_000 });
  const stale = new HubSocket(alice.client, alice.client.env, { resume: { sessionId: crypto.randomBytes(hub.position.sessionId.length / 2).toString("hex"), seq: 3 } });
  clients.push(stale);
  // the live channel: lines as published, acks, an error frame for a bad frame
  const live = alice.client.openLive(c);
  const liveLines = [];
  live.on("line", (v) => liveLines.push(v));
  await waitFor(net, "live open", () => live.state === "open");
  const published = [{ delta: "hel" }, { delta: "lo" }, [1, "two"], "a string", 42, { final: true, content: [{ type: "text", text: "hello" }] }];
  const res = await globalThis.fetch(`${BASE}/v1/conversations/${c}/publish`, {
    method: "POST", headers: { authorization: `Bearer ${botToken}`, "content-type": "application/x-ndjson" },
    body: published.map((v) => JSON.stringify(v)).join("\n") + "\n",
  });
  assert.equal(res.status, 200, await res.clone().text());
  await waitFor(net, "every live line", () => liveLines.length === published.length);
  rawSend("/live", JSON.stringify({ type: "dance" }));
  await waitFor(net, "the live error frame and an ack", () =>
    got("/live", (f) => f && f.type === "error") && net.sockets.some((s) => s.path.endsWith("/live") && s.sent.some((t) => t.includes('"ack"'))));

  // what the instance context gets after the activity flush, then leaving (last: it closes the socket with 4003)
  await waitFor(net, "conversation.activity and the instance rename", () =>
    hubGot(isEv("conversation.activity")) && hubGot(isEv("conversation.renamed", (f) => f.context === instance)));
  const rest = {
    "hub bot.status": () => hubGot(isEv("bot.status")),
    "hub badge.updated": () => hubGot(isEv("badge.updated")),
    "hub instance conversation.read": () => hubGot(isEv("conversation.read", (f) => f.context === instance)),
    "hub resync": () => hubGot((f) => f.type === "resync"),
    "hub forbidden_context": () => hubGot((f) => f.type === "error" && f.code === "forbidden_context"),
    "hub context.unsubscribed": () => hubGot((f) => f.type === "context.unsubscribed"),
    "conv message.deleted": () => convGot(isEv("message.deleted")),
    "conv member.left": () => convGot(isEv("member.left")),
    "conv typing.stop": () => convGot(isEv("typing.stop")),
    "conv conversation.read": () => convGot(isEv("conversation.read")),
    "conv resync": () => convGot((f) => f.type === "resync"),
    "conv error bad1": () => convGot((f) => f.type === "error" && f.requestId === "bad1"),
  };
  const lacking = () => Object.keys(rest).filter((k) => !rest[k]());
  await waitFor(net, "the rest of the scenario", () => lacking().length === 0).catch((e) => {
    throw new Error(`${e.message}: ${lacking().join(", ")}`);
  });
  await alice.client.leaveConversation(c);
  await waitFor(net, "conversation.left", () => hubGot(isEv("conversation.left")) && convo.state === "closed");
  ahead.close();
  stale.close();
  live.close();

  // ---- validate every frame, both directions, and see that every kind was covered
  const failures = [];
  const seen = { hub: new Set(), conv: new Set(), live: new Set(), hubOut: new Set(), convOut: new Set(), liveOut: new Set() };
  const check = (v, frame, where) => {
    if (!v(frame)) failures.push(`${where}: ${JSON.stringify(frame).slice(0, 300)}\n  ${ajv.errorsText(v.errors).slice(0, 600)}`);
  };
  const kindOf = (f) => (f && f.type === "event" ? `event:${f.event}` : f?.type);
  for (const s of net.sockets) {
    const kind = s.path === "/connect" ? "hub" : s.path.endsWith("/ws") ? "conv" : s.path.endsWith("/live") ? "live" : null;
    assert.ok(kind, s.path);
    for (const text of lines(s)) {
      if (text === "pong") continue;
      let f;
      try {
        f = JSON.parse(text);
      } catch {
        failures.push(`${kind} sent a frame that is not JSON: ${text.slice(0, 100)}`);
        continue;
      }
      if (kind === "hub") check(V.HubServerFrame, f, `hub → client`);
      else if (kind === "conv") check(V.ConversationServerFrame, f, `conversation socket → client`);
      else {
        check(V.LiveServerFrame, f, `live → client`);
        if (f && f.type === "line" && !published.some((p) => isDeepStrictEqual(p, f.line))) failures.push(`live → client: a line nobody published: ${text.slice(0, 100)}`);
      }
      seen[kind].add(kind === "live" && f && f.type === "line" ? "line" : kindOf(f));
    }
    for (const text of s.sent) {
      if (text === "ping" || deliberate.has(text)) continue;
      const f = JSON.parse(text);
      const v = kind === "hub" ? V.HubClientFrame : kind === "conv" ? V.ConversationClientFrame : V.LiveClientFrame;
      check(v, f, `client → ${kind}`);
      seen[`${kind}Out`].add(f.type);
    }
  }
  assert.deepEqual(failures, [], `frames that match no schema:\n${failures.join("\n")}`);
  assert.ok(net.sockets.some((s) => s.path.endsWith("/ws") && s.received.some((t) => t.includes("\n"))), "a batched text frame (a message and its auto-title) was seen and split");
  assert.ok(net.sockets.some((s) => s.path === "/connect" && s.received.some((t) => t.includes("\n"))), "a batched hub text frame (its opening: hello and ready) was seen and split");

  const events = (def) => schema.$defs[def].oneOf.map((o) => o.properties.event.const);
  const conversationEvents = events("ConversationEvent").filter((e) => !e.startsWith("bridge."));
  const missing = (set, wanted) => wanted.filter((w) => !set.has(w));
  assert.deepEqual(missing(seen.conv, ["ready", "resync", "message.ack", "error", ...conversationEvents.map((e) => `event:${e}`)]), [], "conversation socket kinds never seen");
  assert.deepEqual(missing(seen.hub, ["hello", "ready", "resync", "context.subscribed", "context.unsubscribed", "error",
    ...[...conversationEvents, ...events("InstanceEvent")].map((e) => `event:${e}`)]), [], "hub kinds never seen");
  assert.deepEqual(missing(seen.live, ["line", "error"]), [], "live kinds never seen");
  assert.deepEqual(missing(seen.hubOut, ["context.subscribe", "context.unsubscribe", "ack", "typing", "typing.stop"]), []);
  assert.deepEqual(missing(seen.convOut, ["message.create"]), []);
  assert.deepEqual(missing(seen.liveOut, ["ack"]), []);
  // the test itself can fail: an unknown frame type and a wrong field are refused by the schemas
  assert.equal(V.HubServerFrame({ type: "dance" }), false);
  assert.equal(V.ConversationServerFrame({ type: "event", event: "message.exploded", payload: {}, seq: 1 }), false);
  assert.equal(V.ConversationServerFrame({ type: "ready", seq: 1, extra: true }), false);
  assert.equal(V.HubClientFrame({ type: "ack", seq: -1 }), false);
});
