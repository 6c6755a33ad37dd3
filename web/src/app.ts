// The signed-in app: one Switchboard client (packages/client-ts), one hub socket for every live
// event, the outbox for sends, and the Store the views draw from.
//
// What the hub follows (a socket takes at most 200 contexts):
//   /presence/web                          the user is online on the web
//   /kiloclaw/{sandboxId}                  each sandbox of the list and each the user created a
//                                          conversation in: new conversations, activity, renames,
//                                          the user's own reads on other devices, bot status
//   /kiloclaw/{sandboxId}/{conversationId} the MAX_FOLLOWED most recent conversations: their
//                                          messages arrive as events (live unread counts, previews)
//   /presence/kiloclaw/{sb}/{id}           the open conversation only (puts the user on its roster)
// The server tells nobody of a conversation in a sandbox the page does not follow, so the list is
// also fetched again every DISCOVER_MS while the page is visible, after a resync, and after a
// context.resync (events of a conversation the hub could not queue).
import {
  contexts,
  Switchboard,
  SwitchboardError,
  type ContentBlock,
  type HubEventFrame,
  type HubSocket,
  type Message,
  type OutboxEntry,
} from "../../packages/client-ts/src/index";
import { type Session, tokenSource } from "./session";
import { type ConvItem, OpenConversation, Store } from "./store";

/** Conversation contexts followed at most (the rest of the 200 leaves room for sandboxes). */
export const MAX_FOLLOWED = 150;
/** Sandboxes followed at most. */
export const MAX_SANDBOXES = 40;
/** List pages read at start (100 conversations each). */
const LIST_PAGES = 5;
/** Conversations whose first page is read at start to count their unread messages. */
const UNREAD_PROBES = 20;
/** The list is read again this often while the page is visible (new sandboxes). */
const DISCOVER_MS = 30_000;
/** Messages per page of a conversation. */
export const PAGE = 50;

const storageKey = (what: string, user: string) => `switchboard.${what}.v1.${user}`;

function readJson<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}

function writeJson(key: string, v: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(v));
  } catch {
    // storage full or off: the page keeps working without it
  }
}

export function errorText(e: unknown): string {
  if (e instanceof SwitchboardError) return e.message || e.code;
  return e instanceof Error ? e.message : String(e);
}

export class App {
  readonly store: Store;
  readonly client: Switchboard;
  readonly hub: HubSocket;
  private readonly sandboxes: Set<string>;
  private discoverTimer: ReturnType<typeof setInterval> | null = null;
  private readTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly cleanup: (() => void)[] = [];

  constructor(readonly baseUrl: string, readonly session: Session, private readonly onSignedOut: (why: string) => void) {
    const me = session.userId;
    this.store = new Store(me);
    this.sandboxes = new Set(readJson<string[]>(storageKey("sandboxes", me), []).slice(0, MAX_SANDBOXES));
    this.client = new Switchboard({
      baseUrl,
      token: tokenSource(baseUrl, session, () => this.signOut("Your token was refused (expired or revoked). Sign in again.")),
      outbox: { restore: readJson<OutboxEntry[]>(storageKey("outbox", me), []) },
    });
    const outbox = this.client.outbox;
    this.store.outbox = outbox.entries;
    this.cleanup.push(
      outbox.on("change", (entries) => {
        this.store.outbox = entries;
        writeJson(storageKey("outbox", me), entries);
        this.store.changed("conv", "connection");
      }),
      outbox.on("sent", ({ entry, result }) => {
        const open = this.store.open;
        if (open && open.id === entry.conversationId) {
          open.put(result.message);
          open.arrived.add(entry.clientId);
          this.store.changed("conv");
        }
      }),
      outbox.on("failed", ({ entry, error }) => {
        this.store.failed.set(entry.clientId, { entry, error: errorText(error) });
        this.store.changed("conv");
      }),
    );

    this.hub = this.client.connectHub({ contexts: [contexts.web] });
    this.cleanup.push(
      this.hub.on("event", (f) => this.onEvent(f)),
      this.hub.on("state", (s) => {
        this.store.connection = navigator.onLine === false ? "offline" : s;
        this.store.changed("connection");
      }),
      this.hub.on("resync", () => void this.refresh()),
      this.hub.on("closed", ({ error }) => {
        if (error && error.status === 401) this.signOut("Your session ended. Sign in again.");
      }),
      this.store.on("conv", () => this.scheduleMarkRead()),
    );
    // (the library itself reconnects and retries the outbox at once when the browser is online)
    this.listen(window, "online", () => {
      this.store.connection = this.hub.state;
      this.store.changed("connection");
    });
    this.listen(window, "offline", () => {
      this.store.connection = "offline";
      this.store.changed("connection");
      // the socket may look open for a while yet: drop it now; it reconnects when it can
      this.hub.reconnectNow();
    });
    this.listen(document, "visibilitychange", () => this.attention());
    this.attention();
  }

  private listen(target: EventTarget, name: string, fn: () => void) {
    target.addEventListener(name, fn);
    this.cleanup.push(() => target.removeEventListener(name, fn));
  }

  private attention() {
    const was = this.store.attentive;
    this.store.attentive = document.visibilityState !== "hidden";
    if (this.store.attentive && !was) {
      const open = this.store.open;
      const item = open && this.store.convs.get(open.id);
      if (item) item.unread = 0;
      this.scheduleMarkRead();
      void this.refresh();
    }
  }

  /** Loads the list, follows it, counts unread messages, and rereads it every DISCOVER_MS. */
  async start(): Promise<void> {
    await this.refresh();
    this.discoverTimer = setInterval(() => {
      if (document.visibilityState !== "hidden") void this.loadList(1).catch(() => {});
    }, DISCOVER_MS);
  }

  /** Rereads the list (and the open conversation): at start, after a resync, when the page comes back. */
  async refresh(): Promise<void> {
    await this.loadList(LIST_PAGES);
    const open = this.store.open;
    if (open && !open.loading) void this.loadConversation(open);
  }

  private async loadList(pages: number): Promise<void> {
    let cursor: string | undefined;
    const fresh: ConvItem[] = [];
    for (let i = 0; i < pages; i++) {
      const page = await this.client.listConversations({ limit: 100, cursor });
      fresh.push(...this.store.mergeList(page.conversations));
      if (!page.hasMore || !page.nextCursor) break;
      cursor = page.nextCursor;
    }
    this.follow();
    await this.probeUnread(fresh.filter((c) => this.store.hasUnreadActivity(c)).slice(0, UNREAD_PROBES));
  }

  /** Counts the unread messages of conversations from their newest page (a few at a time). */
  private async probeUnread(items: ConvItem[]): Promise<void> {
    const queue = [...items];
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        try {
          const page = await this.client.listMessages(c.id, { limit: PAGE });
          if (!this.store.isShown(c.id)) this.store.countUnread(c, page.messages, page.hasMore);
        } catch {
          c.unreadMore = true;
        }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
  }

  /** Brings the hub's contexts to the list: its sandboxes and most recent conversations. */
  private follow(): void {
    const wanted: string[] = [];
    const sorted = this.store.sortedConvs();
    for (const c of sorted) this.sandboxes.add(c.sandboxId);
    for (const sb of [...this.sandboxes].slice(0, MAX_SANDBOXES)) wanted.push(contexts.instance(sb));
    const followed = new Set<string>();
    for (const c of sorted.slice(0, MAX_FOLLOWED)) {
      wanted.push(contexts.conversation(c.sandboxId, c.id));
      followed.add(c.id);
    }
    const open = this.store.open;
    if (open && open.sandboxId) {
      const ctx = contexts.conversation(open.sandboxId, open.id);
      wanted.push(ctx, contexts.presence(ctx));
      followed.add(open.id);
    }
    this.store.followed.clear();
    for (const id of followed) this.store.followed.add(id);
    const keep = new Set([contexts.web, ...wanted]);
    const drop = this.hub.contexts.filter((c) => !keep.has(c));
    if (drop.length) this.hub.unsubscribe(...drop);
    this.hub.subscribe(...wanted);
  }

  private onEvent(f: HubEventFrame): void {
    const added = this.store.apply(f, Date.now());
    if (added.length) this.follow();
    // events were lost for a conversation (context.resync): read the list and the open one again
    if (this.store.takeStale().length) void this.refresh();
  }

  // ---- the open conversation

  /** Shows a conversation: its detail, newest page, presence; follows it and its roster. */
  async openConversation(id: string): Promise<void> {
    if (this.store.open?.id === id) return;
    this.closeConversation();
    const item = this.store.convs.get(id);
    const open = new OpenConversation(id, item?.sandboxId ?? "");
    open.title = item?.title ?? null;
    this.store.open = open;
    if (item) {
      item.unread = 0;
      item.unreadMore = false;
    }
    this.store.changed("conv", "presence", "typing", "list", "live");
    await this.loadConversation(open);
  }

  private async loadConversation(open: OpenConversation): Promise<void> {
    try {
      const [detail, page, presence] = await Promise.all([
        this.client.getConversation(open.id),
        this.client.listMessages(open.id, { limit: PAGE }),
        this.client.presence(open.id).catch(() => ({ present: [] as string[] })),
      ]);
      if (this.store.open !== open) return;
      open.sandboxId = detail.sandboxId;
      open.title = detail.title;
      open.members = detail.members;
      // read receipts as the server has them (conversation.read events move them on)
      for (const m of detail.members) {
        const prev = open.reads.get(m.id);
        if (m.lastReadMessageId && (!prev || prev < m.lastReadMessageId)) open.reads.set(m.id, m.lastReadMessageId);
      }
      for (const m of page.messages) open.put(m);
      if (open.loading) {
        open.hasMore = page.hasMore;
        open.cursor = page.nextCursor;
      }
      open.present.clear();
      for (const p of presence.present) open.present.add(p);
      open.error = null;
    } catch (e) {
      if (this.store.open !== open) return;
      open.error = errorText(e);
    }
    open.loading = false;
    const queued = open.queued ?? [];
    open.queued = null;
    for (const f of queued) this.store.apply(f, Date.now());
    this.follow();
    this.store.changed("conv", "presence", "typing", "live");
  }

  closeConversation(): void {
    const open = this.store.open;
    if (!open) return;
    this.client.typingNotifier(open.id).stop();
    this.store.open = null;
    this.follow();
    this.store.changed("conv", "presence", "typing", "list", "live");
  }

  async loadOlder(): Promise<void> {
    const open = this.store.open;
    if (!open || !open.cursor) return;
    const page = await this.client.listMessages(open.id, { limit: PAGE, before: open.cursor });
    if (this.store.open !== open) return;
    for (const m of page.messages) open.put(m);
    open.hasMore = page.hasMore;
    open.cursor = page.nextCursor;
    this.store.changed("conv");
  }

  private scheduleMarkRead(): void {
    if (this.readTimer !== null) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = null;
      this.markRead();
    }, 300);
  }

  /** Tells the server the newest message shown has been read (forward only). */
  private markRead(): void {
    const open = this.store.open;
    if (!open || open.loading || !this.store.attentive) return;
    const newest = open.newest();
    if (!newest) return;
    const me = this.store.me;
    const mine = open.reads.get(me);
    if (mine && mine >= newest.id) return;
    open.reads.set(me, newest.id);
    const item = this.store.convs.get(open.id);
    if (item) {
      item.unread = 0;
      item.unreadMore = false;
      item.lastReadAt = Math.max(item.lastReadAt ?? 0, newest.createdAt);
      this.store.changed("list");
    }
    this.client.markRead(open.id, newest.id).catch(() => {
      if (open.reads.get(me) === newest.id) open.reads.delete(me);
    });
  }

  // ---- actions

  send(text: string, inReplyToMessageId?: string): void {
    const open = this.store.open;
    if (!open) return;
    this.client.send(open.id, text, inReplyToMessageId ? { inReplyToMessageId } : {});
  }

  typing(hasText: boolean): void {
    const open = this.store.open;
    if (!open) return;
    const t = this.client.typingNotifier(open.id);
    if (hasText) t.keystroke();
    else t.stop();
  }

  async edit(m: Message, text: string): Promise<void> {
    const content: ContentBlock[] = [...m.content.filter((b) => b.type !== "text"), { type: "text", text }];
    const r = await this.client.editMessage(m.id, { conversationId: m.conversationId, content, timestamp: Date.now() });
    this.store.open?.put(r.message);
    this.store.changed("conv");
  }

  async remove(m: Message): Promise<void> {
    await this.client.deleteMessage(m.conversationId, m.id);
    const open = this.store.open;
    if (open && open.messages.has(m.id)) open.messages.set(m.id, { ...m, deleted: true, content: [] });
    this.store.changed("conv");
  }

  async toggleReaction(m: Message, emoji: string): Promise<void> {
    const mine = m.reactions.some((r) => r.emoji === emoji && r.memberIds.includes(this.store.me));
    const r = mine
      ? await this.client.removeReaction(m.conversationId, m.id, emoji)
      : await this.client.addReaction(m.conversationId, m.id, emoji);
    const open = this.store.open;
    const cur = open?.messages.get(m.id);
    if (open && cur) open.messages.set(m.id, { ...cur, reactions: r.reactions });
    this.store.changed("conv");
  }

  dismissFailed(clientId: string): void {
    this.store.failed.delete(clientId);
    this.store.changed("conv");
  }

  /** Creates a conversation; answers its id. */
  async createConversation(sandboxId: string, title: string, members: string[]): Promise<string> {
    const r = await this.client.createConversation({
      sandboxId,
      ...(title ? { title } : {}),
      ...(members.length ? { additionalMembers: members } : {}),
    });
    this.sandboxes.add(sandboxId);
    writeJson(storageKey("sandboxes", this.store.me), [...this.sandboxes].slice(0, MAX_SANDBOXES));
    this.store.mergeList([r.conversationListItem]);
    this.follow();
    return r.conversationId;
  }

  /** The sandbox the user used last (the new-conversation form's default). */
  lastSandbox(): string {
    return this.store.sortedConvs()[0]?.sandboxId ?? [...this.sandboxes][0] ?? "";
  }

  signOut(why = ""): void {
    this.stop();
    this.onSignedOut(why);
  }

  /** Stops every socket and timer (sign-out). */
  stop(): void {
    if (this.discoverTimer !== null) clearInterval(this.discoverTimer);
    if (this.readTimer !== null) clearTimeout(this.readTimer);
    for (const f of this.cleanup.splice(0)) f();
    this.client.close();
  }
}
