// The socket frames, both directions, of the conversation socket, the hub and the live channel.
// The frame types are generated from docs/schemas/*.json (scripts/gen-types.mjs writes
// src/generated/frames.ts at build time); this module re-exports them and adds the maps the
// library's API is typed with.
export * from "./generated/frames.js";
import type {
  ConversationEventFrame,
  HubEventFrame,
} from "./generated/frames.js";

/** Every event name and its payload type, as the conversation socket and the hub carry them. */
export type ConversationEventName = ConversationEventFrame["event"];
export type HubEventName = HubEventFrame["event"];
/** The payload of the conversation event named `E`. */
export type EventPayload<E extends HubEventName> = Extract<HubEventFrame, { event: E }>["payload"];
