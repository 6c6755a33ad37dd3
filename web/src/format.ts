// How ids, times and content read on screen.
import type { ContentBlock, Message } from "../../packages/client-ts/src/index";

const BOT_PREFIX = "bot:kiloclaw:";

/** A member id as people read it: `alice`, or `Bot (sb1)` for a sandbox's bot. */
export function memberName(id: string, me?: string): string {
  if (id === me) return "You";
  if (id.startsWith(BOT_PREFIX)) return `Bot (${id.slice(BOT_PREFIX.length)})`;
  return id;
}

export function isBot(id: string): boolean {
  return id.startsWith(BOT_PREFIX);
}

/** Who wrote a message: a bridged message's platform author, else the member. */
export function authorOf(m: Message, me: string): { name: string; platform: string | null; color: string | null } {
  const src = m.source as { platform?: unknown; author?: { username?: unknown; displayName?: unknown; color?: unknown } } | undefined;
  if (src && typeof src.platform === "string") {
    const a = src.author ?? {};
    const name = typeof a.displayName === "string" && a.displayName ? a.displayName : typeof a.username === "string" ? a.username : m.senderId;
    const color = typeof a.color === "string" && /^#[0-9a-fA-F]{3,8}$/.test(a.color) ? a.color : null;
    return { name, platform: src.platform, color };
  }
  return { name: memberName(m.senderId, me), platform: null, color: null };
}

/** Platform names as the platforms write them. */
export function platformName(p: string): string {
  return p === "kick" ? "Kick" : p === "kosmi" ? "Kosmi" : p;
}

/** The text of a message's text blocks; bridged emotes `[emote:ID:NAME]` read as `:NAME:`. */
export function plainText(content: ContentBlock[]): string {
  return content
    .filter((b): b is Extract<ContentBlock, { type: "text" }> => b.type === "text")
    .map((b) => b.text.replace(/\[emote:[^:\]]+:([^\]]+)\]/g, ":$1:"))
    .join("\n");
}

/** A one-line preview of a message. */
export function preview(m: Message, me: string): string {
  if (m.deleted) return "Message deleted";
  const t = plainText(m.content).replace(/\s+/g, " ").trim();
  const body = t || (m.content.some((b) => b.type === "actions") ? "Asks for a choice" : "");
  return `${authorOf(m, me).name}: ${body}`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

/** 14:05 today, else Nov 3. */
export function shortTime(ms: number | null | undefined): string {
  if (!ms) return "";
  const d = new Date(ms);
  const now = new Date();
  return d.toDateString() === now.toDateString() ? timeFmt.format(d) : dayFmt.format(d);
}

export function fullTime(ms: number): string {
  return new Date(ms).toLocaleString();
}

/** "alice", "alice and bob", "alice, bob and 2 others" */
export function names(ids: string[], me?: string): string {
  const n = ids.map((i) => memberName(i, me));
  if (n.length <= 1) return n.join("");
  if (n.length === 2) return `${n[0]} and ${n[1]}`;
  if (n.length === 3) return `${n[0]}, ${n[1]} and ${n[2]}`;
  return `${n[0]}, ${n[1]} and ${n.length - 2} others`;
}

/** A conversation's title as shown: its title, or who is in it. */
export function conversationTitle(title: string | null | undefined, sandboxId: string): string {
  return title && title.trim() ? title : `Untitled (${sandboxId})`;
}
