// Switchboard's TypeScript client: the HTTP API, the hub, the conversation socket and the live
// channel, with reconnect, resume, an outbox and typing. See README.md.
import { defaultEnvironment, type Environment } from "./env.js";
import { HubSocket, type HubOptions } from "./hub.js";
import { ConversationSocket, type ConversationSocketOptions } from "./conversation.js";
import { LiveSocket, type LiveOptions } from "./live.js";
import { Outbox, type OutboxOptions } from "./outbox.js";
import { devToken, RestClient, type TokenSource } from "./rest.js";
import { TypingNotifier } from "./typing.js";
import type { DevToken } from "./types.js";
import type { ContentBlock } from "./frames.js";

export * from "./frames.js";
export * from "./types.js";
export { SwitchboardError, errorFromAnswer } from "./errors.js";
export { defaultEnvironment, randomId } from "./env.js";
export type { Environment, WebSocketLike, WebSocketConstructor, FetchLike, Clock } from "./env.js";
export { backoffDelay, type BackoffOptions } from "./backoff.js";
export { RestClient, devToken, text, type TokenSource } from "./rest.js";
export { ReconnectingSocket, type SocketState, type SocketOptions, type SocketEvents } from "./socket.js";
export { HubSocket, HUB_PROTOCOL, HUB_CLOSE, wsBase, type HubOptions, type HubEvents } from "./hub.js";
export {
  ConversationSocket,
  CLOSE_LEFT,
  MAX_PENDING_REQUESTS,
  type ConversationSocketOptions,
  type ConversationEvents,
} from "./conversation.js";
export { LiveSocket, LIVE_CLOSE, isLiveError, type LiveOptions, type LiveEvents } from "./live.js";
export { Outbox, MAX_OUTBOX, type OutboxEntry, type OutboxEvents, type OutboxOptions } from "./outbox.js";
export { TypingNotifier, TYPING_THROTTLE_MS, TYPING_IDLE_MS } from "./typing.js";

/** Hub context paths (docs/events.md#contexts). */
export const contexts = {
  instance: (sandboxId: string) => `/kiloclaw/${sandboxId}`,
  conversation: (sandboxId: string, conversationId: string) => `/kiloclaw/${sandboxId}/${conversationId}`,
  /** the presence path of an event context (puts the user on a conversation's roster) */
  presence: (eventContext: string) => `/presence${eventContext}`,
  app: "/presence/app",
  web: "/presence/web",
} as const;

type TrackedSocket = { close(): void; retryNow(): void; on(name: "closed", fn: () => void): () => void };

export interface SwitchboardOptions {
  /** e.g. `http://127.0.0.1:8787` or `location.origin` */
  baseUrl: string;
  /** a bearer token, or a provider (called with `refresh: true` after a 401) */
  token: TokenSource;
  /** fetch, WebSocket, clock, random (defaults: the globals; Node 20: pass `WebSocket` from `ws`) */
  env?: Partial<Environment>;
  outbox?: OutboxOptions;
  /** in a browser, listen to `online` to reconnect at once (default true) */
  watchOnline?: boolean;
}

/** The client: every HTTP call of `RestClient`, plus sockets, the outbox and typing. */
export class Switchboard extends RestClient {
  readonly env: Environment;
  /** Sends messages with a clientId, retried until the server has them. */
  readonly outbox: Outbox;
  private hubSocket: HubSocket | null = null;
  private readonly typers = new Map<string, TypingNotifier>();
  /** every socket opened through this client, closed by `close()` */
  private readonly sockets = new Set<TrackedSocket>();

  private readonly offOnline: () => void;

  constructor(opts: SwitchboardOptions) {
    const env = defaultEnvironment(opts.env);
    super(opts.baseUrl, opts.token, env);
    this.env = env;
    this.outbox = new Outbox((m) => this.sendMessage(m), env, opts.outbox);
    // in a browser: when the network comes back, skip the backoff waits
    const g = globalThis as { addEventListener?: (n: string, f: () => void) => void; removeEventListener?: (n: string, f: () => void) => void };
    const online = () => this.retryNow();
    if (opts.watchOnline !== false && typeof g.addEventListener === "function") {
      g.addEventListener("online", online);
      this.offOnline = () => g.removeEventListener?.("online", online);
    } else {
      this.offOnline = () => {};
    }
  }

  /** Every socket waiting out a backoff connects now, and the outbox sends now (the network is back). */
  retryNow(): void {
    for (const s of this.sockets) s.retryNow();
    this.outbox.retryNow();
  }

  /** Local mode: signs in as `userId` with `POST /dev/token`. The token lasts an hour; the client asks for a new one after a 401. */
  static async devSignIn(
    opts: Omit<SwitchboardOptions, "token"> & { userId: string },
  ): Promise<{ client: Switchboard; session: DevToken }> {
    const env = defaultEnvironment(opts.env);
    let session = await devToken(opts.baseUrl, { userId: opts.userId }, env);
    const client = new Switchboard({
      ...opts,
      env,
      token: async (refresh) => {
        if (refresh) session = await devToken(opts.baseUrl, { userId: opts.userId }, env);
        return session.token;
      },
    });
    return { client, session };
  }

  /** Opens (once) the user's event socket; typing goes over it while it is open. */
  connectHub(opts: HubOptions = {}): HubSocket {
    if (this.hubSocket && this.hubSocket.state !== "closed") {
      if (opts.contexts) this.hubSocket.subscribe(...opts.contexts);
      return this.hubSocket;
    }
    const hub = this.track(new HubSocket(this, this.env, opts));
    hub.on("ready", () => this.outbox.retryNow());
    this.hubSocket = hub;
    return hub;
  }

  /** The hub, if `connectHub` opened one. */
  get hub(): HubSocket | null {
    return this.hubSocket;
  }

  /** Opens a conversation socket (events with the conversation's seq; resumes with `since`). */
  openConversation(conversationId: string, opts: ConversationSocketOptions = {}): ConversationSocket {
    const s = this.track(new ConversationSocket(this, conversationId, this.env, opts));
    s.on("ready", () => this.outbox.retryNow());
    return s;
  }

  /** Opens the live channel of a conversation (acks are sent for you). */
  openLive(conversationId: string, opts: LiveOptions = {}): LiveSocket {
    return this.track(new LiveSocket(this, conversationId, this.env, opts));
  }

  private track<S extends TrackedSocket>(s: S): S {
    this.sockets.add(s);
    s.on("closed", () => this.sockets.delete(s));
    return s;
  }

  /** Queues a text or block message in the outbox. */
  send(conversationId: string, content: string | ContentBlock[], opts: { inReplyToMessageId?: string; clientId?: string } = {}) {
    const blocks = typeof content === "string" ? [{ type: "text" as const, text: content }] : content;
    this.typers.get(conversationId)?.stop();
    return this.outbox.send({ conversationId, content: blocks, ...opts });
  }

  /** The conversation's typing notifier (one per conversation): call `keystroke()` on input and
   *  `stop()` when done; `send` stops it. Goes over the hub while it is open, else over HTTP. */
  typingNotifier(conversationId: string): TypingNotifier {
    let t = this.typers.get(conversationId);
    if (!t) {
      t = new TypingNotifier((stop) => {
        if (this.hubSocket?.typing(conversationId, stop)) return;
        (stop ? this.typingStop(conversationId) : this.typing(conversationId)).catch(() => {});
      }, this.env);
      this.typers.set(conversationId, t);
    }
    return t;
  }

  /** Closes every socket this client opened and stops the outbox (its entries stay in `outbox.entries`). */
  close(): void {
    this.offOnline();
    for (const s of [...this.sockets]) s.close();
    this.outbox.close();
    for (const t of this.typers.values()) t.stop();
  }
}
