// The per-user event socket (`/connect`, kilo.events.v1): contexts, acks, typing, and resume of the
// same session with `session` + `since` so that exactly the missed events are replayed.
import type { Environment } from "./env.js";
import type {
  HelloFrame,
  HubClientFrame,
  HubErrorFrame,
  HubEventFrame,
  HubServerFrame,
} from "./frames.js";
import type { RestClient } from "./rest.js";
import { ReconnectingSocket, type SocketEvents, type SocketOptions } from "./socket.js";

export const HUB_PROTOCOL = "kilo.events.v1";
/** The hub's close codes (docs/events.md). */
export const HUB_CLOSE = { TOO_MANY_UNACKED: 4002, STALE: 4008, REPLACED: 4009 } as const;
/** The hub closes a socket with more than 50 unacked events; ack well before. */
const ACK_EVERY = 20;
const ACK_DELAY_MS = 250;
/** Contexts one subscribe or unsubscribe frame may list (the server refuses a longer list whole). */
export const MAX_CONTEXTS_PER_FRAME = 200;

export interface HubEvents extends SocketEvents {
  /** every event of a subscribed context, once, in order (deduplicated by seq across resumes) */
  event: HubEventFrame;
  hello: HelloFrame;
  /** the opening is done (replay or resync included); `resumed`: the session's missed events were replayed */
  ready: { seq: number; resumed: boolean };
  /** the missed events cannot be replayed: refetch what you show over HTTP */
  resync: { seq: number };
  error: HubErrorFrame;
  /** the server confirmed subscriptions */
  subscribed: string[];
}

export interface HubOptions extends SocketOptions {
  /** contexts to subscribe to from the start */
  contexts?: string[];
  /** resume a stored position: `{sessionId, seq}` from `hub.position` of an earlier page */
  resume?: { sessionId: string; seq: number };
  /** ask for batched frames (`?batch=1`: several frames per text frame, one per line; cheaper for
   *  the server under bursts). Default true; every text frame is split on newlines either way. */
  batch?: boolean;
}

export class HubSocket extends ReconnectingSocket<HubEvents> {
  private readonly rest: RestClient;
  private readonly wanted = new Set<string>();
  private serverContexts = new Set<string>();
  private sessionId: string | null = null;
  /** the highest seq handled (events with a seq at or below it are duplicates) */
  private lastSeq: number | null = null;
  private ackedSeq = 0;
  private unacked = 0;
  private ackTimer: unknown = null;
  private readyNow = false;
  /** This opening's `hello.restored`, and whether it sent `resync`. */
  private restored = false;
  private resynced = false;
  private readonly batch: boolean;

  constructor(rest: RestClient, env: Environment, opts: HubOptions = {}) {
    super(env, opts);
    this.rest = rest;
    this.batch = opts.batch ?? true;
    for (const c of opts.contexts ?? []) this.wanted.add(c);
    if (opts.resume) {
      this.sessionId = opts.resume.sessionId;
      this.lastSeq = opts.resume.seq;
    }
    this.start();
  }

  /** Where this socket stands, to resume it later (store it; pass it as `resume`). */
  get position(): { sessionId: string | null; seq: number | null } {
    return { sessionId: this.sessionId, seq: this.lastSeq };
  }

  /** The contexts this socket wants (subscribed again after every reconnect when needed). */
  get contexts(): string[] {
    return [...this.wanted];
  }

  subscribe(...contexts: string[]): void {
    const add = contexts.filter((c) => !this.wanted.has(c));
    for (const c of add) this.wanted.add(c);
    if (add.length && this.readyNow) this.sendContexts("context.subscribe", add);
  }

  unsubscribe(...contexts: string[]): void {
    const drop = contexts.filter((c) => this.wanted.has(c));
    for (const c of drop) this.wanted.delete(c);
    if (drop.length && this.readyNow) this.sendContexts("context.unsubscribe", drop);
  }

  /** One frame per `MAX_CONTEXTS_PER_FRAME` contexts, in order. */
  private sendContexts(type: "context.subscribe" | "context.unsubscribe", contexts: string[]): void {
    for (let i = 0; i < contexts.length; i += MAX_CONTEXTS_PER_FRAME) {
      this.send({ type, contexts: contexts.slice(i, i + MAX_CONTEXTS_PER_FRAME) });
    }
  }

  /** Typing over the hub (the server broadcasts at most one per 2 s; `TypingNotifier` throttles). Answers whether it was sent. */
  typing(conversationId: string, stop = false): boolean {
    return this.send({ type: stop ? "typing.stop" : "typing", conversationId });
  }

  /** Sends a client frame; answers whether the socket was open. */
  send(frame: HubClientFrame): boolean {
    return this.sendRaw(JSON.stringify(frame));
  }

  protected async url(): Promise<string> {
    const { ticket } = await this.rest.connectTicket();
    const q = new URLSearchParams({ ticket });
    // `since` only with our own session: alone, the server would take up the user's most recently
    // closed session, which may be another tab's, and replay its contexts, not ours
    if (this.sessionId) {
      q.set("session", this.sessionId);
      if (this.lastSeq !== null) q.set("since", String(this.lastSeq));
    }
    if (this.batch) q.set("batch", "1");
    return `${wsBase(this.rest.baseUrl)}/connect?${q}`;
  }

  protected protocols(): string[] {
    return [HUB_PROTOCOL];
  }

  protected onOpen(): void {
    this.readyNow = false;
    this.unacked = 0;
    this.ackedSeq = 0;
  }

  protected isFinalClose(code: number): boolean {
    // another connection took this session over (a second tab restored the same position): do
    // not fight it for the session; carry on with a session of our own from the same seq
    if (code === HUB_CLOSE.REPLACED) this.sessionId = null;
    return false;
  }

  /** An upgrade refused 400 for a session the server no longer takes cannot be told apart from a
   *  network failure in a browser: after 3 failed opens in a row, stop naming the session (the
   *  server then resumes the user's most recently closed session, or answers resync). */
  protected onOpenFailed(consecutive: number): void {
    if (consecutive >= 3 && this.sessionId !== null) this.sessionId = null;
  }

  protected onText(text: string): void {
    // a batched text frame holds several frames, one per line (JSON text never holds a raw newline)
    for (const line of text.split("\n")) if (line) this.onFrame(line);
  }

  private onFrame(text: string): void {
    let f: HubServerFrame;
    try {
      f = JSON.parse(text) as HubServerFrame;
    } catch {
      return;
    }
    switch (f.type) {
      case "hello": {
        this.restored = f.restored;
        this.resynced = false;
        this.sessionId = f.sessionId;
        this.serverContexts = new Set(f.contexts);
        this.emit("hello", f);
        return;
      }
      case "event": {
        if (typeof f.seq === "number") {
          if (this.lastSeq !== null && f.seq <= this.lastSeq) return; // seen before a drop
          this.lastSeq = f.seq;
          this.unacked++;
          this.scheduleAck();
        }
        this.emit("event", f);
        return;
      }
      case "resync": {
        this.resynced = true;
        this.lastSeq = f.seq;
        this.emit("resync", { seq: f.seq });
        return;
      }
      case "ready": {
        const hadPosition = this.lastSeq !== null;
        const resumed = hadPosition && this.restored;
        if (hadPosition && !this.restored && !this.resynced) {
          // a new session (ours was dropped or is gone): what happened since our position was
          // not replayed, so the app must refetch, as after a resync frame
          this.emit("resync", { seq: f.seq });
          this.lastSeq = f.seq;
        }
        if (this.lastSeq === null || f.seq > this.lastSeq) this.lastSeq = f.seq;
        this.readyNow = true;
        // bring the server's subscriptions to what we want (a new session has none)
        const add = [...this.wanted].filter((c) => !this.serverContexts.has(c));
        const drop = [...this.serverContexts].filter((c) => !this.wanted.has(c));
        if (add.length) this.sendContexts("context.subscribe", add);
        if (drop.length) this.sendContexts("context.unsubscribe", drop);
        this.ackNow();
        this.emit("ready", { seq: f.seq, resumed });
        return;
      }
      case "context.subscribed":
        for (const c of f.contexts) this.serverContexts.add(c);
        this.emit("subscribed", f.contexts);
        return;
      case "context.unsubscribed":
        for (const c of f.contexts) this.serverContexts.delete(c);
        return;
      case "error":
        if (f.code === "forbidden_context" && f.context) this.wanted.delete(f.context);
        this.emit("error", f);
        return;
    }
  }

  private scheduleAck() {
    if (this.unacked >= ACK_EVERY) return this.ackNow();
    if (this.ackTimer !== null) return;
    this.ackTimer = this.env.clock.setTimeout(() => {
      this.ackTimer = null;
      this.ackNow();
    }, ACK_DELAY_MS);
  }

  private ackNow() {
    if (this.ackTimer !== null) this.env.clock.clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (this.lastSeq === null || this.lastSeq <= this.ackedSeq && this.unacked === 0) return;
    if (this.send({ type: "ack", seq: this.lastSeq })) {
      this.ackedSeq = this.lastSeq;
      this.unacked = 0;
    }
  }
}

/** `http(s)://host` → `ws(s)://host`. */
export function wsBase(baseUrl: string): string {
  return baseUrl.replace(/^http/, "ws").replace(/\/$/, "");
}
