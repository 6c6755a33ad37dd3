// The HTTP API's bodies (docs/api.md, docs/openapi.yaml). Messages and content blocks are the
// frame schemas' types (one source for sockets and HTTP).
import type { ContentBlock, Message } from "./frames.js";

export interface DevToken {
  token: string;
  /** ISO-8601 */
  expiresAt: string;
  /** the member id: `alice`, or `bot:kiloclaw:{sandboxId}` */
  userId: string;
}

export interface ConnectTicket {
  ticket: string;
  expiresAt: string;
}

export interface ConversationListItem {
  conversationId: string;
  title: string | null;
  sandboxId: string;
  lastActivityAt: number | null;
  lastReadAt: number | null;
  joinedAt: number;
}

export interface ConversationPage {
  conversations: ConversationListItem[];
  hasMore: boolean;
  nextCursor: string | null;
}

export interface ConversationMember {
  id: string;
  kind: "user" | "bot";
  joinedAt: number;
  /** who added the member (null for the creator) */
  addedBy: string | null;
  /** "owner" on the creator only */
  role?: "owner";
  /** how far the member has read (read receipts); null before their first mark-read */
  lastReadMessageId: string | null;
  lastReadAt: number | null;
}

export interface ConversationDetail {
  id: string;
  title: string | null;
  sandboxId: string;
  createdBy: string;
  createdAt: number;
  members: ConversationMember[];
}

export interface CreateConversation {
  sandboxId: string;
  title?: string;
  additionalMembers?: string[];
}

export interface CreatedConversation {
  conversationId: string;
  conversationListItem: ConversationListItem;
}

export interface MessagePage {
  /** newest first */
  messages: Message[];
  hasMore: boolean;
  nextCursor: string | null;
}

export interface SendMessage {
  conversationId: string;
  content: ContentBlock[];
  inReplyToMessageId?: string;
  clientId?: string;
}

export interface SentMessage {
  messageId: string;
  message: Message;
  clientId?: string;
  /** true when the clientId had been used: this is the original */
  duplicate?: boolean;
}

export interface EditMessage {
  conversationId: string;
  content: ContentBlock[];
  /** the edit's time (ms); an edit older than the stored one is 409 edit_conflict */
  timestamp: number;
}

export interface Reactions {
  id: string;
  reactions: Message["reactions"];
}

export interface MarkReadResult {
  conversationId: string;
  lastReadAt: number;
  badgeCount: number | null;
}

export interface BotStatus {
  sandboxId: string;
  online: boolean;
  at: number | null;
}

export interface Badges {
  buckets: { badgeBucket: string; badgeCount: number }[];
  total: number;
}

export interface PushToken {
  token: string;
  platform?: string;
  appVersion?: string;
  createdAt?: number;
  updatedAt?: number;
}

export interface NotificationPreferences {
  chatMessagesEnabled: boolean;
  preview: "full" | "generic";
}
