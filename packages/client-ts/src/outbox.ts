// The outbox: every send gets a clientId and is retried with that same clientId until the server
// answers it (the server's idempotency makes a repeat answer the original: no duplicate), across
// dropped networks and reconnects (no loss). Bounded; entries can be persisted and restored.
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { randomId, type Environment } from "./env.js";
import { SwitchboardError } from "./errors.js";
import type { ContentBlock } from "./frames.js";
import type { SendMessage, SentMessage } from "./types.js";

/** Messages waiting in the outbox, at most (a send past it fails with `outbox_full`). */
export const MAX_OUTBOX = 200;

export interface OutboxEntry {
  clientId: string;
  conversationId: string;
  content: ContentBlock[];
  inReplyToMessageId?: string;
  /** when it was queued (ms) */
  queuedAt: number;
  /** attempts so far */
  attempts: number;
  state: "queued" | "sending" | "waiting";
  /** the last retryable failure */
  lastError?: string;
}

export interface OutboxEvents {
  /** the queue changed (persist `entries` here to survive a reload) */
  change: OutboxEntry[];
  /** a message was acknowledged by the server */
  sent: { entry: OutboxEntry; result: SentMessage };
  /** the server refused it for good (4xx other than 408/429): it is dropped */
  failed: { entry: OutboxEntry; error: SwitchboardError };
}

export interface OutboxOptions {
  backoff?: BackoffOptions;
  /** entries restored from storage (from a `change` event of an earlier page) */
  restore?: OutboxEntry[];
  max?: number;
  /** an attempt without an answer after this many ms is given up and retried (default 20 000): a
   *  request on a connection that died silently may otherwise never settle */
  attemptTimeoutMs?: number;
}

type Transport = (m: SendMessage) => Promise<SentMessage>;

export class Outbox extends Emitter<OutboxEvents> {
  private readonly env: Environment;
  private readonly transport: Transport;
  private readonly opts: OutboxOptions;
  private readonly queue: OutboxEntry[] = [];
  private readonly waiters = new Map<string, { resolve: (r: SentMessage) => void; reject: (e: SwitchboardError) => void }[]>();
  private timer: unknown = null;
  private attemptTimer: unknown = null;
  private busy = false;
  private closed = false;

  constructor(transport: Transport, env: Environment, opts: OutboxOptions = {}) {
    super();
    this.transport = transport;
    this.env = env;
    this.opts = opts;
    for (const e of opts.restore ?? []) this.queue.push({ ...e, state: "queued" });
    if (this.queue.length) this.kick();
  }

  /** The entries waiting, oldest first (copies). */
  get entries(): OutboxEntry[] {
    return this.queue.map((e) => ({ ...e }));
  }

  /** Queues a message; resolves when the server has it (`result.message`), rejects only when it
   *  refuses it for good. Its `clientId` (given, or made here) is on the `message.created` event,
   *  to match an optimistic copy. */
  send(m: { conversationId: string; content: ContentBlock[]; inReplyToMessageId?: string; clientId?: string }): {
    clientId: string;
    done: Promise<SentMessage>;
  } {
    if (this.closed) throw new SwitchboardError(0, "closed", "the outbox is closed");
    if (this.queue.length >= (this.opts.max ?? MAX_OUTBOX)) {
      throw new SwitchboardError(0, "outbox_full", `the outbox holds at most ${this.opts.max ?? MAX_OUTBOX} messages`);
    }
    const clientId = m.clientId ?? randomId(this.env.random);
    const entry: OutboxEntry = {
      clientId,
      conversationId: m.conversationId,
      content: m.content,
      inReplyToMessageId: m.inReplyToMessageId,
      queuedAt: this.env.clock.now(),
      attempts: 0,
      state: "queued",
    };
    this.queue.push(entry);
    const done = this.wait(clientId);
    this.changed();
    this.kick();
    return { clientId, done };
  }

  /** A promise for an entry already queued (e.g. restored). */
  wait(clientId: string): Promise<SentMessage> {
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(clientId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(clientId, list);
    });
  }

  /** Tries now instead of waiting out the backoff (the network or a socket came back). */
  retryNow(): void {
    if (this.timer !== null) {
      this.env.clock.clearTimeout(this.timer);
      this.timer = null;
    }
    for (const e of this.queue) if (e.state === "waiting") e.state = "queued";
    this.kick();
  }

  /** Stops retrying (the entries stay in `entries`). */
  close(): void {
    this.closed = true;
    if (this.timer !== null) this.env.clock.clearTimeout(this.timer);
    if (this.attemptTimer !== null) this.env.clock.clearTimeout(this.attemptTimer);
    this.timer = null;
    this.attemptTimer = null;
  }

  private changed() {
    this.emit("change", this.entries);
  }

  /** Sends the oldest entry; one at a time, so messages arrive in the order they were sent. */
  private kick(): void {
    if (this.busy || this.closed || this.timer !== null) return;
    const e = this.queue[0];
    if (!e) return;
    this.busy = true;
    e.state = "sending";
    e.attempts++;
    const body: SendMessage = { conversationId: e.conversationId, content: e.content, clientId: e.clientId };
    if (e.inReplyToMessageId) body.inReplyToMessageId = e.inReplyToMessageId;
    // settled once: by the answer, or by the timeout (a late answer is then ignored; the retry
    // with the same clientId is answered with the original)
    let settled = false;
    const once = <A>(f: (a: A) => void) => (a: A) => {
      if (settled) return;
      settled = true;
      this.env.clock.clearTimeout(this.attemptTimer);
      this.attemptTimer = null;
      f(a);
    };
    const failed = once((err: unknown) => {
      const error = err instanceof SwitchboardError ? err : new SwitchboardError(0, "network", String(err));
      if (!error.retryable) {
        this.settle(e, () => {
          this.emit("failed", { entry: { ...e }, error });
          for (const w of this.waiters.get(e.clientId) ?? []) w.reject(error);
        });
        return;
      }
      this.busy = false;
      e.state = "waiting";
      e.lastError = `${error.code}: ${error.message}`;
      this.changed();
      if (this.closed) return;
      const delay = backoffDelay(e.attempts - 1, this.env.random, this.opts.backoff ?? { baseMs: 500, maxMs: 15_000 });
      this.timer = this.env.clock.setTimeout(() => {
        this.timer = null;
        e.state = "queued";
        this.kick();
      }, delay);
    });
    const answered = once((result: SentMessage) =>
      this.settle(e, () => {
        this.emit("sent", { entry: { ...e }, result });
        for (const w of this.waiters.get(e.clientId) ?? []) w.resolve(result);
      }),
    );
    this.attemptTimer = this.env.clock.setTimeout(
      () => failed(new SwitchboardError(0, "network", "no answer in time")),
      this.opts.attemptTimeoutMs ?? 20_000,
    );
    this.transport(body).then(answered, failed);
  }

  private settle(e: OutboxEntry, tell: () => void) {
    this.busy = false;
    const i = this.queue.indexOf(e);
    if (i >= 0) this.queue.splice(i, 1);
    tell();
    this.waiters.delete(e.clientId);
    this.changed();
    this.kick();
  }
}
