// Boot and routing. The page is served by the chat worker itself, so the API is this origin.
// Routes (the hash, so that the static assets need no server-side routes):
//   #/            the list        #/new         new conversation
//   #/c/{id}      a conversation  #/c/{id}/live its live stream
import { App } from "./app";
import { replace } from "./dom";
import { clearSession, devSession, loadSession, saveSession, type Session, tokenSession } from "./session";
import { ConversationView } from "./conversation_view";
import { newConversationView, Shell, signInView } from "./views";

const root = document.getElementById("app") as HTMLElement;
const baseUrl = location.origin;

let app: App | null = null;
let shell: Shell | null = null;
let conversation: ConversationView | null = null;

function signIn(notice = "") {
  document.title = "Sign in · Switchboard";
  replace(
    root,
    signInView(
      async (userId) => start(await devSession(baseUrl, userId)),
      async (token) => {
        const s = tokenSession(token);
        start(s);
      },
      notice,
    ),
  );
  (root.querySelector("#user-id") as HTMLInputElement | null)?.focus();
}

function start(session: Session) {
  saveSession(session);
  app = new App(baseUrl, session, (why) => {
    shell?.dispose();
    shell = null;
    app = null;
    conversation = null;
    clearSession();
    history.replaceState(null, "", "#/");
    signIn(why);
  });
  shell = new Shell(app);
  replace(root, shell.el);
  route();
  app.start().catch((e) => console.error("switchboard: loading the list failed", e));
}

function route() {
  if (!app || !shell) return;
  const a = app;
  const hash = location.hash.replace(/^#\/?/, "");
  const [head, id, sub] = hash.split("/");
  if (head === "c" && id) {
    const tab = sub === "live" ? "live" : "messages";
    shell.show(
      `c/${id}`,
      () => {
        conversation = new ConversationView(a, id);
        return { el: conversation.el, dispose: () => conversation?.dispose() };
      },
      true,
    );
    void a.openConversation(id);
    conversation?.setTab(tab);
    return;
  }
  conversation = null;
  a.closeConversation();
  if (head === "new") {
    document.title = "New conversation · Switchboard";
    shell.show("new", () => ({ el: newConversationView(a) }), true);
  } else {
    document.title = "Switchboard";
    shell.show("", () => null, false);
  }
}

window.addEventListener("hashchange", route);
const saved = loadSession();
if (saved) start(saved);
else signIn();
