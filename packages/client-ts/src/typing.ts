// Typing with its throttle: at most one `typing` per 3 s while the user types, and one
// `typing.stop` when they stop (explicitly, on send, or after a pause).
import type { Environment } from "./env.js";

/** At most one start per this many ms (the server broadcasts at most one per 3 s, `TYPING_THROTTLE_MS`, whatever stops come between, and ends a typing by itself 6 s after the last). */
export const TYPING_THROTTLE_MS = 3_000;
/** No keystroke for this long: stop. */
export const TYPING_IDLE_MS = 5_000;

export type TypingSender = (stop: boolean) => void;

/** A start that has to wait for the server's window goes this long after it, so it is never early. */
export const TYPING_RESEND_MARGIN_MS = 250;

export class TypingNotifier {
  private readonly env: Environment;
  private readonly sendFn: TypingSender;
  /** When the last start went out. Kept across stops: the server's throttle is too, so a start
   *  sent within 3 s of the previous one (a stop between or not) would never be broadcast. */
  private lastStart: number | null = null;
  /** A start went out since the last stop. */
  private started = false;
  /** A start waiting for the end of the server's window (typing again soon after a stop). */
  private pending: unknown = null;
  private idleTimer: unknown = null;

  constructor(send: TypingSender, env: Environment) {
    this.sendFn = send;
    this.env = env;
  }

  /** The user typed: sends `typing` unless one went out in the last 3 s; typing again within 3 s
   *  of a start that was followed by a stop sends the start when the server's window ends. */
  keystroke(): void {
    const now = this.env.clock.now();
    const wait = this.lastStart === null ? 0 : this.lastStart + TYPING_THROTTLE_MS - now;
    if (wait <= 0) {
      this.sendStart(now);
    } else if (!this.started && this.pending === null) {
      this.pending = this.env.clock.setTimeout(() => {
        this.pending = null;
        this.sendStart(this.env.clock.now());
      }, wait + TYPING_RESEND_MARGIN_MS);
    }
    if (this.idleTimer !== null) this.env.clock.clearTimeout(this.idleTimer);
    this.idleTimer = this.env.clock.setTimeout(() => {
      this.idleTimer = null;
      this.stop();
    }, TYPING_IDLE_MS);
  }

  /** The user stopped (sent, cleared the field, left): sends `typing.stop` if a start went out. */
  stop(): void {
    if (this.idleTimer !== null) this.env.clock.clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.pending !== null) this.env.clock.clearTimeout(this.pending);
    this.pending = null;
    if (!this.started) return;
    this.started = false;
    this.sendFn(true);
  }

  private sendStart(now: number): void {
    if (this.pending !== null) this.env.clock.clearTimeout(this.pending);
    this.pending = null;
    this.lastStart = now;
    this.started = true;
    this.sendFn(false);
  }
}
