// The conversation view: messages (text and action blocks, replies, edits, deletions, reactions,
// read receipts), the roster, typing, the composer, and the live tab. It draws from the Store and
// redraws on the topics it shows.
import type { Message } from "../../packages/client-ts/src/index";
import { type App, errorText } from "./app";
import { h, replace } from "./dom";
import {
  authorOf,
  conversationTitle,
  fullTime,
  isBot,
  memberName,
  names,
  platformName,
  plainText,
  shortTime,
} from "./format";
import { LiveStream, MAX_FRAMES } from "./live";
import { QUICK_REACTIONS } from "./views";

// ---------------------------------------------------------------------------------------------
// Conversation
// ---------------------------------------------------------------------------------------------

const LIVE_LABELS: Record<string, string> = {
  checking: "Checking the bot…",
  offline: "Bot offline",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  ended: "Ended",
  error: "Error",
};

type Tab = "messages" | "live";

export class ConversationView {
  readonly el: HTMLElement;
  private readonly heading = h("h2", { id: "conv-heading" });
  private readonly tabs: HTMLElement;
  private readonly roster = h("ul", { class: "roster", "aria-label": "Members" });
  private readonly body = h("div", { style: "display:contents" });
  private readonly log = h("ol", { class: "log", role: "log", "aria-label": "Messages", "aria-live": "polite" });
  private readonly typingLine = h("div", { class: "typing", "aria-live": "polite" });
  private readonly replying = h("div", { class: "replying", hidden: true });
  private readonly textarea = h("textarea", { id: "composer", rows: 1, "aria-label": "Message", placeholder: "Message", maxlength: 8000, enterkeyhint: "send" });
  private readonly composer: HTMLFormElement;
  private readonly items = new Map<string, { el: HTMLElement; sig: string }>();
  private readonly offs: (() => void)[] = [];
  private tab: Tab = "messages";
  private replyTo: Message | null = null;
  private editing: Message | null = null;
  private picker: string | null = null;
  private typingTimer: ReturnType<typeof setInterval> | null = null;
  private live: LiveStream | null = null;
  private liveEl: HTMLElement | null = null;
  private liveParts: { status: HTMLElement; draft: HTMLElement; note: HTMLElement; frames: HTMLElement; shown: number } | null = null;

  constructor(
    private readonly app: App,
    readonly id: string,
  ) {
    const store = app.store;
    this.tabs = h("nav", { class: "tabs", "aria-label": "Views" });
    this.composer = h(
      "form",
      { class: "composer", onsubmit: (ev) => (ev.preventDefault(), this.submit()) },
      this.textarea,
      h("button", { class: "primary", type: "submit" }, "Send"),
    );
    this.textarea.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.submit();
      } else if (ev.key === "Escape" && (this.replyTo || this.editing)) {
        this.cancelReply();
      }
    });
    this.textarea.addEventListener("input", () => {
      this.autosize();
      if (!this.editing) app.typing(this.textarea.value.trim() !== "");
    });
    this.el = h(
      "section",
      { class: "conv", "aria-labelledby": "conv-heading" },
      h(
        "header",
        { class: "convhead" },
        h("a", { class: "back", href: "#/" }, "‹ Conversations"),
        this.heading,
        this.tabs,
      ),
      this.roster,
      this.body,
    );
    this.offs.push(
      store.on("conv", () => {
        this.drawHeading();
        if (this.tab === "messages") this.drawLog();
      }),
      store.on("presence", () => this.drawRoster()),
      store.on("typing", () => this.drawTyping()),
    );
    this.drawHeading();
    this.drawRoster();
  }

  setTab(tab: Tab): void {
    this.tab = tab;
    replace(
      this.tabs,
      h("a", { href: `#/c/${this.id}`, "aria-current": tab === "messages" ? "page" : null }, "Messages"),
      h("a", { href: `#/c/${this.id}/live`, "aria-current": tab === "live" ? "page" : null }, "Live"),
    );
    if (tab === "messages") {
      this.live?.stop();
      this.live = null;
      replace(this.body, this.log, this.typingLine, this.replying, this.composer);
      this.drawLog();
      this.drawTyping();
      this.scrollToEnd();
    } else {
      this.liveEl = h("div", { class: "live", "aria-label": "Live stream" });
      this.liveParts = null;
      replace(this.body, this.liveEl);
      this.live = new LiveStream(this.app, this.id, () => this.drawLive());
      this.drawLive();
    }
  }

  dispose(): void {
    for (const off of this.offs.splice(0)) off();
    this.live?.stop();
    if (this.typingTimer !== null) clearInterval(this.typingTimer);
  }

  private get open() {
    const o = this.app.store.open;
    return o && o.id === this.id ? o : null;
  }

  private drawHeading() {
    const o = this.open;
    const item = this.app.store.convs.get(this.id);
    const title = conversationTitle(o?.title ?? item?.title, o?.sandboxId || item?.sandboxId || "");
    if (this.heading.textContent !== title) this.heading.textContent = title;
    document.title = `${title} · Switchboard`;
  }

  private drawRoster() {
    const o = this.open;
    if (!o) return;
    const me = this.app.store.me;
    const members = [...o.members].sort((a, b) => Number(isBot(a.id)) - Number(isBot(b.id)) || (a.id < b.id ? -1 : 1));
    replace(
      this.roster,
      members.map((m) => {
        const on = o.present.has(m.id);
        return h(
          "li",
          { title: on ? "here now" : "away" },
          h("span", { class: on ? "dot on" : "dot", "aria-hidden": "true" }),
          memberName(m.id, me),
          h("span", { class: "sr-only" }, on ? " (here now)" : " (away)"),
        );
      }),
    );
  }

  private drawTyping() {
    const o = this.open;
    const now = Date.now();
    const who = o ? o.typers(now, this.app.store.me) : [];
    const text = who.length ? `${names(who)} ${who.length === 1 ? "is" : "are"} typing…` : "";
    if (this.typingLine.textContent !== text) this.typingLine.textContent = text;
    // typing indicators expire by themselves: look again while one shows
    if (who.length && this.typingTimer === null) {
      this.typingTimer = setInterval(() => this.drawTyping(), 1000);
    } else if (!who.length && this.typingTimer !== null) {
      clearInterval(this.typingTimer);
      this.typingTimer = null;
    }
  }

  /** Draws the log: keyed by message id, an item redrawn only when what it shows changed. */
  private drawLog() {
    const o = this.open;
    const store = this.app.store;
    const me = store.me;
    const atEnd = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 60;
    const rows: { key: string; sig: string; make: () => HTMLElement }[] = [];
    if (!o || o.loading) {
      rows.push({ key: "status", sig: "loading", make: () => h("li", { class: "more" }, "Loading…") });
    } else if (o.error) {
      rows.push({ key: "status", sig: "e" + o.error, make: () => h("li", { class: "error" }, o.error) });
    }
    if (o && !o.loading) {
      if (o.hasMore) {
        rows.push({
          key: "more",
          sig: "more",
          make: () => h("li", { class: "more" }, h("button", { type: "button", class: "link", onclick: () => void this.app.loadOlder() }, "Load earlier messages")),
        });
      }
      // read receipts: under the newest message each other person has read
      const seen = new Map<string, string[]>();
      for (const [member, mid] of o.reads) {
        if (member === me || isBot(member)) continue;
        seen.set(mid, [...(seen.get(mid) ?? []), member]);
      }
      for (const m of o.ordered()) {
        const seenBy = seen.get(m.id) ?? [];
        const replied = m.inReplyToMessageId ? o.messages.get(m.inReplyToMessageId) : undefined;
        const picker = this.picker === m.id;
        const sig = JSON.stringify([m, seenBy, picker, replied?.content, replied?.deleted]);
        rows.push({ key: m.id, sig, make: () => this.messageItem(m, replied, seenBy, picker) });
      }
      for (const e of store.outbox) {
        if (e.conversationId !== o.id || o.arrived.has(e.clientId)) continue;
        const sig = JSON.stringify([e.state, e.lastError]);
        rows.push({ key: "out:" + e.clientId, sig, make: () => this.pendingItem(e.content, e.state === "waiting" ? "Waiting for the network…" : "Sending…", false) });
      }
      for (const [clientId, f] of store.failed) {
        if (f.entry.conversationId !== o.id) continue;
        rows.push({
          key: "fail:" + clientId,
          sig: f.error,
          make: () => {
            const li = this.pendingItem(f.entry.content, `Not sent: ${f.error}`, true);
            li.append(h("div", { class: "tools" }, h("button", { type: "button", class: "link", onclick: () => this.app.dismissFailed(clientId) }, "Dismiss")));
            return li;
          },
        });
      }
    }
    // reconcile: reuse unchanged items, keep DOM order equal to rows
    const keep = new Set(rows.map((r) => r.key));
    for (const [k, v] of this.items) {
      if (!keep.has(k)) {
        v.el.remove();
        this.items.delete(k);
      }
    }
    let prev: Element | null = null;
    for (const r of rows) {
      let it = this.items.get(r.key);
      if (!it || it.sig !== r.sig) {
        const el = r.make();
        if (it) it.el.replaceWith(el);
        it = { el, sig: r.sig };
        this.items.set(r.key, it);
      }
      const want: Element | null = prev ? prev.nextElementSibling : this.log.firstElementChild;
      if (want !== it.el) this.log.insertBefore(it.el, want);
      prev = it.el;
    }
    if (atEnd) this.scrollToEnd();
  }

  private scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  private pendingItem(content: Message["content"], status: string, failed: boolean): HTMLElement {
    return h(
      "li",
      { class: `msg mine ${failed ? "failed" : "pending"}` },
      h("div", { class: "meta" }, h("span", { class: "author" }, "You"), h("span", null, status)),
      h("p", { class: "text" }, plainText(content)),
    );
  }

  private messageItem(m: Message, replied: Message | undefined, seenBy: string[], picker: boolean): HTMLElement {
    const me = this.app.store.me;
    const mine = m.senderId === me;
    const author = authorOf(m, me);
    const meta = h(
      "div",
      { class: "meta" },
      h("span", { class: "author", style: author.color ? `color:${author.color}` : null }, author.name),
      author.platform ? h("span", { class: "platform", title: `Bridged from ${platformName(author.platform)}` }, platformName(author.platform)) : null,
      h("time", { datetime: new Date(m.createdAt).toISOString(), title: fullTime(m.createdAt) }, shortTime(m.createdAt)),
      m.updatedAt && !m.deleted ? h("span", null, "(edited)") : null,
    );
    const li = h("li", { class: `msg${mine ? " mine" : ""}`, "data-id": m.id }, meta);
    if (m.inReplyToMessageId) {
      const q = replied ? (replied.deleted ? "a deleted message" : `${authorOf(replied, me).name}: ${plainText(replied.content)}`) : "an earlier message";
      li.append(h("div", { class: "quote" }, `↪ ${q}`));
    }
    const seen = seenBy.length ? h("div", { class: "seen" }, `Seen by ${names(seenBy, me)}`) : null;
    if (m.deleted) {
      li.append(h("p", { class: "deleted" }, "This message was deleted."));
      if (seen) li.append(seen);
      return li;
    }
    for (const b of m.content) {
      if (b.type === "text") li.append(h("p", { class: "text" }, plainText([b])));
      else if (b.type === "actions") {
        li.append(
          h(
            "ul",
            { class: "actions", "aria-label": "Choices" },
            b.actions.map((a) => h("li", { class: a.style }, a.label)),
          ),
        );
        const r = b.resolved as { value?: unknown; by?: unknown } | undefined;
        if (r && typeof r.value === "string") {
          const label = b.actions.find((a) => a.value === r.value)?.label ?? r.value;
          li.append(h("p", { class: "resolved" }, `Chosen: ${label}${typeof r.by === "string" ? ` by ${memberName(r.by, me)}` : ""}`));
        }
      }
    }
    if (m.reactions.length) {
      li.append(
        h(
          "div",
          { class: "reactions" },
          m.reactions.map((r) => {
            const minePressed = r.memberIds.includes(me);
            return h(
              "button",
              {
                type: "button",
                "aria-pressed": minePressed ? "true" : "false",
                "aria-label": `${r.emoji} ${r.count}, ${names(r.memberIds, me)}`,
                title: names(r.memberIds, me),
                onclick: () => void this.app.toggleReaction(m, r.emoji).catch((e) => alert(errorText(e))),
              },
              `${r.emoji} ${r.count}`,
            );
          }),
        ),
      );
    }
    const tools = h(
      "div",
      { class: "tools" },
      h("button", { type: "button", class: "link", onclick: () => this.startReply(m) }, "Reply"),
      h(
        "button",
        { type: "button", class: "link", "aria-expanded": picker ? "true" : "false", onclick: () => ((this.picker = picker ? null : m.id), this.drawLog()) },
        "React",
      ),
      mine && !m.source && m.content.some((b) => b.type === "text") ? h("button", { type: "button", class: "link", onclick: () => this.startEdit(m) }, "Edit") : null,
      mine ? h("button", { type: "button", class: "link", onclick: () => this.remove(m) }, "Delete") : null,
    );
    li.append(tools);
    if (picker) {
      li.append(
        h(
          "div",
          { class: "reactions", role: "group", "aria-label": "Add a reaction" },
          QUICK_REACTIONS.map((e) =>
            h(
              "button",
              {
                type: "button",
                "aria-label": `React with ${e}`,
                onclick: () => {
                  this.picker = null;
                  void this.app.toggleReaction(m, e).catch((err) => alert(errorText(err)));
                },
              },
              e,
            ),
          ),
        ),
      );
    }
    if (seen) li.append(seen);
    return li;
  }

  private startReply(m: Message) {
    this.editing = null;
    this.replyTo = m;
    this.drawReplying(`Replying to ${authorOf(m, this.app.store.me).name}: ${plainText(m.content)}`);
  }

  private startEdit(m: Message) {
    this.replyTo = null;
    this.editing = m;
    this.textarea.value = plainText(m.content.filter((b) => b.type === "text"));
    this.autosize();
    this.drawReplying("Editing your message");
  }

  private cancelReply() {
    if (this.editing) this.textarea.value = "";
    this.replyTo = null;
    this.editing = null;
    this.replying.hidden = true;
    this.textarea.focus();
  }

  private drawReplying(text: string) {
    replace(this.replying, h("span", null, text), h("button", { type: "button", class: "link", onclick: () => this.cancelReply() }, "Cancel"));
    this.replying.hidden = false;
    this.textarea.focus();
  }

  private remove(m: Message) {
    if (!confirm("Delete this message for everyone?")) return;
    this.app.remove(m).catch((e) => alert(errorText(e)));
  }

  private submit() {
    const text = this.textarea.value.trim();
    if (!text) return;
    if (this.editing) {
      const m = this.editing;
      this.app.edit(m, text).then(
        () => this.cancelReply(),
        (e) => alert(errorText(e)),
      );
      return;
    }
    this.app.send(text, this.replyTo?.id);
    this.textarea.value = "";
    this.autosize();
    this.replyTo = null;
    this.replying.hidden = true;
    this.textarea.focus();
    // my own message goes to the end of the log
    queueMicrotask(() => this.scrollToEnd());
  }

  private autosize() {
    this.textarea.style.height = "auto";
    this.textarea.style.height = `${Math.min(this.textarea.scrollHeight, 144)}px`;
  }

  private drawLive() {
    const s = this.live;
    const el = this.liveEl;
    if (!s || !el) return;
    if (!this.liveParts) {
      this.liveParts = {
        status: h("p", { class: "status", role: "status" }),
        draft: h("div", { class: "draft", "aria-label": "Live output", "aria-live": "polite" }),
        note: h("p", { class: "status", hidden: true }, "Final message committed to the conversation."),
        frames: h("ol", { class: "frames", "aria-label": "Frames" }),
        shown: 0,
      };
      const p = this.liveParts;
      replace(el, p.status, h("h3", { class: "sr-only" }, "Output"), p.draft, p.note, h("h3", { class: "sr-only" }, "Frames"), p.frames);
    }
    const p = this.liveParts;
    const label = LIVE_LABELS[s.status];
    p.status.textContent = `${label}${s.detail ? `: ${s.detail}` : ""} · ${s.count} frame${s.count === 1 ? "" : "s"}`;
    const text = s.finalText ?? s.transcript;
    if (p.draft.textContent !== text) p.draft.textContent = text;
    p.note.hidden = s.finalText === null;
    // append the frames that came since the last draw; keep at most MAX_FRAMES on screen
    const fresh = s.count - p.shown;
    if (fresh > 0) {
      for (const f of s.frames.slice(-Math.min(fresh, s.frames.length))) p.frames.append(h("li", { class: f.final ? "final" : "" }, f.text));
    }
    p.shown = s.count;
    while (p.frames.childElementCount > MAX_FRAMES) p.frames.firstElementChild?.remove();
  }
}
