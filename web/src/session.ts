// The signed-in user, kept in localStorage so that a reload (or a new tab) stays signed in.
// Local mode: a user id, for which POST /dev/token mints tokens (a new one whenever the old one
// is refused or about to run out). Otherwise: a token pasted by the user (a production token of
// docs/api.md), used until it is refused.
import { devToken, SwitchboardError, type TokenSource } from "../../packages/client-ts/src/index";

const KEY = "switchboard.session.v1";
/** Mint a new dev token this long before the old one runs out. */
const RENEW_BEFORE_MS = 60_000;

export interface Session {
  /** the member id (`alice`) */
  userId: string;
  token: string;
  /** ms since the epoch, when known */
  expiresAt: number | null;
  /** "dev": minted by POST /dev/token for userId; "token": pasted */
  kind: "dev" | "token";
}

export function loadSession(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Partial<Session>;
    if (typeof s.userId !== "string" || typeof s.token !== "string" || (s.kind !== "dev" && s.kind !== "token")) return null;
    return { userId: s.userId, token: s.token, expiresAt: typeof s.expiresAt === "number" ? s.expiresAt : null, kind: s.kind };
  } catch {
    return null;
  }
}

export function saveSession(s: Session): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(s));
  } catch {
    // private mode or full storage: the session lasts as long as the page
  }
}

export function clearSession(): void {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
}

/** Local mode: a session for `userId` from POST /dev/token. */
export async function devSession(baseUrl: string, userId: string): Promise<Session> {
  const t = await devToken(baseUrl, { userId }, { fetch: fetch.bind(globalThis) });
  return { userId: t.userId, token: t.token, expiresAt: Date.parse(t.expiresAt) || null, kind: "dev" };
}

/** A pasted token: reads who it names (the server checks it; this only decodes the claims). */
export function tokenSession(token: string): Session {
  const claims = decodeJwt(token.trim());
  if (!claims) throw new SwitchboardError(0, "invalid_token", "That is not a token (expected a JWT: three base64url parts).");
  const user = claims.kiloUserId;
  if (typeof user !== "string" || !user) {
    throw new SwitchboardError(0, "invalid_token", "The token names no person (kiloUserId); bots cannot use the web app.");
  }
  const exp = typeof claims.exp === "number" ? claims.exp * 1000 : null;
  return { userId: user, token: token.trim(), expiresAt: exp, kind: "token" };
}

function decodeJwt(token: string): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(b64 + "===".slice((b64.length + 3) % 4)), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    const v = JSON.parse(json) as unknown;
    return v && typeof v === "object" ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The token provider the client calls for every request (`refresh` after a 401). A dev session
 *  mints a new token when asked or when the old one is about to run out, and stores it; a pasted
 *  token that is refused ends the session (`onExpired`). */
export function tokenSource(baseUrl: string, session: Session, onExpired: () => void): TokenSource {
  let current = session;
  let minting: Promise<Session> | null = null;
  return async (refresh: boolean) => {
    const stale = current.expiresAt !== null && current.expiresAt - Date.now() < RENEW_BEFORE_MS;
    if (!refresh && !stale) return current.token;
    if (current.kind === "token") {
      if (refresh) onExpired();
      return current.token;
    }
    minting ??= devSession(baseUrl, current.userId).finally(() => {
      minting = null;
    });
    current = await minting;
    saveSession(current);
    return current.token;
  };
}
