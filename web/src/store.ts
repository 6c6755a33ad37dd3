// What the app knows, updated from HTTP answers and hub events, with no DOM: the conversation
// list (unread counts, previews), the open conversation (messages, presence, typing, read
// receipts) and the connection. Views subscribe to `changed` topics and redraw what they show.
import type {
  ConversationListItem,
  ConversationMember,
  HubEventFrame,
  Message,
  OutboxEntry,
} from "../../packages/client-ts/src/index";
import { preview } from "./format";

/** A conversation of the list. */
export interface ConvItem {
  id: string;
  title: string | null;
  sandboxId: string;
  lastActivityAt: number | null;
  lastReadAt: number | null;
  joinedAt: number;
  /** messages of others since the last read (counted from the first page and from live events) */
  unread: number;
  /** more unread than counted (over a page, or activity seen without its messages) */
  unreadMore: boolean;
  /** "alice: hello" of the newest message seen */
  preview: string | null;
  /** that message's id */
  previewId: string | null;
}

/** How long a typing indicator stays without a refresh (the server ends one after 6 s). */
export const TYPING_SHOWN_MS = 7_000;

export type Topic = "list" | "conv" | "typing" | "presence" | "connection" | "live";

/** The conversation on screen. */
export class OpenConversation {
  readonly id: string;
  sandboxId: string;
  title: string | null = null;
  members: ConversationMember[] = [];
  /** by id; ids are ULIDs, so their order is the conversation's order */
  readonly messages = new Map<string, Message>();
  hasMore = false;
  cursor: string | null = null;
  loading = true;
  error: string | null = null;
  /** member → when their typing indicator goes away (ms) */
  readonly typing = new Map<string, number>();
  readonly present = new Set<string>();
  /** member → the newest message they have read (receipts seen since the conversation opened) */
  readonly reads = new Map<string, string>();
  /** clientIds of my messages that have arrived (their outbox copies are no longer shown) */
  readonly arrived = new Set<string>();
  /** events that came while the first page was loading, applied after it */
  queued: HubEventFrame[] | null = [];

  constructor(id: string, sandboxId: string) {
    this.id = id;
    this.sandboxId = sandboxId;
  }

  ordered(): Message[] {
    return [...this.messages.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  newest(): Message | undefined {
    let n: Message | undefined;
    for (const m of this.messages.values()) if (!n || m.id > n.id) n = m;
    return n;
  }

  /** Adds or replaces a message (events and answers may bring the same one twice). */
  put(m: Message): void {
    const old = this.messages.get(m.id);
    // an older copy never replaces a newer one (an answer that raced an edit event)
    if (old && (old.updatedAt ?? 0) > (m.updatedAt ?? 0) && !m.deleted) return;
    this.messages.set(m.id, m);
  }

  react(messageId: string, memberId: string, emoji: string, add: boolean): void {
    const m = this.messages.get(messageId);
    if (!m) return;
    const reactions = m.reactions.map((r) => ({ ...r, memberIds: [...r.memberIds] }));
    let r = reactions.find((x) => x.emoji === emoji);
    if (add) {
      if (!r) reactions.push((r = { emoji, count: 0, memberIds: [] }));
      if (!r.memberIds.includes(memberId)) r.memberIds.push(memberId);
    } else if (r) {
      r.memberIds = r.memberIds.filter((x) => x !== memberId);
    }
    this.messages.set(messageId, {
      ...m,
      reactions: reactions.map((x) => ({ ...x, count: x.memberIds.length })).filter((x) => x.count > 0),
    });
  }

  /** Who is typing now (not me). */
  typers(now: number, me: string): string[] {
    return [...this.typing].filter(([id, until]) => until > now && id !== me).map(([id]) => id);
  }
}

export class Store {
  readonly me: string;
  readonly convs = new Map<string, ConvItem>();
  open: OpenConversation | null = null;
  /** the hub's state, or "offline" while the browser says so */
  connection: "connecting" | "open" | "reconnecting" | "closed" | "offline" = "connecting";
  /** the outbox's waiting messages */
  outbox: OutboxEntry[] = [];
  /** outbox messages the server refused, by clientId */
  readonly failed = new Map<string, { entry: OutboxEntry; error: string }>();
  /** conversations whose context the hub follows (their messages arrive as events) */
  readonly followed = new Set<string>();
  /** Conversations a `context.resync` made stale (to read again over HTTP); see `takeStale`. */
  private readonly stale = new Set<string>();
  /** whether the page is visible and focused (messages shown count as read) */
  attentive = true;
  private readonly listeners = new Map<Topic, Set<() => void>>();
  private readonly pendingTopics = new Set<Topic>();
  private flushing = false;

  constructor(me: string) {
    this.me = me;
  }

  on(topic: Topic, fn: () => void): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Marks topics changed; listeners run once per frame of changes. */
  changed(...topics: Topic[]): void {
    for (const t of topics) this.pendingTopics.add(t);
    if (this.flushing) return;
    this.flushing = true;
    queueMicrotask(() => {
      this.flushing = false;
      const ts = [...this.pendingTopics];
      this.pendingTopics.clear();
      for (const t of ts) for (const fn of [...(this.listeners.get(t) ?? [])]) fn();
    });
  }

  /** The list, newest activity (or join) first. */
  sortedConvs(): ConvItem[] {
    const key = (c: ConvItem) => c.lastActivityAt ?? c.joinedAt;
    return [...this.convs.values()].sort((a, b) => key(b) - key(a) || (a.id < b.id ? 1 : -1));
  }

  /** Takes list items from GET /v1/conversations (new ones added, known ones brought forward). */
  mergeList(items: ConversationListItem[]): ConvItem[] {
    const added: ConvItem[] = [];
    for (const it of items) {
      const c = this.convs.get(it.conversationId);
      if (c) {
        c.title = it.title;
        c.lastActivityAt = max(c.lastActivityAt, it.lastActivityAt);
        c.lastReadAt = max(c.lastReadAt, it.lastReadAt);
      } else {
        const item: ConvItem = {
          id: it.conversationId,
          title: it.title,
          sandboxId: it.sandboxId,
          lastActivityAt: it.lastActivityAt,
          lastReadAt: it.lastReadAt,
          joinedAt: it.joinedAt,
          unread: 0,
          unreadMore: false,
          preview: null,
          previewId: null,
        };
        this.convs.set(item.id, item);
        added.push(item);
      }
    }
    this.changed("list");
    return added;
  }

  /** Whether a conversation has activity after its last read. */
  hasUnreadActivity(c: ConvItem): boolean {
    return c.lastActivityAt !== null && c.lastActivityAt > (c.lastReadAt ?? 0);
  }

  /** Counts unread messages of a conversation from its newest page (newest first). */
  countUnread(c: ConvItem, newestFirst: Message[], hasMore: boolean): void {
    const since = c.lastReadAt ?? 0;
    let n = 0;
    let all = true;
    for (const m of newestFirst) {
      if (m.createdAt <= since) {
        all = false;
        break;
      }
      if (m.senderId !== this.me && !m.deleted) n++;
    }
    c.unread = n;
    c.unreadMore = all && hasMore;
    if (newestFirst[0]) this.setPreview(c, newestFirst[0]);
    this.changed("list");
  }

  /** The conversations made stale since the last call (and forgets them). */
  takeStale(): string[] {
    const ids = [...this.stale];
    this.stale.clear();
    return ids;
  }

  /** A hub event. Answers the ids of conversations that appeared (to subscribe to). */
  apply(f: HubEventFrame, now: number): ConvItem[] {
    const added: ConvItem[] = [];
    const p = f.payload as Record<string, unknown>;
    const cid = typeof p.conversationId === "string" ? p.conversationId : contextConversation(f.context);
    const item = cid ? this.convs.get(cid) : undefined;
    const open = this.open && this.open.id === cid ? this.open : null;
    if (open && open.queued && f.event !== "typing" && f.event !== "typing.stop") {
      open.queued.push(f);
      return added;
    }
    switch (f.event) {
      case "conversation.created": {
        if (!this.convs.has(f.payload.conversationId)) {
          const it: ConvItem = {
            id: f.payload.conversationId,
            title: f.payload.title,
            sandboxId: f.payload.sandboxId,
            lastActivityAt: null,
            lastReadAt: null,
            joinedAt: now,
            unread: 0,
            unreadMore: false,
            preview: null,
            previewId: null,
          };
          this.convs.set(it.id, it);
          added.push(it);
          this.changed("list");
        }
        break;
      }
      case "conversation.left":
        this.convs.delete(f.payload.conversationId);
        this.changed("list");
        break;
      case "conversation.activity":
        if (item) {
          item.lastActivityAt = max(item.lastActivityAt, f.payload.lastActivityAt);
          // a conversation whose own events this page does not follow learns of news only here
          if (!this.followed.has(item.id) && this.hasUnreadActivity(item) && !this.isShown(item.id)) item.unreadMore = true;
          this.changed("list");
        }
        break;
      case "conversation.renamed":
        if (item) item.title = f.payload.title;
        if (open) {
          open.title = f.payload.title;
          this.changed("conv");
        }
        this.changed("list");
        break;
      case "conversation.read":
        if (f.payload.memberId === this.me && item) {
          item.lastReadAt = max(item.lastReadAt, f.payload.lastReadAt);
          item.unread = 0;
          item.unreadMore = false;
          this.changed("list");
        }
        if (open && f.payload.lastReadMessageId) {
          const prev = open.reads.get(f.payload.memberId);
          if (!prev || prev < f.payload.lastReadMessageId) open.reads.set(f.payload.memberId, f.payload.lastReadMessageId);
          this.changed("conv");
        }
        break;
      case "message.created": {
        // The event carries the content once, beside the rest of the message.
        const m = { ...f.payload.message, content: f.payload.content };
        if (item) {
          item.lastActivityAt = max(item.lastActivityAt, m.createdAt);
          this.setPreview(item, m);
          if (m.senderId !== this.me && !this.isShown(item.id)) item.unread++;
          this.changed("list");
        }
        if (open) {
          open.put(m);
          if (f.payload.clientId && m.senderId === this.me) open.arrived.add(f.payload.clientId);
          open.typing.delete(m.senderId);
          this.changed("conv", "typing");
        }
        break;
      }
      case "message.updated":
        if (open) {
          open.put({ ...f.payload.message, content: f.payload.content });
          this.changed("conv");
        }
        break;
      case "message.deleted":
        if (item && item.previewId === f.payload.messageId) {
          item.preview = "Message deleted";
          this.changed("list");
        }
        if (open) {
          const m = open.messages.get(f.payload.messageId);
          if (m) open.messages.set(m.id, { ...m, deleted: true, content: [] });
          this.changed("conv");
        }
        break;
      case "reaction.added":
      case "reaction.removed":
        if (open) {
          open.react(f.payload.messageId, f.payload.memberId, f.payload.emoji, f.event === "reaction.added");
          this.changed("conv");
        }
        break;
      case "member.joined":
      case "member.left":
        if (open) {
          if (f.event === "member.left") open.members = open.members.filter((m) => m.id !== f.payload.memberId);
          else if (!open.members.some((m) => m.id === f.payload.memberId)) {
            const addedBy = typeof f.payload.addedBy === "string" ? f.payload.addedBy : null;
            const joined = { id: f.payload.memberId, kind: "user" as const, joinedAt: now, addedBy };
            open.members = [...open.members, { ...joined, lastReadMessageId: null, lastReadAt: null }];
          }
          this.changed("presence");
        }
        break;
      case "presence.joined":
      case "presence.left":
        if (open) {
          if (f.event === "presence.joined") open.present.add(f.payload.memberId);
          else open.present.delete(f.payload.memberId);
          this.changed("presence");
        }
        break;
      case "typing":
      case "typing.stop":
        if (open) {
          if (f.event === "typing") open.typing.set(f.payload.memberId, now + TYPING_SHOWN_MS);
          else open.typing.delete(f.payload.memberId);
          this.changed("typing");
        }
        break;
      case "bot.status":
        this.changed("live");
        break;
      case "context.resync":
        // the conversation could not queue every event for this hub (docs/events.md, lost events):
        // what the page shows of it is stale until read again over HTTP
        if (cid) this.stale.add(cid);
        break;
      default:
        break;
    }
    return added;
  }

  private setPreview(c: ConvItem, m: Message) {
    if (c.previewId && c.previewId > m.id) return;
    c.preview = preview(m, this.me);
    c.previewId = m.id;
  }

  /** Whether a conversation's new messages are being seen (open, page visible and focused). */
  isShown(id: string): boolean {
    return this.attentive && this.open?.id === id;
  }
}

function max(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/** `/kiloclaw/{sb}/{cid}` → cid */
export function contextConversation(context: string): string | null {
  const parts = context.split("/");
  return parts.length === 4 && parts[1] === "kiloclaw" ? parts[3] : null;
}
