// Baseline 2, a JavaScript room doing the same work per message as Switchboard's ConversationObject
// (src/conversation.rs, send_message + emit): authenticate the bearer JWT (HS256, same secret and
// audience as ours) in the worker, check membership, validate the content blocks and clientId, look
// up the idempotency record, mint a monotonic ULID, write message + idempotency record + activity +
// seq + event log to the object's SQLite, encode the same `message.created` event frame once (same
// shape and size as ours) and send it to every socket. It does NOT do what ours does beyond that:
// no push request to the notifications worker and no alarm that flushes members' lists.
//
// With the binding STORE = "message" (the bench's `room-min` server) a send stores the least any
// durable chat can: ONE statement, the message row, with no read (the conversation, membership, the
// last id and the seq are kept in memory), no idempotency record and no event log. Not a design
// anyone should ship (no retries, no resume): the floor of a stored message's cost on this runtime,
// measured beside ours (bench/README.md, issue 19).
//
//   POST /bench/conversations              setup only (no auth): {conversationId, sandboxId, members:[id]}
//   GET  /v1/conversations/:id/ws          bearer; hibernatable socket; sends {"type":"ready","seq"}
//   POST /v1/messages                      bearer; {conversationId, content, inReplyToMessageId?, clientId?}
//   socket frame {"type":"message.create","requestId"?,"content","inReplyToMessageId"?,"clientId"?}
import { DurableObject } from "cloudflare:workers";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS conversation (
  id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL, title TEXT, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,
  last_activity_at INTEGER, seq INTEGER NOT NULL DEFAULT 0,
  list_version INTEGER NOT NULL DEFAULT 0, list_flushed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS members (
  member_id TEXT PRIMARY KEY, kind TEXT NOT NULL, joined_at INTEGER NOT NULL, left_at INTEGER);
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY, sender_id TEXT NOT NULL, content TEXT NOT NULL, in_reply_to TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER, client_updated_at INTEGER,
  deleted INTEGER NOT NULL DEFAULT 0, delivery_failed INTEGER NOT NULL DEFAULT 0, client_id TEXT);
CREATE TABLE IF NOT EXISTS idempotency (
  sender_id TEXT NOT NULL, client_id TEXT NOT NULL, message_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (sender_id, client_id));
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, frame TEXT NOT NULL);
`;

const IDEM_TTL_MS = 24 * 60 * 60 * 1000;
const REPLAY_WINDOW = 1000;
const MAX_BLOCKS = 20;
const MAX_TEXT_CHARS = 8000;
const MAX_FRAME_BYTES = 64 * 1024;
const ULID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
const invalid = (m) => new ApiError(400, "invalid_request", m);

function errorResponse(e) {
  if (!(e instanceof ApiError)) e = new ApiError(500, "internal", "internal error; nothing was changed");
  return Response.json({ error: { code: e.code, message: e.message } }, { status: e.status });
}

const chars = (s) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

// ---- content validation (the text block rules of packages/core/src/content.rs) ----
function parseContent(v) {
  if (!Array.isArray(v)) throw invalid("content: must be an array of blocks");
  if (v.length === 0 || v.length > MAX_BLOCKS) throw invalid(`content: must have 1..${MAX_BLOCKS} blocks`);
  return v.map((b, i) => {
    const field = `content[${i}]`;
    if (b === null || typeof b !== "object" || Array.isArray(b)) throw invalid(`${field}: must be an object`);
    if (typeof b.type !== "string") throw invalid(`${field}.type: must be a string`);
    if (b.type !== "text") throw invalid(`${field}.type: unknown block type`);
    for (const k of Object.keys(b)) if (k !== "type" && k !== "text") throw invalid(`${field}.${k}: unknown field`);
    if (typeof b.text !== "string") throw invalid(`${field}.text: must be a string`);
    const text = b.text.trim();
    const n = chars(text);
    if (n === 0 || n > MAX_TEXT_CHARS) throw invalid(`${field}.text: must be 1..${MAX_TEXT_CHARS} characters after trimming`);
    return { type: "text", text };
  });
}

function checkClientId(c) {
  if (c === undefined || c === null) return null;
  if (typeof c !== "string") throw invalid("clientId: must be a string");
  const n = chars(c);
  if (n === 0 || n > 128 || CONTROL_RE.test(c)) throw invalid("clientId: must be 1..128 characters without control characters");
  return c;
}

// ---- ULIDs, monotonic within one millisecond ----
const B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
function encodeUlid(time, rand /* Uint8Array(10) */) {
  let out = "";
  let t = time;
  const head = new Array(10);
  for (let i = 9; i >= 0; i--) {
    head[i] = B32[t % 32];
    t = Math.floor(t / 32);
  }
  out = head.join("");
  // 80 random bits -> 16 base32 chars
  let bits = 0, acc = 0;
  for (const byte of rand) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += B32[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}
function decodeUlid(s) {
  let time = 0;
  for (let i = 0; i < 10; i++) time = time * 32 + B32.indexOf(s[i]);
  const rand = new Uint8Array(10);
  let acc = 0, bits = 0, j = 0;
  for (let i = 10; i < 26; i++) {
    acc = (acc << 5) | B32.indexOf(s[i]);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      rand[j++] = (acc >> bits) & 255;
      acc &= (1 << bits) - 1;
    }
  }
  return { time, rand };
}
function nextUlid(last, now) {
  if (last) {
    const d = decodeUlid(last);
    if (now <= d.time) {
      const r = d.rand;
      for (let i = 9; i >= 0; i--) {
        if (r[i] === 255) { r[i] = 0; continue; }
        r[i]++;
        break;
      }
      return encodeUlid(d.time, r);
    }
  }
  return encodeUlid(now, crypto.getRandomValues(new Uint8Array(10)));
}

// ---- bearer JWT (HS256), the claims of packages/auth ----
let keyPromise = null;
let keySecret = null;
function hmacKey(secret) {
  if (!keyPromise || keySecret !== secret) {
    keySecret = secret;
    keyPromise = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  }
  return keyPromise;
}
function b64urlBytes(s) {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
async function verifyBearer(request, env) {
  const unauthorized = new ApiError(401, "unauthorized", "token is invalid, expired or not for this service");
  const h = request.headers.get("authorization");
  if (!h || !h.startsWith("Bearer ")) throw new ApiError(401, "unauthorized", "missing bearer token");
  const token = h.slice(7);
  const parts = token.split(".");
  if (parts.length !== 3) throw unauthorized;
  const ok = await crypto.subtle.verify("HMAC", await hmacKey(env.JWT_SECRET), b64urlBytes(parts[2]), new TextEncoder().encode(parts[0] + "." + parts[1]));
  if (!ok) throw unauthorized;
  let claims;
  try {
    const header = JSON.parse(new TextDecoder().decode(b64urlBytes(parts[0])));
    if (header.alg !== "HS256") throw unauthorized;
    claims = JSON.parse(new TextDecoder().decode(b64urlBytes(parts[1])));
  } catch {
    throw unauthorized;
  }
  const now = Math.floor(Date.now() / 1000);
  const aud = env.JWT_AUDIENCE || "switchboard";
  const auds = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!auds.includes(aud) || typeof claims.exp !== "number" || claims.exp + 60 < now) throw unauthorized;
  if (typeof claims.kiloUserId === "string" && claims.kiloclawSandboxId === undefined) return claims.kiloUserId;
  if (typeof claims.kiloclawSandboxId === "string" && claims.kiloUserId === undefined) return `bot:kiloclaw:${claims.kiloclawSandboxId}`;
  throw unauthorized;
}

export class JsRoom extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
    this.minimal = env.STORE === "message";
    this.known = null; // minimal only: {meta, members: Set, lastId, seq}
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  async fetch(request) {
    const url = new URL(request.url);
    try {
      if (url.pathname === "/ws") return this.accept(request);
      const body = await request.json();
      if (url.pathname === "/create") return this.create(body);
      const sent = this.send(body.caller, body.content, body.inReplyToMessageId ?? null, body.clientId ?? null);
      const answer = { messageId: sent.message.id, message: sent.message };
      if (sent.clientId !== null) answer.clientId = sent.clientId;
      return Response.json(answer, { status: sent.duplicate ? 200 : 201 });
    } catch (e) {
      return errorResponse(e);
    }
  }

  create({ conversationId, sandboxId, members }) {
    const now = Date.now();
    this.sql.exec("INSERT INTO conversation (id, sandbox_id, title, created_by, created_at) VALUES (?, ?, NULL, ?, ?)", conversationId, sandboxId, members[0], now);
    this.sql.exec("INSERT INTO members (member_id, kind, joined_at) VALUES (?, 'bot', ?)", `bot:kiloclaw:${sandboxId}`, now);
    for (const m of members) this.sql.exec("INSERT OR IGNORE INTO members (member_id, kind, joined_at) VALUES (?, 'user', ?)", m, now);
    return Response.json({ createdAt: now }, { status: 201 });
  }

  meta() {
    return this.sql.exec("SELECT id, sandbox_id, title, seq FROM conversation LIMIT 1").toArray()[0];
  }

  requireMember(caller) {
    const meta = this.meta();
    if (!meta) throw new ApiError(404, "not_found", "conversation not found");
    const found = this.sql.exec("SELECT 1 AS v FROM members WHERE member_id = ? AND left_at IS NULL", caller).toArray();
    if (found.length === 0) throw new ApiError(403, "forbidden", "not a member of this conversation");
    return meta;
  }

  accept(request) {
    const member = request.headers.get("x-member");
    const meta = this.requireMember(member);
    const pair = new WebSocketPair();
    const server = pair[1];
    this.ctx.acceptWebSocket(server, [`m:${member}`]);
    server.serializeAttachment({ member, connected_at: Date.now() });
    server.send(JSON.stringify({ type: "ready", seq: meta.seq }));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  webSocketMessage(ws, message) {
    if (typeof message !== "string") {
      ws.send(JSON.stringify({ type: "error", code: "binary_not_supported", message: "binary frames are not supported; send JSON text" }));
      return;
    }
    if (message.length > MAX_FRAME_BYTES) {
      ws.close(1009, "frame too large");
      return;
    }
    let requestId = null;
    try {
      let f;
      try {
        f = JSON.parse(message);
      } catch (e) {
        throw new ApiError(400, "bad_frame", `frame is not valid JSON: ${e.message}`);
      }
      if (f === null || typeof f !== "object" || Array.isArray(f)) throw new ApiError(400, "bad_frame", "frame must be a JSON object");
      if (typeof f.requestId === "string") requestId = f.requestId;
      if (f.type !== "message.create") throw new ApiError(400, "unknown_frame_type", `unknown frame type ${JSON.stringify(f.type)}`);
      for (const k of Object.keys(f)) {
        if (!["type", "requestId", "content", "inReplyToMessageId", "clientId"].includes(k)) throw invalid(`${k}: unknown field`);
      }
      const { member } = ws.deserializeAttachment();
      const sent = this.send(member, f.content, f.inReplyToMessageId ?? null, f.clientId ?? null);
      ws.send(JSON.stringify({ type: "message.ack", requestId, messageId: sent.message.id, message: sent.message, duplicate: sent.duplicate }));
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(500, "internal", "internal error");
      ws.send(JSON.stringify({ type: "error", code: err.code, message: err.message, requestId }));
    }
  }

  webSocketClose(ws) {
    try { ws.close(1000, "closed"); } catch {}
  }

  // The send path: validate, idempotency, write, emit. No await from first read to last write.
  send(caller, rawContent, inReplyTo, rawClientId) {
    if (this.minimal) return this.sendMinimal(caller, rawContent, inReplyTo, rawClientId);
    const meta = this.requireMember(caller);
    const content = parseContent(rawContent);
    const clientId = checkClientId(rawClientId);
    let replyTo = null;
    if (inReplyTo !== null) {
      if (typeof inReplyTo !== "string" || !ULID_RE.test(inReplyTo)) throw invalid("inReplyToMessageId: must be a ULID");
      const row = this.sql.exec("SELECT sender_id FROM messages WHERE id = ?", inReplyTo).toArray()[0];
      if (!row) throw invalid("inReplyToMessageId: no such message in this conversation");
      replyTo = { messageId: inReplyTo, senderId: row.sender_id };
    }
    const now = Date.now();
    if (clientId !== null) {
      const rec = this.sql.exec("SELECT message_id, expires_at FROM idempotency WHERE sender_id = ? AND client_id = ?", caller, clientId).toArray()[0];
      if (rec && rec.expires_at > now) {
        const row = this.sql.exec("SELECT * FROM messages WHERE id = ?", rec.message_id).toArray()[0];
        return { message: this.toMessage(meta.id, row), clientId, duplicate: true };
      }
    }
    const last = this.sql.exec("SELECT id FROM messages ORDER BY id DESC LIMIT 1").toArray()[0];
    const id = nextUlid(last ? last.id : null, now);
    this.sql.exec(
      "INSERT INTO messages (id, sender_id, content, in_reply_to, created_at, client_id) VALUES (?, ?, ?, ?, ?, ?)",
      id, caller, JSON.stringify(content), inReplyTo, now, clientId,
    );
    if (clientId !== null) {
      this.sql.exec("INSERT OR REPLACE INTO idempotency (sender_id, client_id, message_id, expires_at) VALUES (?, ?, ?, ?)", caller, clientId, id, now + IDEM_TTL_MS);
    }
    this.sql.exec("UPDATE conversation SET last_activity_at = ?, list_version = list_version + 1", now);
    const message = {
      id, conversationId: meta.id, senderId: caller, content, inReplyToMessageId: inReplyTo, createdAt: now,
      updatedAt: null, clientUpdatedAt: null, deleted: false, deliveryFailed: false, reactions: [],
    };
    this.emit("message.created", { messageId: id, senderId: caller, content, inReplyToMessageId: inReplyTo, replyTo, clientId, message });
    if (meta.title === null) {
      const title = content.map((b) => b.text).join(" ").slice(0, 80).trim();
      if (title) {
        this.sql.exec("UPDATE conversation SET title = ? WHERE title IS NULL", title);
        this.emit("conversation.renamed", { conversationId: meta.id, title });
      }
    }
    return { message, clientId, duplicate: false };
  }

  // STORE = "message": the same validation, message and frame, one INSERT and no read.
  sendMinimal(caller, rawContent, inReplyTo, rawClientId) {
    if (this.known === null) {
      const meta = this.meta();
      if (!meta) throw new ApiError(404, "not_found", "conversation not found");
      const members = new Set(this.sql.exec("SELECT member_id FROM members WHERE left_at IS NULL").toArray().map((r) => r.member_id));
      const last = this.sql.exec("SELECT id FROM messages ORDER BY id DESC LIMIT 1").toArray()[0];
      this.known = { meta, members, lastId: last ? last.id : null, seq: meta.seq };
    }
    const k = this.known;
    if (!k.members.has(caller)) throw new ApiError(403, "forbidden", "not a member of this conversation");
    const content = parseContent(rawContent);
    const clientId = checkClientId(rawClientId);
    if (inReplyTo !== null) throw invalid("inReplyToMessageId: not supported by the minimal room");
    const now = Date.now();
    const id = nextUlid(k.lastId, now);
    this.sql.exec(
      "INSERT INTO messages (id, sender_id, content, in_reply_to, created_at, client_id) VALUES (?, ?, ?, ?, ?, ?)",
      id, caller, JSON.stringify(content), null, now, clientId,
    );
    k.lastId = id;
    const message = {
      id, conversationId: k.meta.id, senderId: caller, content, inReplyToMessageId: null, createdAt: now,
      updatedAt: null, clientUpdatedAt: null, deleted: false, deliveryFailed: false, reactions: [],
    };
    const payload = { messageId: id, senderId: caller, content, inReplyToMessageId: null, replyTo: null, clientId, message };
    const frame = JSON.stringify({ type: "event", event: "message.created", payload, seq: ++k.seq });
    for (const ws of this.ctx.getWebSockets()) {
      try { ws.send(frame); } catch {}
    }
    return { message, clientId, duplicate: false };
  }

  emit(event, payload) {
    const seq = this.sql.exec("UPDATE conversation SET seq = seq + 1 RETURNING seq AS v").one().v;
    const frame = JSON.stringify({ type: "event", event, payload, seq });
    this.sql.exec("INSERT INTO events (seq, frame) VALUES (?, ?)", seq, frame);
    if (seq % 64 === 0) this.sql.exec("DELETE FROM events WHERE seq <= ?", seq - REPLAY_WINDOW);
    for (const ws of this.ctx.getWebSockets()) {
      try { ws.send(frame); } catch {}
    }
    return seq;
  }

  toMessage(conversationId, r) {
    return {
      id: r.id, conversationId, senderId: r.sender_id, content: JSON.parse(r.content), inReplyToMessageId: r.in_reply_to,
      createdAt: r.created_at, updatedAt: r.updated_at, clientUpdatedAt: r.client_updated_at, deleted: r.deleted !== 0,
      deliveryFailed: r.delivery_failed !== 0, reactions: [],
    };
  }
}

const MESSAGE_KEYS = ["conversationId", "content", "inReplyToMessageId", "clientId"];

export default {
  async fetch(request, env) {
    try {
      const url = new URL(request.url);
      if (url.pathname === "/bench/conversations" && request.method === "POST") {
        const body = await request.json();
        return env.ROOMS.getByName(body.conversationId).fetch("https://room/create", { method: "POST", body: JSON.stringify(body) });
      }
      const ws = url.pathname.match(/^\/v1\/conversations\/([^/]+)\/ws$/);
      if (ws) {
        if (request.headers.get("upgrade") !== "websocket") throw new ApiError(426, "upgrade_required", "this path takes a WebSocket upgrade");
        const member = await verifyBearer(request, env);
        if (!ULID_RE.test(ws[1])) throw invalid("conversationId: must be a ULID");
        return env.ROOMS.getByName(ws[1]).fetch("https://room/ws", { headers: { upgrade: "websocket", "x-member": member } });
      }
      if (url.pathname === "/v1/messages" && request.method === "POST") {
        const caller = await verifyBearer(request, env);
        let body;
        try {
          body = await request.json();
        } catch {
          throw new ApiError(400, "invalid_json", "body is not JSON");
        }
        if (body === null || typeof body !== "object" || Array.isArray(body)) throw new ApiError(400, "invalid_json", "body must be a JSON object");
        for (const k of Object.keys(body)) if (!MESSAGE_KEYS.includes(k)) throw invalid(`${k}: unknown field`);
        if (typeof body.conversationId !== "string" || !ULID_RE.test(body.conversationId)) throw invalid("conversationId: must be a ULID");
        const call = { caller, content: body.content, inReplyToMessageId: body.inReplyToMessageId ?? null, clientId: body.clientId ?? null };
        return env.ROOMS.getByName(body.conversationId).fetch("https://room/rpc", { method: "POST", body: JSON.stringify(call) });
      }
      throw new ApiError(404, "not_found", "no such route");
    } catch (e) {
      return errorResponse(e);
    }
  },
};
