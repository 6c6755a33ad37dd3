// Typing with its throttle: at most one `typing` per 3 s while the user types, and one
// `typing.stop` when they stop (explicitly, on send, or after a pause).
import type { Environment } from "./env.js";

/** At most one start per this many ms (the server broadcasts at most one per 2 s and ends a typing by itself 6 s after the last). */
export const TYPING_THROTTLE_MS = 3_000;
/** No keystroke for this long: stop. */
export const TYPING_IDLE_MS = 5_000;

export type TypingSender = (stop: boolean) => void;

export class TypingNotifier {
  private readonly env: Environment;
  private readonly sendFn: TypingSender;
  private lastStart: number | null = null;
  private idleTimer: unknown = null;

  constructor(send: TypingSender, env: Environment) {
    this.sendFn = send;
    this.env = env;
  }

  /** The user typed: sends `typing` unless one went out in the last 3 s. */
  keystroke(): void {
    const now = this.env.clock.now();
    if (this.lastStart === null || now - this.lastStart >= TYPING_THROTTLE_MS) {
      this.lastStart = now;
      this.sendFn(false);
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
    if (this.lastStart === null) return;
    this.lastStart = null;
    this.sendFn(true);
  }
}
