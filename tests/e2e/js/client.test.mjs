// The TypeScript client library (packages/client-ts, its built ES module) against a real server, in
// Node with `ws`. Started by tests/e2e/tests/client_ts.rs with SWITCHBOARD_URL.
// - two users chat through the library (hub events, outbox, typing, presence, read receipts);
// - the network drops (sockets killed without a close frame, answers lost): the conversation socket
//   and the hub reconnect and resume with exactly the missed events, and a message sent through the
//   outbox during the drop arrives exactly once.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Switchboard, contexts } from "../../../packages/client-ts/dist/switchboard-client.js";
import { cutAll, makeNet, waitFor } from "./net.mjs";

const BASE = process.env.SWITCHBOARD_URL;
assert.ok(BASE, "SWITCHBOARD_URL must be set");
const rnd = () => crypto.randomBytes(5).toString("hex");
const clients = [];
after(() => {
  clients.forEach((c) => c.close());
  cutAll();
});

async function signIn(name, net) {
  const { client, session } = await Switchboard.devSignIn({ baseUrl: BASE, userId: `${name}-${rnd()}`, env: net });
  clients.push(client);
  return { client, id: session.userId };
}

const textOf = (f) => f.payload.content?.map((b) => b.text).join("");

test("two users chat through the library: messages both ways, typing, presence, read receipts", async () => {
  const { net, ...env } = makeNet();
  const netEnv = { WebSocket: env.WebSocket, fetch: env.fetch };
  const alice = await signIn("alice", netEnv);
  const bob = await signIn("bob", netEnv);
  const sb = `sb${rnd()}`;
  const { conversationId: c } = await alice.client.createConversation({ sandboxId: sb, additionalMembers: [bob.id] });
  const ctx = contexts.conversation(sb, c);
  const events = { alice: [], bob: [] };
  const joined = (who, id) => events[who].some((f) => f.event === "presence.joined" && f.payload.memberId === id);
  // One after the other: a presence.joined goes to the hubs watching when it happens, so bob's hub
  // opens once alice's watches the conversation (her own joined came through it).
  for (const [who, u] of [["alice", alice], ["bob", bob]]) {
    const hub = u.client.connectHub({ contexts: [ctx, contexts.presence(ctx), contexts.instance(sb)] });
    hub.on("event", (f) => events[who].push(f));
    await waitFor(net, `${who} present`, () => joined("alice", u.id));
  }
  assert.deepEqual((await alice.client.presence(c)).present.sort(), [alice.id, bob.id].sort());

  // alice types, then sends; bob sees typing, typing.stop (sent with the message) and the message
  const typing = alice.client.typingNotifier(c);
  typing.keystroke();
  typing.keystroke(); // throttled: one start
  await waitFor(net, "bob sees alice typing", () => events.bob.some((f) => f.event === "typing" && f.payload.memberId === alice.id));
  const sent = alice.client.send(c, "hello bob");
  const { message } = await sent.done;
  await waitFor(net, "bob gets the message", () => events.bob.some((f) => f.event === "message.created" && f.payload.messageId === message.id));
  await waitFor(net, "bob sees typing stop", () => events.bob.some((f) => f.event === "typing.stop" && f.payload.memberId === alice.id));
  const created = events.bob.find((f) => f.event === "message.created" && f.payload.messageId === message.id);
  assert.equal(textOf(created), "hello bob");
  assert.equal(created.context, ctx);
  assert.equal(events.alice.filter((f) => f.event === "message.created").at(-1).payload.clientId, sent.clientId, "alice's own event carries her clientId");
  const typingStarts = net.sockets.filter((s) => s.path === "/connect").flatMap((s) => s.sent).filter((t) => JSON.parse(t === "ping" ? "{}" : t).type === "typing");
  assert.equal(typingStarts.length, 1, "two keystrokes within 3 s: one typing frame");

  // bob answers; alice reads it; bob sees the receipt
  const reply = await bob.client.send(c, "hi alice", { inReplyToMessageId: message.id }).done;
  await waitFor(net, "alice gets the reply", () => events.alice.some((f) => f.event === "message.created" && f.payload.messageId === reply.messageId));
  const replyEvent = events.alice.find((f) => f.event === "message.created" && f.payload.messageId === reply.messageId);
  assert.deepEqual(replyEvent.payload.replyTo, { messageId: message.id, senderId: alice.id });
  const read = await alice.client.markRead(c, reply.messageId);
  assert.equal(read.conversationId, c);
  await waitFor(net, "bob sees alice's read receipt", () =>
    events.bob.some((f) => f.event === "conversation.read" && f.context === ctx && f.payload.memberId === alice.id && f.payload.lastReadMessageId === reply.messageId));
  // the REST side: list and messages
  const list = await bob.client.listConversations({ sandboxId: sb });
  assert.ok(list.conversations.some((x) => x.conversationId === c));
  const page = await bob.client.listMessages(c);
  assert.deepEqual(page.messages.map((m) => m.id), [reply.messageId, message.id]);
  await assert.rejects(bob.client.getConversation("01JC0000000000000000000000"), (e) => e.name === "SwitchboardError" && e.status === 404 && e.code === "not_found");
});

test("a dropped network: sockets resume with exactly the missed events; an outbox send during the drop arrives exactly once", async () => {
  const aliceNet = makeNet();
  const bobNet = makeNet();
  const alice = await signIn("alice", { WebSocket: aliceNet.WebSocket, fetch: aliceNet.fetch });
  const bob = await signIn("bob", { WebSocket: bobNet.WebSocket, fetch: bobNet.fetch });
  const net = aliceNet.net;
  const sb = `sb${rnd()}`;
  const { conversationId: c } = await alice.client.createConversation({ sandboxId: sb, additionalMembers: [bob.id] });
  const ctx = contexts.conversation(sb, c);

  // alice: a conversation socket and a hub; every event she is handed is recorded
  const convo = alice.client.openConversation(c);
  const convoEvents = [];
  convo.on("event", (f) => convoEvents.push(f));
  const readies = [];
  convo.on("ready", (r) => readies.push(r));
  const hub = alice.client.connectHub({ contexts: [ctx] });
  const hubEvents = [];
  hub.on("event", (f) => hubEvents.push(f));
  const hubReadies = [];
  hub.on("ready", (r) => hubReadies.push(r));
  const subscribed = await waitFor(net, "both sockets ready and subscribed", () => readies.length === 1 && hubReadies.length === 1 && hub.state === "open" &&
    net.sockets.some((s) => s.path === "/connect" && s.received.some((t) => t.includes("context.subscribed"))));
  assert.ok(subscribed);
  const before = await bob.client.send(c, "before the drop").done;
  await waitFor(net, "the first message on both sockets", () =>
    convoEvents.some((f) => f.payload.messageId === before.messageId) && hubEvents.some((f) => f.payload.messageId === before.messageId));

  // the network drops: both sockets die without a close frame; alice sends through the outbox, and
  // that request reaches the server but its answer is lost; bob keeps talking meanwhile
  net.down();
  await waitFor(net, "both sockets reconnecting", () => convo.state === "reconnecting" && hub.state === "reconnecting");
  const during = alice.client.send(c, "sent during the drop");
  await waitFor(net, "the outbox retried at least once", () => alice.client.outbox.entries[0]?.attempts >= 2, 20000);
  const missed = [];
  for (let i = 0; i < 3; i++) missed.push((await bob.client.send(c, `missed ${i}`).done).messageId);
  assert.equal(alice.client.outbox.entries.length, 1, "still waiting for an answer");
  net.up();

  const result = await during.done;
  assert.equal(result.duplicate, true, "the retry was answered with the original (it had landed during the drop)");
  // the server's order: alice's send landed (answer lost) before bob's, which waited for her retries
  const want = [before.messageId, result.messageId, ...missed];
  const has = (events) => want.every((id) => events.some((f) => f.event === "message.created" && f.payload.messageId === id));
  await waitFor(net, "every message on the resumed sockets", () => has(convoEvents) && has(hubEvents) && readies.length === 2 && hubReadies.length === 2);

  // the conversation socket: one event per seq, no gap, no repeat, and each message once
  const seqs = convoEvents.filter((f) => f.seq !== undefined).map((f) => f.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => seqs[0] + i), `contiguous seqs: ${seqs}`);
  const created = (events) => events.filter((f) => f.event === "message.created").map((f) => f.payload.messageId);
  assert.deepEqual(created(convoEvents), want, "each message exactly once, in order, on the conversation socket");
  assert.deepEqual(created(hubEvents), want, "each message exactly once, in order, on the hub");
  assert.equal(readies[1].resumed, true);
  assert.equal(hubReadies[1].resumed, true);
  // resumed, not refetched: the second conversation socket asked since= the last seq seen before the drop
  const convoSockets = net.sockets.filter((s) => s.path.endsWith("/ws"));
  const resumedWith = convoSockets.find((s, i) => i > 0 && s.received.length > 0);
  assert.ok(resumedWith && new URL(resumedWith.url).searchParams.get("since") !== null, "the reconnect carried since=");
  const hubSockets = net.sockets.filter((s) => s.path === "/connect" && s.received.length > 0);
  const hello = JSON.parse(hubSockets.at(-1).received[0].split("\n")[0]); // a batched hub: its opening in one text frame
  assert.equal(hello.type, "hello");
  assert.equal(hello.restored, true, "the hub took up the same session");
  assert.ok(!hubSockets.at(-1).received.some((t) => t.includes('"resync"')));

  // the server has it once
  const all = (await bob.client.listMessages(c)).messages.filter((m) => m.content[0]?.text === "sent during the drop");
  assert.equal(all.length, 1);
  // live from here on: one more message proves the resumed sockets are live, in seq order
  const afterMsg = await bob.client.send(c, "after").done;
  await waitFor(net, "the live message after the resume", () => convoEvents.some((f) => f.payload.messageId === afterMsg.messageId));
  assert.equal(convoEvents.at(-1).seq, seqs.at(-1) + 1);
});
