// The web app in real Chromium (Debian's /usr/bin/chromium driven by playwright-core; no browser
// download), against a running server: SWITCHBOARD_URL (the chat worker, which serves the app at
// /), SCREENSHOT_DIR (where the screenshots of the main views go). Run by tests/e2e/tests/web.rs.
//
// Two users in two browser contexts (alice on a desktop-sized window, bob on a phone-sized one)
// sign in by user id (local mode), create a conversation and chat both ways; typing shows and
// clears; replies, reactions, edits and deletions reach the other side; a Kick chat message comes
// in through a bridge with its platform and author (KICK_CONTROL_URL: tests/e2e/js/fake-kick.mjs,
// which publishes Kick-shaped events through the server's own Pusher endpoint); bob goes offline
// (Playwright's offline mode), misses two messages and sends one, and on coming back has each
// message once and in order; a reload keeps bob signed in; the list updates live (a new
// conversation, unread counts); alice watches the bot's live stream arrive line by line.
//
// Every wait is bounded (WAIT_MS) and fails with what it waited for; nothing asserts on timing.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { chromium } from "playwright-core";

const base = process.env.SWITCHBOARD_URL;
const shots = process.env.SCREENSHOT_DIR;
assert.ok(base, "SWITCHBOARD_URL is required");
assert.ok(shots, "SCREENSHOT_DIR is required");
fs.mkdirSync(shots, { recursive: true });

const WAIT_MS = 20_000;
/** fake-kick.mjs's control API (tests/e2e/tests/web.rs starts it) and the chatroom it plays. */
const kickControl = process.env.KICK_CONTROL_URL;
assert.ok(kickControl, "KICK_CONTROL_URL is required");
const KICK_CHATROOM = 4242;
const sfx = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const alice = `alice-${sfx}`;
const bob = `bob-${sfx}`;
const sandbox = `sb-${sfx}`;

/** Polls `fn` until it answers a truthy value; fails naming `what` after WAIT_MS. */
async function until(what, fn, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function api(method, p, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function kick(p, body) {
  const r = await fetch(kickControl + p, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.ok(r.ok, `fake-kick ${p}: ${r.status} ${await r.text()}`);
}

/** The texts of the messages in a page's log, in order (pending outbox copies included). */
const logTexts = (page) => page.getByRole("log").locator("li.msg p.text").allTextContents();

/** Waits until the log's texts satisfy `pred`; answers them. */
const logUntil = (page, what, pred) => until(what, async () => {
  const t = await logTexts(page);
  return pred(t) ? t : false;
});

const count = (texts, s) => texts.filter((t) => t === s).length;

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`) });
}

async function signIn(page, user) {
  await page.goto(`${base}/`);
  await page.getByLabel("User id").fill(user);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("button", { name: "New conversation" }).waitFor();
}

/** The New conversation form, in `sandbox`; waits until the new conversation is shown. */
async function createConversation(page, title, member) {
  await page.getByRole("button", { name: "New conversation" }).click();
  await page.getByLabel("Sandbox id").fill(sandbox);
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Members").fill(member);
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: title }).waitFor();
}

async function send(page, text) {
  await page.getByRole("textbox", { name: "Message" }).fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
}

/** The list entry (a link named by the title) of a conversation. */
const convLink = (page, title) => page.getByRole("link", { name: title, exact: true });

/** A message's item in the log, by its text. */
const messageItem = (page, text) => page.getByRole("log").locator("li.msg").filter({ has: page.locator("p.text", { hasText: text }) });

/** Streams NDJSON lines to the publish route, one at a time: `next()` sends the next line. */
function publisher(conversationId, token) {
  const url = new URL(`${base}/v1/conversations/${conversationId}/publish`);
  let answer;
  const req = http.request({
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/x-ndjson", "transfer-encoding": "chunked" },
  });
  const done = new Promise((resolve, reject) => {
    req.on("response", (res) => {
      let b = "";
      res.on("data", (c) => (b += c));
      res.on("end", () => resolve({ status: res.statusCode, body: b }));
    });
    req.on("error", reject);
  });
  req.flushHeaders();
  return {
    line: (v) => req.write(JSON.stringify(v) + "\n"),
    end: async () => {
      req.end();
      answer = await done;
      return answer;
    },
  };
}

test("the web app: two users, both ways, offline, reload, live list, live stream", async (t) => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.after(() => browser.close());
  const ctxA = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const ctxB = await browser.newContext({ viewport: { width: 390, height: 760 }, isMobile: true, hasTouch: true });
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  for (const [who, p] of [["alice", a], ["bob", b]]) {
    p.setDefaultTimeout(WAIT_MS);
    p.on("pageerror", (e) => console.error(`[${who}] page error: ${e.message}`));
    p.on("console", (m) => m.type() === "error" && console.error(`[${who}] console: ${m.text()}`));
    p.on("dialog", (d) => d.accept());
  }
  // every request the pages make stays on the server's origin (no fonts, no CDNs)
  const origins = new Set();
  for (const ctx of [ctxA, ctxB]) ctx.on("request", (r) => origins.add(new URL(r.url()).origin));
  let conversationId;

  await t.test("alice signs in and creates a conversation with bob", async () => {
    await a.goto(`${base}/`);
    await a.getByLabel("User id").waitFor();
    await shot(a, "1-sign-in");
    await signIn(a, alice);
    await createConversation(a, "Planning", bob);
    await a.getByRole("log").waitFor();
    conversationId = await until("the URL names the conversation", async () => /#\/c\/([0-9A-Z]{26})/.exec(a.url())?.[1]);
    await convLink(a, "Planning").waitFor();
  });

  await t.test("bob signs in, sees it with an unread count, and they chat both ways", async () => {
    await signIn(b, bob);
    await convLink(b, "Planning").waitFor();
    await send(a, "Hello Bob");
    await logUntil(a, "alice's own message is in her log", (x) => count(x, "Hello Bob") === 1);
    // bob's list counts it live
    await until("bob's list shows 1 unread", async () => (await convLink(b, "Planning").locator(".badge").textContent()) === "1");
    await shot(b, "2-list-phone");
    await convLink(b, "Planning").click();
    await logUntil(b, "bob sees alice's message", (x) => count(x, "Hello Bob") === 1);
    // bob has read it: a read receipt under it on alice's side
    await messageItem(a, "Hello Bob").getByText(`Seen by ${bob}`).waitFor();
    await send(b, "Hi Alice");
    await logUntil(a, "alice sees bob's answer after hers", (x) => x.join("|") === "Hello Bob|Hi Alice");
    // presence: both are on the roster as here now
    await a.getByRole("list", { name: "Members" }).getByText(`${bob} (here now)`).waitFor();
  });

  await t.test("typing shows on the other side and clears", async () => {
    const box = b.getByRole("textbox", { name: "Message" });
    await box.click();
    await box.pressSequentially("I am typ");
    await a.getByText(`${bob} is typing…`).waitFor();
    await box.fill("");
    await a.getByText(`${bob} is typing…`).waitFor({ state: "hidden" });
  });

  await t.test("replies, reactions, edits and deletions reach the other side", async () => {
    // alice replies to bob's message
    await messageItem(a, "Hi Alice").getByRole("button", { name: "Reply" }).click();
    await send(a, "Replying to you");
    await messageItem(b, "Replying to you").locator(".quote", { hasText: "You: Hi Alice" }).waitFor();
    // bob reacts to it
    await messageItem(b, "Replying to you").getByRole("button", { name: "React", exact: true }).click();
    await messageItem(b, "Replying to you").getByRole("button", { name: "React with 👍" }).click();
    await messageItem(a, "Replying to you").getByRole("button", { name: /^👍 1/ }).waitFor();
    // alice edits her first message
    await messageItem(a, "Hello Bob").getByRole("button", { name: "Edit" }).click();
    await a.getByRole("textbox", { name: "Message" }).fill("Hello Bob, welcome");
    await a.getByRole("button", { name: "Send", exact: true }).click();
    await messageItem(b, "Hello Bob, welcome").getByText("(edited)").waitFor();
    // bob sends and deletes a message
    await send(b, "Oops, wrong room");
    await logUntil(a, "alice sees bob's mistake", (x) => count(x, "Oops, wrong room") === 1);
    await messageItem(b, "Oops, wrong room").getByRole("button", { name: "Delete" }).click();
    await logUntil(a, "the deletion reaches alice", (x) => count(x, "Oops, wrong room") === 0);
    await a.getByRole("log").getByText("This message was deleted.").waitFor();
  });

  await t.test("a message from a bridged Kick chatroom shows its platform and author", async () => {
    const { token } = await api("POST", "/dev/token", { userId: alice });
    await api("POST", `/v1/conversations/${conversationId}/bridges`, { platform: "kick", chatroomId: KICK_CHATROOM }, token);
    // Pusher keeps nothing: an event published before the bridge has subscribed is lost, so
    // publish (the same Kick message id: never a second copy) until it shows
    const item = messageItem(a, "gg from Kick");
    await until("the Kick message shows in alice's log", async () => {
      if (await item.count()) return true;
      await kick("/trigger", {
        channel: `chatrooms.${KICK_CHATROOM}.v2`,
        event: "App\\Events\\ChatMessageEvent",
        data: {
          id: `kick-${sfx}`, chatroom_id: KICK_CHATROOM, content: "gg from Kick", type: "message", created_at: "2026-11-29T12:00:00+00:00",
          sender: { id: 777, username: "Kicker", slug: "kicker", identity: { color: "#53FC18", badges: [] } },
        },
      });
      await new Promise((r) => setTimeout(r, 300));
      return false;
    }, 60_000);
    await item.locator(".author", { hasText: "Kicker" }).waitFor();
    await item.locator(".platform", { hasText: "Kick" }).waitFor();
    await logUntil(b, "bob has the Kick message once", (x) => count(x, "gg from Kick") === 1);
    assert.equal(count(await logTexts(a), "gg from Kick"), 1);
    await shot(a, "3-conversation");
  });

  await t.test("offline: bob misses two messages and sends one; each arrives once, in order", async () => {
    await ctxB.setOffline(true);
    await b.getByRole("status").filter({ hasText: /offline|Reconnecting/ }).waitFor();
    await send(a, "While you were away 1");
    await send(a, "While you were away 2");
    await logUntil(a, "alice's two messages are stored", (x) => count(x, "While you were away 2") === 1);
    await send(b, "Sent while offline");
    await b.getByRole("log").locator("li.msg.pending", { hasText: "Sent while offline" }).waitFor();
    await shot(b, "4-offline-phone");
    await ctxB.setOffline(false);
    const order = ["Hi Alice", "While you were away 1", "While you were away 2", "Sent while offline"];
    const inOrder = (x) => order.every((s) => count(x, s) === 1) && order.map((s) => x.indexOf(s)).every((v, i, all) => i === 0 || v > all[i - 1]);
    await logUntil(b, "bob has every message once, in order", inOrder);
    await logUntil(a, "alice has bob's offline message once, after hers", inOrder);
    await b.getByRole("log").locator("li.msg.pending").waitFor({ state: "detached" });
    await b.getByRole("status").filter({ hasText: /offline|Reconnecting/ }).waitFor({ state: "hidden" });
  });

  await t.test("a reload keeps bob signed in, on the same conversation", async () => {
    await b.reload();
    await b.getByRole("heading", { name: "Planning" }).waitFor();
    assert.equal(await b.getByLabel("User id").count(), 0, "the sign-in form is not shown after a reload");
    const texts = await logUntil(b, "the conversation is loaded again", (x) => count(x, "Sent while offline") === 1);
    assert.equal(count(texts, "While you were away 1"), 1, texts.join("|"));
  });

  await t.test("bob's list updates live: a new conversation and its unread count", async () => {
    await b.getByRole("link", { name: "‹ Conversations" }).click();
    await convLink(b, "Planning").waitFor();
    await createConversation(a, "Second", bob);
    await convLink(b, "Second").waitFor();
    await send(a, "In the second one");
    await until("bob's list shows 1 unread in Second", async () => (await convLink(b, "Second").locator(".badge").textContent()) === "1");
    await shot(b, "5-list-live-phone");
  });

  await t.test("alice watches the bot's live stream as it arrives", async () => {
    const bot = await api("POST", "/dev/token", { sandboxId: sandbox });
    await api("POST", `/bot/v1/sandboxes/${sandbox}/bot-status`, { online: true }, bot.token);
    await convLink(a, "Planning").click();
    await a.getByRole("heading", { name: "Planning" }).waitFor();
    await a.getByRole("link", { name: "Live" }).click();
    await a.getByRole("status").filter({ hasText: /^Live/ }).waitFor();
    const draft = a.getByLabel("Live output");
    const pub = publisher(conversationId, bot.token);
    pub.line({ delta: "Looking at the plan" });
    await until("the first line shows", async () => (await draft.textContent()) === "Looking at the plan");
    pub.line({ delta: " for next week…" });
    await until("the second line shows after it", async () => (await draft.textContent()) === "Looking at the plan for next week…");
    pub.line({ final: true, content: [{ type: "text", text: "The plan for next week looks good." }], clientId: `live-${sfx}` });
    await until("the final line shows", async () => (await draft.textContent()) === "The plan for next week looks good.");
    await a.getByRole("status").filter({ hasText: "3 frames" }).waitFor();
    await shot(a, "6-live");
    const answer = await pub.end();
    assert.equal(answer.status, 200, answer.body);
    const body = JSON.parse(answer.body);
    assert.equal(body.delivered, 3, answer.body);
    assert.ok(body.messageId, answer.body);
    // the committed message is in the conversation, from the bot
    await a.getByRole("link", { name: "Messages" }).click();
    await messageItem(a, "The plan for next week looks good.").getByText(`Bot (${sandbox})`).waitFor();
  });

  await t.test("no request left the server's origin", async () => {
    const others = [...origins].filter((o) => o !== new URL(base).origin);
    assert.deepEqual(others, [], `requests to other origins: ${others.join(", ")}`);
  });
});
