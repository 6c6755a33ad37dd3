/** Reconnect delays: exponential with full jitter in [d/2, d], d = base·2^attempt capped at max. */
export interface BackoffOptions {
  /** first delay, ms (default 500) */
  baseMs?: number;
  /** the cap, ms (default 30 000) */
  maxMs?: number;
}

export function backoffDelay(attempt: number, random: () => number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 500;
  const max = opts.maxMs ?? 30_000;
  const d = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.round(d / 2 + (random() * d) / 2);
}
