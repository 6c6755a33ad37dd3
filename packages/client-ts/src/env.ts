// What the library needs from its surroundings, injected so that it runs in browsers and Node 20
// and can be tested with a fake socket and fake time.

/** The part of the WHATWG WebSocket the library uses (browsers' `WebSocket`, Node's `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // `any` events so that the DOM's WebSocket (whose handlers take Event, MessageEvent, CloseEvent)
  // is assignable; the library reads `data` of a message and `code`, `reason` of a close
  /* eslint-disable @typescript-eslint/no-explicit-any */
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The part of `fetch` the library uses. */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<{ status: number; text(): Promise<string> }>;

/** Time: `now()` in ms since the epoch, and one-shot timers. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface Environment {
  fetch: FetchLike;
  WebSocket: WebSocketConstructor;
  clock: Clock;
  /** Uniform in [0, 1): backoff jitter and client ids. */
  random: () => number;
}

/** The globals of a browser or Node 20 (Node: pass `WebSocket` from `ws`, Node 20 has no global one). */
export function defaultEnvironment(overrides: Partial<Environment> = {}): Environment {
  const g = globalThis as unknown as {
    fetch?: FetchLike;
    WebSocket?: WebSocketConstructor;
  };
  const fetchFn = overrides.fetch ?? (g.fetch ? (g.fetch.bind(globalThis) as FetchLike) : undefined);
  const ws = overrides.WebSocket ?? g.WebSocket;
  if (!fetchFn) throw new Error("switchboard: no fetch available; pass one in the environment");
  if (!ws) throw new Error("switchboard: no WebSocket available; pass one (Node: the `ws` package)");
  return {
    fetch: fetchFn,
    WebSocket: ws,
    clock: overrides.clock ?? {
      now: () => Date.now(),
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
    },
    random: overrides.random ?? Math.random,
  };
}

/** A client id for the outbox: 26 random Crockford base32 characters (room for 1..128). */
export function randomId(random: () => number, prefix = "c"): string {
  const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  let s = prefix + "-";
  for (let i = 0; i < 26; i++) s += alphabet[Math.floor(random() * 32) % 32];
  return s;
}
