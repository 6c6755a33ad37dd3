// Type-only (checked by tsc -p test, never run): the browser's own WebSocket and fetch fit the
// environment the library asks for, so a web app can pass them as they are.
import type { FetchLike, WebSocketConstructor } from "../src/index.js";

export const browserWebSocket: WebSocketConstructor = WebSocket;
export const browserFetch: FetchLike = fetch;
