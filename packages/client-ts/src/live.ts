// The live channel (`/v1/conversations/:id/live`): published lines as they arrive, with the ack
// protocol (`{"type":"ack","received":N}`, N = text frames received on this socket).
import type { Environment } from "./env.js";
import type { ErrorFrame, LiveClientFrame } from "./frames.js";
import { wsBase } from "./hub.js";
import type { RestClient } from "./rest.js";
import { ReconnectingSocket, type SocketEvents, type SocketOptions } from "./socket.js";

/** Close codes of the live channel: not a member / unknown conversation; the bot went offline; too many unacked frames. */
export const LIVE_CLOSE = { NOT_MEMBER: 4001, BOT_OFFLINE: 4002, TOO_MANY_UNACKED: 4008 } as const;
/** Ack after this many frames (the server allows 4,096 unacked), or after ACK_DELAY_MS. */
const ACK_EVERY = 64;
const ACK_DELAY_MS = 200;

export interface LiveEvents extends SocketEvents {
  /** one published JSON value, as the publisher wrote it */
  line: unknown;
  /** the same line with who published it (a member id: the conversation's bot, or a member when the service allows members to publish) */
  published: { from: string; line: unknown };
  /** an error frame the server sent for a frame it could not take (see `isLiveError`) */
  error: ErrorFrame;
  /** the socket reconnected: the channel sends each publish still in progress again from its first
   *  line, so drop what you kept of publishes not yet finished (their lines follow) */
  reset: { reconnected: true };
}

export interface LiveOptions extends SocketOptions {
  /** reconnect after the bot went offline (4002), with backoff; default false: the socket closes */
  reconnectWhenBotOffline?: boolean;
}

/** Every published line comes as `{"type":"line","from","line"}`; the only other frames are error
 *  frames answering a bad client frame. */
export function isLiveError(v: unknown): v is ErrorFrame {
  if (!v || typeof v !== "object") return false;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  return o.type === "error" && typeof o.code === "string" && typeof o.message === "string" && keys.every((k) => ["type", "code", "message", "requestId"].includes(k));
}

export class LiveSocket extends ReconnectingSocket<LiveEvents> {
  readonly conversationId: string;
  private readonly rest: RestClient;
  private readonly reconnectWhenBotOffline: boolean;
  private received = 0;
  /** Connections opened so far (every one after the first is followed by a replay). */
  private opens = 0;
  private acked = 0;
  private ackTimer: unknown = null;

  constructor(rest: RestClient, conversationId: string, env: Environment, opts: LiveOptions = {}) {
    super(env, opts);
    this.rest = rest;
    this.conversationId = conversationId;
    this.reconnectWhenBotOffline = opts.reconnectWhenBotOffline ?? false;
    this.start();
  }

  /** Text frames received on the current connection (what the next ack says). */
  get receivedCount(): number {
    return this.received;
  }

  /** Sends a raw frame (tests; the library sends acks itself). */
  send(frame: LiveClientFrame | string): boolean {
    const text = typeof frame === "string" ? frame : JSON.stringify(frame);
    return this.sendRaw(text);
  }

  protected async url(): Promise<string> {
    const { ticket } = await this.rest.connectTicket();
    return `${wsBase(this.rest.baseUrl)}/v1/conversations/${encodeURIComponent(this.conversationId)}/live?ticket=${encodeURIComponent(ticket)}`;
  }

  protected protocols(): undefined {
    return undefined;
  }

  protected onOpen(): void {
    this.received = 0;
    this.acked = 0;
    if (this.opens++ > 0) this.emit("reset", { reconnected: true });
  }

  protected isFinalClose(code: number): boolean {
    if (code === LIVE_CLOSE.NOT_MEMBER) return true;
    return code === LIVE_CLOSE.BOT_OFFLINE && !this.reconnectWhenBotOffline;
  }

  protected onText(text: string): void {
    this.received++;
    this.scheduleAck();
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return;
    }
    if (v && typeof v === "object" && (v as { type?: unknown }).type === "line") {
      const f = v as { from: string; line: unknown };
      this.emit("line", f.line);
      this.emit("published", { from: f.from, line: f.line });
      return;
    }
    if (isLiveError(v)) this.emit("error", v);
  }

  private scheduleAck() {
    if (this.received - this.acked >= ACK_EVERY) return this.ackNow();
    if (this.ackTimer !== null) return;
    this.ackTimer = this.env.clock.setTimeout(() => {
      this.ackTimer = null;
      this.ackNow();
    }, ACK_DELAY_MS);
  }

  private ackNow() {
    if (this.ackTimer !== null) this.env.clock.clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (this.received === this.acked) return;
    if (this.sendRaw(JSON.stringify({ type: "ack", received: this.received } satisfies LiveClientFrame))) this.acked = this.received;
  }
}
