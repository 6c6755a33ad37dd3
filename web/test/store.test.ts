// Unit tests of the app's Store (no DOM, no network): what the list and the open conversation
// show after HTTP answers and hub events.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { HubEventFrame, Message } from "../../packages/client-ts/src/index";
import { OpenConversation, Store, TYPING_SHOWN_MS } from "../src/store";

const ME = "alice";
const SB = "sb1";
const C1 = "01JC00000000000000000000C1";
const C2 = "01JC00000000000000000000C2";

function msg(id: string, senderId: string, text: string, createdAt: number, conversationId = C1): Message {
  return {
    id, conversationId, senderId, content: [{ type: "text", text }], inReplyToMessageId: null, createdAt,
    updatedAt: null, clientUpdatedAt: null, deleted: false, deliveryFailed: false, reactions: [],
  };
}

function ev(event: string, payload: Record<string, unknown>, conversationId = C1): HubEventFrame {
  return { type: "event", context: `/kiloclaw/${SB}/${conversationId}`, event, payload } as unknown as HubEventFrame;
}

function created(m: Message, clientId: string | null = null): HubEventFrame {
  return ev("message.created", {
    messageId: m.id, senderId: m.senderId, content: m.content, inReplyToMessageId: null, replyTo: null, clientId, message: m,
  }, m.conversationId);
}

function storeWith(...ids: string[]): Store {
  const s = new Store(ME);
  s.mergeList(ids.map((id, i) => ({ conversationId: id, title: `t${i}`, sandboxId: SB, lastActivityAt: 100 + i, lastReadAt: 50, joinedAt: 10 })));
  for (const id of ids) s.followed.add(id);
  return s;
}

test("the list is ordered by newest activity, and a message brings its conversation forward", () => {
  const s = storeWith(C1, C2);
  assert.deepEqual(s.sortedConvs().map((c) => c.id), [C2, C1]);
  s.apply(created(msg("01JC0000000000000000000M01", "bob", "hi", 500)), 500);
  assert.deepEqual(s.sortedConvs().map((c) => c.id), [C1, C2]);
  assert.equal(s.convs.get(C1)?.preview, "bob: hi");
});

test("unread: others' messages after the last read count, mine do not, a full page says more", () => {
  const s = storeWith(C1);
  const c = s.convs.get(C1)!;
  const page = [msg("m4", "bob", "d", 90), msg("m3", ME, "c", 80), msg("m2", "bob", "b", 70), msg("m1", "bob", "a", 40)];
  s.countUnread(c, page, true);
  assert.equal(c.unread, 2);
  assert.equal(c.unreadMore, false, "the page reaches back past the last read");
  s.countUnread(c, page.slice(0, 3), true);
  assert.equal(c.unreadMore, true, "every message of a page that has more is unread");
});

test("live events count unread for other conversations, not for the one being read", () => {
  const s = storeWith(C1, C2);
  s.open = new OpenConversation(C1, SB);
  s.open.queued = null;
  s.apply(created(msg("m1", "bob", "x", 200)), 200);
  s.apply(created(msg("m2", "bob", "y", 201, C2)), 201);
  s.apply(created(msg("m3", ME, "z", 202, C2)), 202);
  assert.equal(s.convs.get(C1)?.unread, 0);
  assert.equal(s.convs.get(C2)?.unread, 1);
  s.attentive = false;
  s.apply(created(msg("m4", "bob", "w", 203)), 203);
  assert.equal(s.convs.get(C1)?.unread, 1, "a hidden page is not reading");
  // my read on another device clears it
  s.apply(ev("conversation.read", { conversationId: C2, memberId: ME, lastReadAt: 300 }, C2), 300);
  assert.equal(s.convs.get(C2)?.unread, 0);
});

test("events that arrive while the conversation loads wait, then apply once", () => {
  const s = storeWith(C1);
  const open = (s.open = new OpenConversation(C1, SB));
  const m = msg("m1", "bob", "early", 200);
  s.apply(created(m), 200);
  assert.equal(open.messages.size, 0);
  assert.equal(open.queued?.length, 1);
  open.put(m); // the first page had it too
  const q = open.queued ?? [];
  open.queued = null;
  for (const f of q) s.apply(f, 201);
  assert.deepEqual(open.ordered().map((x) => x.id), ["m1"]);
});

test("my own message's clientId marks its outbox copy as arrived; ordering is by id", () => {
  const s = storeWith(C1);
  const open = (s.open = new OpenConversation(C1, SB));
  open.queued = null;
  s.apply(created(msg("m2", ME, "second", 2), "c-2"), 2);
  s.apply(created(msg("m1", "bob", "first", 1)), 2);
  assert.ok(open.arrived.has("c-2"));
  assert.deepEqual(open.ordered().map((x) => x.id), ["m1", "m2"]);
  assert.equal(open.newest()?.id, "m2");
});

test("reactions: added once per member, removed, counts follow", () => {
  const s = storeWith(C1);
  const open = (s.open = new OpenConversation(C1, SB));
  open.queued = null;
  open.put(msg("m1", "bob", "x", 1));
  for (const who of ["bob", "bob", ME]) s.apply(ev("reaction.added", { messageId: "m1", memberId: who, emoji: "👍" }), 2);
  assert.deepEqual(open.messages.get("m1")?.reactions, [{ emoji: "👍", count: 2, memberIds: ["bob", ME] }]);
  s.apply(ev("reaction.removed", { messageId: "m1", memberId: "bob", emoji: "👍" }), 3);
  s.apply(ev("reaction.removed", { messageId: "m1", memberId: ME, emoji: "👍" }), 3);
  assert.deepEqual(open.messages.get("m1")?.reactions, []);
});

test("edits replace, an older copy never replaces a newer one, deletion empties and updates the preview", () => {
  const s = storeWith(C1);
  const open = (s.open = new OpenConversation(C1, SB));
  open.queued = null;
  const m = msg("m1", "bob", "v1", 1);
  s.apply(created(m), 1);
  const edited = { ...m, content: [{ type: "text" as const, text: "v2" }], updatedAt: 5 };
  s.apply(ev("message.updated", { messageId: "m1", content: edited.content, clientUpdatedAt: 5, message: edited }), 5);
  open.put(m); // a stale page
  assert.deepEqual(open.messages.get("m1")?.content, edited.content);
  s.apply(ev("message.deleted", { messageId: "m1" }), 6);
  assert.equal(open.messages.get("m1")?.deleted, true);
  assert.deepEqual(open.messages.get("m1")?.content, []);
  assert.equal(s.convs.get(C1)?.preview, "Message deleted");
});

test("typing shows others until stopped or expired; presence and read receipts", () => {
  const s = storeWith(C1);
  const open = (s.open = new OpenConversation(C1, SB));
  open.queued = null;
  s.apply(ev("typing", { memberId: "bob" }), 1000);
  s.apply(ev("typing", { memberId: ME }), 1000);
  assert.deepEqual(open.typers(1001, ME), ["bob"]);
  assert.deepEqual(open.typers(1000 + TYPING_SHOWN_MS, ME), [], "expired");
  s.apply(ev("typing.stop", { memberId: "bob" }), 1002);
  assert.deepEqual(open.typers(1003, ME), []);
  s.apply(ev("presence.joined", { memberId: "bob" }), 1);
  assert.ok(open.present.has("bob"));
  s.apply(ev("presence.left", { memberId: "bob" }), 2);
  assert.ok(!open.present.has("bob"));
  s.apply(ev("conversation.read", { conversationId: C1, memberId: "bob", lastReadAt: 5, lastReadMessageId: "m2" }), 5);
  s.apply(ev("conversation.read", { conversationId: C1, memberId: "bob", lastReadAt: 6, lastReadMessageId: "m1" }), 6);
  assert.equal(open.reads.get("bob"), "m2", "receipts only move forward");
});

test("instance events: created, renamed, left; activity of an unfollowed conversation marks it", () => {
  const s = storeWith(C1);
  const inst = (event: string, payload: Record<string, unknown>) =>
    ({ type: "event", context: `/kiloclaw/${SB}`, event, payload }) as unknown as HubEventFrame;
  const added = s.apply(inst("conversation.created", { conversationId: C2, title: "New", sandboxId: SB }), 1000);
  assert.deepEqual(added.map((c) => c.id), [C2]);
  assert.equal(s.apply(inst("conversation.created", { conversationId: C2, title: "New", sandboxId: SB }), 1001).length, 0);
  s.apply(inst("conversation.renamed", { conversationId: C2, title: "Renamed" }), 1002);
  assert.equal(s.convs.get(C2)?.title, "Renamed");
  s.apply(inst("conversation.activity", { conversationId: C2, lastActivityAt: 2000 }), 2000);
  assert.equal(s.convs.get(C2)?.unreadMore, true, "not followed: only activity tells of news");
  s.apply(inst("conversation.activity", { conversationId: C1, lastActivityAt: 2000 }), 2000);
  assert.equal(s.convs.get(C1)?.unreadMore, false, "followed: its messages are counted instead");
  s.apply(inst("conversation.left", { conversationId: C2 }), 3000);
  assert.ok(!s.convs.has(C2));
});

test("a context.resync marks its conversation stale once, whether it is open or not, and changes nothing shown", () => {
  const s = storeWith(C1, C2);
  s.open = new OpenConversation(C1, SB);
  s.open.queued = null;
  s.apply(created(msg("01JC0000000000000000000M01", "bob", "hi", 500)), 500);
  const before = JSON.stringify(s.sortedConvs());
  assert.deepEqual(s.takeStale(), []);
  s.apply(ev("context.resync", { reason: "hub outbox full" }, C2), 600);
  s.apply(ev("context.resync", { reason: "hub outbox full" }, C1), 601);
  s.apply(ev("context.resync", { reason: "hub outbox full" }, C1), 602);
  assert.deepEqual(s.takeStale().sort(), [C1, C2]);
  assert.deepEqual(s.takeStale(), [], "taken once");
  assert.equal(JSON.stringify(s.sortedConvs()), before);
  assert.equal(s.open.messages.size, 1, "the open conversation keeps what it shows until it is read again");
});
