// The conversation socket (`/v1/conversations/:id/ws`): the conversation's events with their seq,
// resumed with `?since=` after every drop so that exactly the missed events arrive, once each.
import type { Environment } from "./env.js";
import { SwitchboardError } from "./errors.js";
import type {
  ConversationEventFrame,
  ConversationServerFrame,
  ErrorFrame,
  MessageAckFrame,
  MessageCreateFrame,
} from "./frames.js";
import { wsBase } from "./hub.js";
import type { RestClient } from "./rest.js";
import { ReconnectingSocket, type SocketEvents, type SocketOptions } from "./socket.js";

/** The member left the conversation: the socket is closed for good. */
export const CLOSE_LEFT = 4003;
/** Requests (message.create) waiting for their ack, at most. */
export const MAX_PENDING_REQUESTS = 100;

export interface ConversationEvents extends SocketEvents {
  /** every event, once, in seq order (ephemeral ones, typing, without seq) */
  event: ConversationEventFrame;
  ready: { seq: number; resumed: boolean };
  /** the missed events cannot be replayed: refetch messages and detail over HTTP */
  resync: { seq: number };
  error: ErrorFrame;
}

export interface ConversationSocketOptions extends SocketOptions {
  /** the last seq the app handled (e.g. stored across a reload): resume from there */
  since?: number;
  /** ask for batched frames (`?batch=1`: several frames per text frame, one per line; cheaper for
   *  the server under bursts). Default true; every text frame is split on newlines either way. */
  batch?: boolean;
}

export class ConversationSocket extends ReconnectingSocket<ConversationEvents> {
  readonly conversationId: string;
  private readonly rest: RestClient;
  private lastSeq: number | null;
  private readonly batch: boolean;
  private nextRequest = 1;
  private readonly pending = new Map<string, { resolve: (a: MessageAckFrame) => void; reject: (e: SwitchboardError) => void }>();

  constructor(rest: RestClient, conversationId: string, env: Environment, opts: ConversationSocketOptions = {}) {
    super(env, opts);
    this.rest = rest;
    this.conversationId = conversationId;
    this.lastSeq = opts.since ?? null;
    this.batch = opts.batch ?? true;
    this.start();
  }

  /** The last seq handled (resume position). */
  get seq(): number | null {
    return this.lastSeq;
  }

  /** Sends `message.create` on the socket; resolves with its `message.ack`. Fails at once when the
   *  socket is not open, and when it drops before the ack (the message may or may not exist: send
   *  again with the same clientId, or use the outbox, which does that). */
  createMessage(frame: Omit<MessageCreateFrame, "type" | "requestId">): Promise<MessageAckFrame> {
    if (this.pending.size >= MAX_PENDING_REQUESTS) {
      return Promise.reject(new SwitchboardError(0, "too_many_requests", "too many message.create frames waiting for their ack"));
    }
    const requestId = `r${this.nextRequest++}`;
    const f: MessageCreateFrame = { type: "message.create", requestId, ...frame };
    return new Promise((resolve, reject) => {
      if (!this.sendRaw(JSON.stringify(f))) {
        reject(new SwitchboardError(0, "network", "the conversation socket is not open"));
        return;
      }
      this.pending.set(requestId, { resolve, reject });
    });
  }

  protected async url(): Promise<string> {
    const { ticket } = await this.rest.connectTicket();
    const q = new URLSearchParams({ ticket });
    if (this.lastSeq !== null) q.set("since", String(this.lastSeq));
    if (this.batch) q.set("batch", "1");
    return `${wsBase(this.rest.baseUrl)}/v1/conversations/${encodeURIComponent(this.conversationId)}/ws?${q}`;
  }

  protected protocols(): undefined {
    return undefined;
  }

  protected isFinalClose(code: number): boolean {
    this.failPending();
    return code === CLOSE_LEFT;
  }

  /** A refused upgrade (403: no longer a member, e.g. removed while this client was offline, so the
   *  4003 never arrived; 404: no such conversation) cannot be told apart from a network failure in a
   *  browser. After every 3 failed opens in a row the conversation is asked over HTTP: a 403 or 404
   *  ends the socket for good (`closed` with 4003 and that error), as the 4003 close would have. */
  protected onOpenFailed(consecutive: number): void {
    if (consecutive % 3 !== 0) return;
    this.rest.getConversation(this.conversationId).then(
      () => {},
      (e: unknown) => {
        if (e instanceof SwitchboardError && (e.status === 403 || e.status === 404)) {
          this.failPending();
          this.giveUp(CLOSE_LEFT, e.message, e);
        }
      },
    );
  }

  private failPending() {
    for (const p of this.pending.values()) p.reject(new SwitchboardError(0, "network", "the socket closed before the ack"));
    this.pending.clear();
  }

  close(): void {
    this.failPending();
    super.close();
  }

  protected onText(text: string): void {
    // a batched text frame holds several frames, one per line (JSON text never holds a raw newline)
    for (const line of text.split("\n")) if (line) this.onFrame(line);
  }

  private onFrame(text: string): void {
    let f: ConversationServerFrame;
    try {
      f = JSON.parse(text) as ConversationServerFrame;
    } catch {
      return;
    }
    switch (f.type) {
      case "event":
        if (typeof f.seq === "number") {
          if (this.lastSeq !== null && f.seq <= this.lastSeq) return; // already handled before a drop
          this.lastSeq = f.seq;
        }
        this.emit("event", f);
        return;
      case "ready": {
        const resumed = this.lastSeq !== null;
        if (this.lastSeq === null || f.seq > this.lastSeq) this.lastSeq = f.seq;
        this.emit("ready", { seq: f.seq, resumed });
        return;
      }
      case "resync":
        this.lastSeq = f.seq;
        this.emit("resync", { seq: f.seq });
        return;
      case "message.ack": {
        const p = f.requestId ? this.pending.get(f.requestId) : undefined;
        if (p && f.requestId) {
          this.pending.delete(f.requestId);
          p.resolve(f);
        }
        return;
      }
      case "error": {
        const p = f.requestId ? this.pending.get(f.requestId) : undefined;
        if (p && f.requestId) {
          this.pending.delete(f.requestId);
          p.reject(new SwitchboardError(0, f.code, f.message));
        }
        this.emit("error", f);
        return;
      }
    }
  }
}
