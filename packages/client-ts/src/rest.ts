// The HTTP API of docs/api.md as typed calls. Every error answer becomes a SwitchboardError.
import type { Environment } from "./env.js";
import { errorFromAnswer, SwitchboardError } from "./errors.js";
import type { ContentBlock } from "./frames.js";
import type * as T from "./types.js";

/** Where the token comes from: a fixed token, or a provider called for every request
 *  (`refresh: true` after a 401: mint or fetch a new one). */
export type TokenSource = string | ((refresh: boolean) => string | Promise<string>);

const enc = encodeURIComponent;

function query(params: Record<string, string | number | undefined>): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${enc(k)}=${enc(String(v))}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

/** `POST /dev/token` (local mode only): a token for a user id (or a sandbox's bot). */
export async function devToken(
  baseUrl: string,
  who: { userId: string } | { sandboxId: string },
  env: Pick<Environment, "fetch">,
): Promise<T.DevToken> {
  const res = await call(env, "POST", baseUrl.replace(/\/$/, "") + "/dev/token", undefined, who);
  return res as T.DevToken;
}

async function call(
  env: Pick<Environment, "fetch">,
  method: string,
  url: string,
  token: string | undefined,
  body: unknown,
): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await env.fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new SwitchboardError(0, "network", `network error: ${(e as Error)?.message ?? String(e)}`);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    throw new SwitchboardError(0, "network", `network error reading the answer: ${(e as Error)?.message ?? String(e)}`);
  }
  if (res.status < 200 || res.status >= 300) throw errorFromAnswer(res.status, text);
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new SwitchboardError(res.status, "invalid_answer", "the answer is not JSON");
  }
}

export class RestClient {
  readonly baseUrl: string;
  private readonly http: Pick<Environment, "fetch">;
  private readonly tokenSource: TokenSource;

  constructor(baseUrl: string, token: TokenSource, env: Pick<Environment, "fetch">) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.tokenSource = token;
    this.http = env;
  }

  /** The current bearer token (`refresh`: ask the provider for a new one). */
  async token(refresh = false): Promise<string> {
    return typeof this.tokenSource === "string" ? this.tokenSource : await this.tokenSource(refresh);
  }

  /** Any route: JSON in, JSON out; a 401 asks the token provider for a new token and retries once. */
  async request<R = unknown>(method: string, path: string, body?: unknown): Promise<R> {
    const url = this.baseUrl + path;
    try {
      return (await call(this.http, method, url, await this.token(false), body)) as R;
    } catch (e) {
      if (e instanceof SwitchboardError && e.status === 401 && typeof this.tokenSource === "function") {
        return (await call(this.http, method, url, await this.token(true), body)) as R;
      }
      throw e;
    }
  }

  // ---- tickets
  connectTicket(): Promise<T.ConnectTicket> {
    return this.request("POST", "/connect-ticket");
  }

  // ---- conversations
  listConversations(opts: { sandboxId?: string; limit?: number; cursor?: string } = {}): Promise<T.ConversationPage> {
    return this.request("GET", `/v1/conversations${query(opts)}`);
  }
  createConversation(body: T.CreateConversation): Promise<T.CreatedConversation> {
    return this.request("POST", "/v1/conversations", body);
  }
  getConversation(conversationId: string): Promise<T.ConversationDetail> {
    return this.request("GET", `/v1/conversations/${enc(conversationId)}`);
  }
  renameConversation(conversationId: string, title: string): Promise<{ id: string; title: string }> {
    return this.request("PATCH", `/v1/conversations/${enc(conversationId)}`, { title });
  }
  addMember(conversationId: string, userId: string): Promise<{ members: T.ConversationMember[] }> {
    return this.request("POST", `/v1/conversations/${enc(conversationId)}/members`, { userId });
  }
  async leaveConversation(conversationId: string): Promise<void> {
    await this.request("POST", `/v1/conversations/${enc(conversationId)}/leave`);
  }
  markRead(conversationId: string, lastSeenMessageId: string): Promise<T.MarkReadResult> {
    return this.request("POST", `/v1/conversations/${enc(conversationId)}/mark-read`, { lastSeenMessageId });
  }
  presence(conversationId: string): Promise<{ present: string[] }> {
    return this.request("GET", `/v1/conversations/${enc(conversationId)}/presence`);
  }
  async typing(conversationId: string): Promise<void> {
    await this.request("POST", `/v1/conversations/${enc(conversationId)}/typing`);
  }
  async typingStop(conversationId: string): Promise<void> {
    await this.request("POST", `/v1/conversations/${enc(conversationId)}/typing/stop`);
  }
  botStatus(conversationId: string): Promise<T.BotStatus> {
    return this.request("GET", `/v1/conversations/${enc(conversationId)}/bot-status`);
  }

  // ---- messages
  listMessages(conversationId: string, opts: { before?: string; limit?: number } = {}): Promise<T.MessagePage> {
    return this.request("GET", `/v1/conversations/${enc(conversationId)}/messages${query(opts)}`);
  }
  /** `POST /v1/messages` once (no retry); the outbox retries with the same clientId. */
  sendMessage(body: T.SendMessage): Promise<T.SentMessage> {
    return this.request("POST", "/v1/messages", body);
  }
  editMessage(messageId: string, body: T.EditMessage): Promise<T.SentMessage> {
    return this.request("PATCH", `/v1/messages/${enc(messageId)}`, body);
  }
  async deleteMessage(conversationId: string, messageId: string): Promise<void> {
    await this.request("DELETE", `/v1/messages/${enc(messageId)}${query({ conversationId })}`);
  }
  addReaction(conversationId: string, messageId: string, emoji: string): Promise<T.Reactions> {
    return this.request("POST", `/v1/messages/${enc(messageId)}/reactions`, { conversationId, emoji });
  }
  removeReaction(conversationId: string, messageId: string, emoji: string): Promise<T.Reactions> {
    return this.request("DELETE", `/v1/messages/${enc(messageId)}/reactions${query({ conversationId, emoji })}`);
  }

  // ---- notifications worker (forwarded routes)
  badges(): Promise<T.Badges> {
    return this.request("GET", "/v1/badges");
  }
  markBadgeRead(badgeBucket: string): Promise<{ badgeCount: number }> {
    return this.request("POST", "/v1/badges/mark-read", { badgeBucket });
  }
  registerPushToken(body: { token: string; platform?: string; appVersion?: string }): Promise<T.PushToken> {
    return this.request("POST", "/v1/push-tokens", body);
  }
  async deletePushToken(token: string): Promise<void> {
    await this.request("DELETE", "/v1/push-tokens", { token });
  }
  notificationPreferences(): Promise<T.NotificationPreferences> {
    return this.request("GET", "/v1/notification-preferences");
  }
  setNotificationPreferences(body: Partial<T.NotificationPreferences>): Promise<T.NotificationPreferences> {
    return this.request("PUT", "/v1/notification-preferences", body);
  }
}

/** A text message's content. */
export function text(s: string): ContentBlock[] {
  return [{ type: "text", text: s }];
}
