// Fake time, a fake WebSocket and a fake fetch: the library's logic tested with no network and no
// real timers. Time moves only when a test calls `clock.advance`.
import type { Environment, FetchLike, WebSocketLike } from "../src/env.js";
import type { ConversationEventFrame, HubEventFrame, Message } from "../src/index.js";

export class FakeClock {
  t = 1_700_000_000_000;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void; order: number }>();
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn, order: id });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.timers.delete(h as number);
  };
  /** Runs every timer due within `ms`, in time order, letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      let next: [number, { at: number; fn: () => void; order: number }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].order < next[1].order))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
    await flush();
  }
  pending(): number {
    return this.timers.size;
  }
}

/** Lets every queued promise callback run (no timer involved). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

export class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  closedWith: { code?: number; reason?: string } | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string, readonly protocols?: string | string[]) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(data);
  }
  close(code?: number, reason?: string) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // ---- the server's side
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  push(frame: unknown) {
    this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }
  /** The connection ends (server close or a dropped network: 1006). */
  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** The JSON frames the client sent (pings left out). */
  frames(): any[] {
    return this.sent.filter((s) => s !== "ping").map((s) => JSON.parse(s));
  }
  query(): URLSearchParams {
    return new URL(this.url).searchParams;
  }
  static last(): FakeSocket {
    const s = FakeSocket.all[FakeSocket.all.length - 1];
    if (!s) throw new Error("no socket opened");
    return s;
  }
}

export type Handler = (method: string, path: string, body: any) => { status: number; body?: unknown } | Promise<{ status: number; body?: unknown }>;

export interface FakeEnv extends Environment {
  clock: FakeClock & Environment["clock"];
  calls: { method: string; path: string; body: any }[];
}

/** An environment whose fetch answers tickets itself and hands every other call to `handler`. */
export function fakeEnv(handler: Handler = () => ({ status: 404, body: { error: { code: "not_found", message: "no" } } })): FakeEnv {
  FakeSocket.all = [];
  const clock = new FakeClock();
  const calls: FakeEnv["calls"] = [];
  let tickets = 0;
  const fetch: FetchLike = async (url, init) => {
    const u = new URL(url);
    const body = init.body === undefined ? undefined : JSON.parse(init.body);
    calls.push({ method: init.method, path: u.pathname + u.search, body });
    const r = u.pathname === "/connect-ticket" ? { status: 200, body: { ticket: `t${++tickets}`, expiresAt: "x" } } : await handler(init.method, u.pathname + u.search, body);
    const text = r.body === undefined ? "" : JSON.stringify(r.body);
    return { status: r.status, text: async () => text };
  };
  let r = 0;
  return { fetch, WebSocket: FakeSocket, clock, random: () => ((r = (r * 7 + 3) % 10) / 10), calls };
}

// Shared test data: the server, a conversation id, events and a message.
export const BASE = "http://127.0.0.1:8787";
export const C = "01JC0000000000000000000000";
export const ev = (seq: number, messageId = `m${seq}`): ConversationEventFrame => ({ type: "event", event: "message.deleted", payload: { messageId }, seq });
export const hubEv = (seq: number, context = "/kiloclaw/sb/" + C): HubEventFrame => ({ type: "event", context, event: "message.deleted", payload: { messageId: `m${seq}` }, seq });
export const msg = (id: string, clientId: string): Message => ({
  id, conversationId: C, senderId: "alice", content: [{ type: "text", text: clientId }], inReplyToMessageId: null,
  createdAt: 1, updatedAt: null, clientUpdatedAt: null, deleted: false, deliveryFailed: false, reactions: [],
});
