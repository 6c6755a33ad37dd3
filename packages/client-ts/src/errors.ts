/** An error answer of the API (`{"error":{"code","message"}}`), a socket error frame, or a client-side failure. */
export class SwitchboardError extends Error {
  /** HTTP status; 0 for a network failure or a socket error frame. */
  readonly status: number;
  /** The API's error code (`not_found`, `forbidden`, ...), or `network`, `outbox_full`, `closed`, `timeout`. */
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "SwitchboardError";
    this.status = status;
    this.code = code;
  }

  /** Worth retrying unchanged: a network failure, 408, 429 or a 5xx. */
  get retryable(): boolean {
    return this.status === 0 ? this.code === "network" : this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** Builds the error of an HTTP answer from its body text. */
export function errorFromAnswer(status: number, text: string): SwitchboardError {
  try {
    const v = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (v && v.error && typeof v.error.code === "string") {
      return new SwitchboardError(status, v.error.code, typeof v.error.message === "string" ? v.error.message : v.error.code);
    }
  } catch {
    // not JSON: fall through
  }
  return new SwitchboardError(status, "http_" + status, text.slice(0, 200) || `HTTP ${status}`);
}
