// The live view: a conversation's live channel (GET /v1/conversations/:id/live, the bot's
// streamed output, docs/api.md "Live channel") shown as it arrives. The library's LiveSocket
// acknowledges frames itself. Lines are any JSON value; the view joins the text of the common
// shapes into one running transcript ({"delta": "..."}, {"text": "..."}, a bare string; a
// {"final": true, "content": [...]} line is the committed message) and lists every frame.
import { LIVE_CLOSE, type BotStatus, type LiveSocket } from "../../packages/client-ts/src/index";
import type { App } from "./app";
import { errorText } from "./app";
import { plainText } from "./format";

/** Frames kept on screen (older ones are dropped from the list, not from the transcript). */
export const MAX_FRAMES = 500;
/** Transcript characters kept. */
export const MAX_TRANSCRIPT = 100_000;

export type LiveStatus = "checking" | "offline" | "connecting" | "live" | "reconnecting" | "ended" | "error";

export class LiveStream {
  status: LiveStatus = "checking";
  detail = "";
  transcript = "";
  /** Characters of `transcript` from publishes not finished yet (since the last final line). */
  private unfinished = 0;
  finalText: string | null = null;
  readonly frames: { text: string; final: boolean }[] = [];
  count = 0;
  private socket: LiveSocket | null = null;
  private offs: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly app: App,
    readonly conversationId: string,
    private readonly changed: () => void,
  ) {
    this.offs.push(app.store.on("live", () => void this.check()));
    void this.check();
  }

  /** Opens the channel when the bot is online (a closed channel reopens when it comes back). */
  private async check(): Promise<void> {
    if (this.stopped || (this.socket && this.socket.state !== "closed")) return;
    let st: BotStatus;
    try {
      st = await this.app.client.botStatus(this.conversationId);
    } catch (e) {
      this.set("error", errorText(e));
      return;
    }
    if (this.stopped || (this.socket && this.socket.state !== "closed")) return;
    if (!st.online) {
      this.set("offline", "The bot is offline: its stream starts here when it comes online.");
      return;
    }
    this.open();
  }

  private open(): void {
    const s = this.app.client.openLive(this.conversationId);
    this.socket = s;
    this.set("connecting", "");
    s.on("state", (state) => {
      if (state === "open") this.set("live", "");
      else if (state === "reconnecting") this.set("reconnecting", "Connection lost; reconnecting…");
    });
    s.on("line", (v) => this.line(v));
    // Reconnected: the publish in progress is sent again from its first line: drop its text so far.
    s.on("reset", () => {
      this.transcript = this.transcript.slice(0, Math.max(0, this.transcript.length - this.unfinished));
      this.unfinished = 0;
      this.changed();
    });
    s.on("closed", ({ code, error }) => {
      if (this.socket !== s) return;
      if (code === LIVE_CLOSE.BOT_OFFLINE) this.set("offline", "The bot went offline: the stream ended.");
      else if (code === LIVE_CLOSE.NOT_MEMBER) this.set("error", "You are not a member of this conversation.");
      else if (error) this.set("error", errorText(error));
      else if (!this.stopped) this.set("ended", "The stream closed.");
    });
  }

  private line(v: unknown): void {
    this.count++;
    const final = !!v && typeof v === "object" && (v as { final?: unknown }).final === true;
    const piece = textOf(v);
    if (final) {
      const content = (v as { content?: unknown }).content;
      this.finalText = Array.isArray(content) ? plainText(content as never) : piece;
      this.unfinished = 0;
    } else if (piece) {
      this.transcript = (this.transcript + piece).slice(-MAX_TRANSCRIPT);
      this.unfinished = Math.min(this.unfinished + piece.length, this.transcript.length);
    }
    this.frames.push({ text: JSON.stringify(v), final });
    if (this.frames.length > MAX_FRAMES) this.frames.splice(0, this.frames.length - MAX_FRAMES);
    this.changed();
  }

  private set(status: LiveStatus, detail: string) {
    this.status = status;
    this.detail = detail;
    this.changed();
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    this.socket?.close();
    this.socket = null;
  }
}

/** The text a line adds to the transcript. */
function textOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (!v || typeof v !== "object") return "";
  const o = v as Record<string, unknown>;
  for (const k of ["delta", "text", "content"]) if (typeof o[k] === "string") return o[k] as string;
  return "";
}
