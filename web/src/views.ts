// The views: sign-in, the shell (top bar, connection banner, list and main pane), the list and the
// new-conversation form (the conversation itself: conversation_view.ts).
// Each view draws from the Store and redraws on the topics it shows.
import { type App, errorText } from "./app";
import { h, replace } from "./dom";
import { conversationTitle, shortTime } from "./format";
import type { ConvItem } from "./store";

/** Quick reactions offered under a message. */
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "👀", "🙏"];
/** User ids in the new-conversation form, at most (the API takes 100 additional members). */
const MAX_NEW_MEMBERS = 100;

// ---------------------------------------------------------------------------------------------
// Sign-in
// ---------------------------------------------------------------------------------------------

export function signInView(
  onUser: (userId: string) => Promise<void>,
  onToken: (token: string) => Promise<void>,
  notice: string,
): HTMLElement {
  const error = h("p", { class: "error", role: "alert" }, notice);
  const user = h("input", { id: "user-id", name: "userId", autocomplete: "username", required: true, maxlength: 128, spellcheck: "false", autocapitalize: "off" });
  const token = h("textarea", { id: "token", name: "token", rows: 3, spellcheck: "false" });
  const details = h("details", null, h("summary", null, "Sign in with a token instead"));
  const busy = async (form: HTMLFormElement, f: () => Promise<void>) => {
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    error.textContent = "";
    try {
      await f();
    } catch (e) {
      error.textContent = errorText(e);
      buttons.forEach((b) => (b.disabled = false));
    }
  };
  const userForm = h(
    "form",
    {
      onsubmit: (ev) => {
        ev.preventDefault();
        const id = user.value.trim();
        if (!id) return;
        void busy(userForm, async () => {
          try {
            await onUser(id);
          } catch (e) {
            if ((e as { status?: number }).status === 404) {
              details.open = true;
              throw new Error("This server does not sign in by user id (local mode is off): paste a token below.");
            }
            throw e;
          }
        });
      },
    },
    h("label", { for: "user-id" }, "User id"),
    user,
    h("p", { class: "hint" }, "Local mode: any id signs you in as that person."),
    h("div", { class: "row" }, h("button", { class: "primary", type: "submit" }, "Sign in")),
  );
  const tokenForm = h(
    "form",
    {
      onsubmit: (ev) => {
        ev.preventDefault();
        if (token.value.trim()) void busy(tokenForm, () => onToken(token.value));
      },
    },
    h("label", { for: "token" }, "Token"),
    token,
    h("p", { class: "hint" }, "A token from your auth service (a JWT with kiloUserId)."),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Use token")),
  );
  details.append(tokenForm);
  return h(
    "main",
    { class: "signin" },
    h("h1", null, "Switchboard"),
    h("p", { class: "hint" }, "Real-time chat. Sign in to see your conversations."),
    userForm,
    details,
    error,
  );
}

// ---------------------------------------------------------------------------------------------
// Shell and list
// ---------------------------------------------------------------------------------------------

export class Shell {
  readonly el: HTMLElement;
  readonly main: HTMLElement;
  private readonly panes: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly banner: HTMLElement;
  private current: { key: string; dispose?: () => void } = { key: "" };

  constructor(private readonly app: App) {
    const store = app.store;
    this.banner = h("div", { class: "banner", role: "status", hidden: true });
    this.list = h("ul", { class: "convlist", "aria-label": "Conversations" });
    this.main = h("main", { class: "main" });
    this.panes = h(
      "div",
      { class: "panes" },
      h(
        "nav",
        { class: "sidebar", "aria-label": "Conversation list" },
        h(
          "div",
          { class: "sidebar-head" },
          h("h2", null, "Conversations"),
          h("button", { class: "primary", type: "button", onclick: () => (location.hash = "#/new") }, "New conversation"),
        ),
        this.list,
      ),
      this.main,
    );
    this.el = h(
      "div",
      { id: "shell", style: "display:contents" },
      h(
        "header",
        { class: "topbar" },
        h("h1", null, "Switchboard"),
        h("span", { class: "me", title: store.me }, `Signed in as ${store.me}`),
        h("button", { class: "link", type: "button", onclick: () => app.signOut() }, "Sign out"),
      ),
      this.banner,
      this.panes,
    );
    store.on("list", () => this.drawList());
    store.on("connection", () => this.drawBanner());
    this.drawList();
    this.drawBanner();
  }

  private drawBanner() {
    const s = this.app.store;
    const waiting = s.outbox.length;
    const w = waiting ? ` ${waiting} message${waiting === 1 ? "" : "s"} waiting to be sent.` : "";
    let text = "";
    if (s.connection === "offline") text = `You are offline. Reconnecting when the network is back.${w}`;
    else if (s.connection === "reconnecting") text = `Reconnecting…${w}`;
    else if (s.connection === "closed") text = "Disconnected. Reload the page to reconnect.";
    this.banner.textContent = text;
    this.banner.hidden = !text;
  }

  private drawList() {
    const store = this.app.store;
    const items = store.sortedConvs();
    const openId = store.open?.id;
    if (!items.length) {
      replace(this.list, h("li", { class: "empty" }, "No conversations yet. Start one with New conversation."));
      return;
    }
    replace(this.list, items.map((c) => convLink(c, c.id === openId)));
  }

  /** Shows a view in the main pane (a key that did not change keeps the view). */
  show(key: string, make: () => { el: HTMLElement; dispose?: () => void } | null, open: boolean): void {
    this.panes.classList.toggle("open", open);
    if (this.current.key === key) return;
    this.current.dispose?.();
    const v = make();
    this.current = { key, dispose: v?.dispose };
    replace(this.main, v ? v.el : h("p", { class: "placeholder" }, "Choose a conversation, or start a new one."));
  }

  dispose(): void {
    this.current.dispose?.();
  }
}

function convLink(c: ConvItem, current: boolean): HTMLElement {
  const title = conversationTitle(c.title, c.sandboxId);
  const unread = c.unread > 0 || c.unreadMore;
  const count = c.unread > 0 ? `${c.unread}${c.unreadMore ? "+" : ""}` : "";
  const descId = `conv-${c.id}-desc`;
  const desc = unread ? `${count || "New"} unread` : "";
  return h(
    "li",
    { class: unread ? "unread" : "" },
    h(
      "a",
      { href: `#/c/${c.id}`, "aria-label": title, "aria-describedby": descId, "aria-current": current ? "page" : null },
      h("span", { class: "title" }, title),
      h("span", { class: "when" }, shortTime(c.lastActivityAt ?? c.joinedAt)),
      h("span", { class: "sub" }, c.preview ?? c.sandboxId),
      unread ? h("span", { class: "badge", "aria-hidden": "true" }, count || "•") : h("span"),
      h("span", { id: descId, class: "sr-only" }, desc),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// New conversation
// ---------------------------------------------------------------------------------------------

export function newConversationView(app: App): HTMLElement {
  const error = h("p", { class: "error", role: "alert" });
  const sandbox = h("input", { id: "new-sandbox", required: true, pattern: "[A-Za-z0-9_\\-]{1,64}", maxlength: 64, value: app.lastSandbox(), autocapitalize: "off", spellcheck: "false" });
  const title = h("input", { id: "new-title", maxlength: 200 });
  const members = h("input", { id: "new-members", autocapitalize: "off", spellcheck: "false" });
  const form: HTMLFormElement = h(
    "form",
    {
      onsubmit: (ev) => {
        ev.preventDefault();
        const ids = [...new Set(members.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean))];
        if (ids.length > MAX_NEW_MEMBERS) {
          error.textContent = `At most ${MAX_NEW_MEMBERS} members at once.`;
          return;
        }
        const buttons = form.querySelectorAll("button");
        buttons.forEach((b) => (b.disabled = true));
        error.textContent = "";
        app.createConversation(sandbox.value.trim(), title.value.trim(), ids).then(
          (id) => (location.hash = `#/c/${id}`),
          (e) => {
            error.textContent = errorText(e);
            buttons.forEach((b) => (b.disabled = false));
          },
        );
      },
    },
    h("label", { for: "new-sandbox" }, "Sandbox id"),
    sandbox,
    h("p", { class: "hint" }, "The bot's sandbox (letters, digits, - and _); its bot joins the conversation."),
    h("label", { for: "new-title" }, "Title"),
    title,
    h("p", { class: "hint" }, "Optional: without one, the first message names it."),
    h("label", { for: "new-members" }, "Members"),
    members,
    h("p", { class: "hint" }, "User ids of the people to add, separated by commas or spaces."),
    h(
      "div",
      { class: "row" },
      h("button", { class: "primary", type: "submit" }, "Create"),
      h("button", { type: "button", onclick: () => (location.hash = "#/") }, "Cancel"),
    ),
    error,
  );
  queueMicrotask(() => (sandbox.value ? title : sandbox).focus());
  return h("section", { class: "dialog", "aria-labelledby": "new-heading" }, h("h2", { id: "new-heading" }, "New conversation"), form);
}
