// A WebSocket that reconnects by itself: a fresh ticket per connect, jittered exponential backoff,
// a text `ping` at open and every 15 s, and a dead-connection check (nothing heard for two ping
// periods). The ping at open is there for the server's closes: under workerd, a hibernatable socket
// that has sent nothing yet is let go only when its object hibernates (~10 s) after the object closes
// it (leave, bot offline, replaced); one frame from the client, even the runtime-answered `ping`, makes
// that close complete at once (docs/reliability.md, "Closes that complete").
// The hub, conversation and live sockets build on it and add their own resume rules.
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import type { Environment, WebSocketLike } from "./env.js";
import { SwitchboardError } from "./errors.js";

export type SocketState = "connecting" | "open" | "reconnecting" | "closed";

export interface SocketOptions {
  backoff?: BackoffOptions;
  /** ms between pings (default 15 000; the hub closes sockets silent for 45 s) */
  pingIntervalMs?: number;
}

export interface SocketEvents {
  state: SocketState;
  /** the underlying socket closed (code, reason), before any reconnect */
  disconnect: { code: number; reason: string };
  /** the socket closed for good: a close code that says so (left, not a member...), or a refused ticket */
  closed: { code: number; reason: string; error?: SwitchboardError };
}

/** How a subclass opens: the URL (with its ticket) for this attempt. */
export type UrlFactory = () => Promise<string>;

/** A connection that stayed open this long resets the reconnect backoff; one closed sooner (e.g.
 *  accepted and closed at once, as the live channel does while the bot is offline) counts as a
 *  failed attempt, so retries slow down instead of looping every half second. */
export const STABLE_CONNECTION_MS = 10_000;

export abstract class ReconnectingSocket<M extends SocketEvents> extends Emitter<M> {
  protected readonly env: Environment;
  private readonly opts: SocketOptions;
  private ws: WebSocketLike | null = null;
  private attempt = 0;
  /** When the current connection opened (`null` when there is none). */
  private openedAt: number | null = null;
  private retryTimer: unknown = null;
  private pingTimer: unknown = null;
  private heardSincePing = true;
  private openFailures = 0;
  private stopped = false;
  private _state: SocketState = "connecting";

  protected constructor(env: Environment, opts: SocketOptions = {}) {
    super();
    this.env = env;
    this.opts = opts;
  }

  get state(): SocketState {
    return this._state;
  }

  /** The URL to open now (a new ticket every time). Throwing a SwitchboardError with a 4xx status other than 401/408/429 stops reconnecting. */
  protected abstract url(): Promise<string>;
  protected abstract protocols(): string[] | undefined;
  /** Called with each text frame that is not the runtime's `pong`. */
  protected abstract onText(text: string): void;
  /** The underlying socket opened. */
  protected onOpen(): void {}
  /** A connection closed before it opened (a browser cannot see why: the upgrade may have been refused). */
  protected onOpenFailed(_consecutive: number): void {}
  /** The underlying socket closed; answer true to stop for good. */
  protected isFinalClose(_code: number): boolean {
    return false;
  }

  protected start(): void {
    void this.connect();
  }

  /** Sends a frame if the socket is open; answers whether it was sent. */
  protected sendRaw(data: string): boolean {
    if (this.ws && this.ws.readyState === 1) {
      this.ws.send(data);
      return true;
    }
    return false;
  }

  private setState(s: SocketState) {
    if (this._state === s) return;
    this._state = s;
    (this.emit as (n: "state", v: SocketState) => void)("state", s);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.setState(this.attempt === 0 && this._state !== "reconnecting" ? "connecting" : "reconnecting");
    let url: string;
    try {
      url = await this.url();
    } catch (e) {
      const err = e instanceof SwitchboardError ? e : new SwitchboardError(0, "network", String(e));
      // a refused ticket (401 after the token provider's refresh, 403, 404...) will not get better
      if (!err.retryable) return this.finish(0, err.message, err);
      return this.scheduleRetry();
    }
    if (this.stopped) return;
    let ws: WebSocketLike;
    try {
      ws = new this.env.WebSocket(url, this.protocols());
    } catch {
      return this.scheduleRetry();
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.openedAt = this.env.clock.now();
      this.openFailures = 0;
      this.heardSincePing = true;
      this.setState("open");
      ws.send("ping");
      this.schedulePing();
      this.onOpen();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.heardSincePing = true;
      if (typeof ev.data !== "string") return;
      if (ev.data === "pong") return;
      this.onText(ev.data);
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      if (!opened) this.onOpenFailed(++this.openFailures);
      this.dropped(ev.code, ev.reason);
    };
  }

  private dropped(code: number, reason: string) {
    if (this.openedAt !== null && this.env.clock.now() - this.openedAt >= STABLE_CONNECTION_MS) this.attempt = 0;
    this.openedAt = null;
    this.ws = null;
    this.clearPing();
    (this.emit as (n: "disconnect", v: { code: number; reason: string }) => void)("disconnect", { code, reason });
    if (this.stopped) return;
    if (this.isFinalClose(code)) return this.finish(code, reason);
    this.scheduleRetry();
  }

  private scheduleRetry() {
    if (this.stopped) return;
    this.setState("reconnecting");
    const delay = backoffDelay(this.attempt++, this.env.random, this.opts.backoff);
    this.retryTimer = this.env.clock.setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
  }

  private schedulePing() {
    this.clearPing();
    this.pingTimer = this.env.clock.setTimeout(() => {
      this.pingTimer = null;
      const ws = this.ws;
      if (!ws) return;
      if (!this.heardSincePing) {
        // nothing (not even a pong) for a whole period: the connection is dead; start over
        this.ws = null;
        try {
          ws.close(4000, "no pong");
        } catch {
          // already closing
        }
        this.dropped(1006, "no answer to ping");
        return;
      }
      this.heardSincePing = false;
      this.sendRaw("ping");
      this.schedulePing();
    }, this.opts.pingIntervalMs ?? 15_000);
  }

  private clearPing() {
    if (this.pingTimer !== null) this.env.clock.clearTimeout(this.pingTimer);
    this.pingTimer = null;
  }

  /** When waiting out a backoff, connects now (e.g. the browser came back online); an open socket is left alone. */
  retryNow(): void {
    if (this.stopped || this.retryTimer === null) return;
    this.env.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempt = 0;
    void this.connect();
  }

  /** Drops the current connection and reconnects at once. */
  reconnectNow(): void {
    if (this.stopped) return;
    if (this.retryTimer !== null) {
      this.env.clock.clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.attempt = 0;
      void this.connect();
      return;
    }
    const ws = this.ws;
    if (ws) {
      this.ws = null;
      try {
        ws.close(4000, "reconnect");
      } catch {
        // already closing
      }
      this.attempt = 0;
      this.dropped(4000, "reconnect");
    }
  }

  private finish(code: number, reason: string, error?: SwitchboardError) {
    this.stopped = true;
    this.clearPing();
    if (this.retryTimer !== null) this.env.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setState("closed");
    (this.emit as (n: "closed", v: SocketEvents["closed"]) => void)("closed", { code, reason, error });
  }

  /** Stops for good while waiting to reconnect (a subclass learned the socket will never be
   *  accepted again): `closed` with `code`, `reason` and `error`. */
  protected giveUp(code: number, reason: string, error?: SwitchboardError): void {
    if (this.stopped || this.ws !== null) return;
    this.finish(code, reason, error);
  }

  /** Closes the socket for good. */
  close(): void {
    if (this.stopped) return;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close(1000, "client closed");
      } catch {
        // already closing
      }
    }
    this.finish(1000, "client closed");
  }
}
