import type { components } from "./schema.js";
type Schemas = components["schemas"];
/** A message frame: live, resumed (with status) or read from history. */
export type Message = Schemas["MessageFrame"];
/** A delivered or read receipt of one of the user's messages. */
export type Receipt = Schemas["ReceiptFrame"];
/** An in-app notification. */
export type Notification = Schemas["NotificationFrame"];
/** Every frame the gateway sends. */
export type ServerFrame = Schemas["ServerFrame"];
/** The gateway's answer to a send. */
export type SentMessage = Schemas["SentMessage"];
/** A scheduled message. */
export type ScheduledMessage = Schemas["ScheduledMessage"];
/** A search match. */
export type SearchHit = Schemas["SearchHit"];
/** A broadcast's progress. */
export type Broadcast = Schemas["Broadcast"];
/** A broadcast to create. */
export type BroadcastRequest = Schemas["BroadcastRequest"];
/** Notification channels and addresses. */
export type NotificationPreferences = Schemas["NotificationPreferences"];
/** The user's display name. */
export type Profile = Schemas["Profile"];
/** The body of POST /v1/messages. */
export type SendRequest = Schemas["SendRequest"];
/** A conversation with its members (a group's title and roles). */
export type Conversation = Schemas["Conversation"];
/** One line of the conversation list. */
export type ConversationSummary = Schemas["ConversationSummary"];
/** An error answer of the gateway: the API's code and field, unchanged. */
export declare class ApiError extends Error {
    /** HTTP status. */
    readonly status: number;
    /** The API's error code (docs/api.md, Errors), e.g. invalid_field. */
    readonly code: string;
    /** The request field at fault, when one is. */
    readonly field?: string;
    /** Milliseconds a 429 asks to wait. */
    readonly retryAfterMs?: number;
    constructor(status: number, code: string, message: string, field?: string, retryAfterMs?: number);
}
/** Keeps the seq up to which each conversation was emitted. */
export interface CursorStorage {
    load(): Record<string, number> | Promise<Record<string, number>>;
    save(conversationId: string, seq: number): void | Promise<void>;
}
/** Keeps messages sent but not yet stored, so none is lost offline. */
export interface OutboxStorage {
    load(): OutboxEntry[] | Promise<OutboxEntry[]>;
    put(entry: OutboxEntry): void | Promise<void>;
    remove(id: string): void | Promise<void>;
}
/** A message waiting in the outbox (its conversation found when sent, if not given). */
export interface OutboxEntry {
    id: string;
    body: Omit<SendRequest, "conversation_id"> & {
        conversation_id?: string;
    };
}
/** Cursors in memory: lost when the page or process ends. */
export declare class MemoryCursors implements CursorStorage {
    private cursors;
    load(): Record<string, number>;
    save(conversationId: string, seq: number): void;
}
/** An outbox in memory: it survives reconnects, not the page or process. */
export declare class MemoryOutbox implements OutboxStorage {
    private entries;
    load(): OutboxEntry[];
    put(entry: OutboxEntry): void;
    remove(id: string): void;
}
/** Cursor storage in a Web Storage area (localStorage in browsers). */
export declare class WebStorageCursors implements CursorStorage {
    private readonly storage;
    private readonly key;
    constructor(storage: Storage, key?: string);
    load(): Record<string, number>;
    save(conversationId: string, seq: number): void;
}
/** Outbox storage in a Web Storage area: unsent messages survive a reload. */
export declare class WebStorageOutbox implements OutboxStorage {
    private readonly storage;
    private readonly key;
    constructor(storage: Storage, key?: string);
    load(): OutboxEntry[];
    put(entry: OutboxEntry): void;
    remove(id: string): void;
}
/** The websocket's state, as "connection" events tell it. */
export interface ConnectionEvent {
    state: "connecting" | "live" | "offline" | "stopped";
    endpoint?: string;
    /** Why the connection dropped or stopped. */
    error?: string;
}
/** The events of a client and what each carries. */
export interface ClientEvents {
    message: Message;
    receipt: Receipt;
    notification: Notification;
    connection: ConnectionEvent;
    /** An outbox message that was stored, or held as scheduled (after its send() resolved). */
    sent: SentMessage | ScheduledMessage;
    /** An outbox message the gateway refused (4xx): removed from the outbox. */
    refused: {
        id: string;
        error: ApiError;
    };
}
/** What a client counts. */
export interface ClientStats {
    delivered: number;
    duplicates: number;
    gaps: number;
    resumes: number;
    connects: number;
    reconnects: number;
    retries: number;
}
/** Options of a client. */
export interface ClientOptions {
    /** Gateway base URLs (http:// or https://); the next is tried when one fails. */
    endpoints: string[];
    /** The user's bearer token, or a function returning it (asked before every request and connection). */
    token: string | (() => string | Promise<string>);
    /** Cursor storage; in memory by default. */
    cursors?: CursorStorage;
    /** Outbox storage; in memory by default. */
    outbox?: OutboxStorage;
    /** The WebSocket constructor; globalThis.WebSocket by default (Node 20 needs --experimental-websocket). */
    WebSocket?: typeof WebSocket;
    /** fetch; globalThis.fetch by default. */
    fetch?: typeof fetch;
    /** Bounds of the jittered exponential backoff (default 250 ms and 10 s). */
    minBackoffMs?: number;
    maxBackoffMs?: number;
    /** One request attempt's time limit (default 10 s). */
    requestTimeoutMs?: number;
}
type Handler<T> = (value: T) => void;
/** Message id in the style of the Go outbox: UUIDv7 (time-ordered). */
export declare function newMessageId(): string;
/** A client of the gateway for one user. */
export declare class MsgrunnerClient {
    private readonly opts;
    private readonly WS?;
    private readonly doFetch;
    private readonly cursors;
    private readonly outboxStore;
    private readonly handlers;
    private readonly convs;
    private next;
    private ws;
    private running;
    private stopper;
    private acks;
    private resumeRef;
    private resumeInFlight;
    private resumeAgain;
    private resumeErrors;
    private loaded;
    private readonly pending;
    /** Counters of what the client recovered from. */
    readonly stats: ClientStats;
    constructor(options: ClientOptions);
    /** Subscribes to an event; returns the function that unsubscribes. */
    on<K extends keyof ClientEvents>(event: K, handler: Handler<ClientEvents[K]>): () => void;
    private emit;
    private token;
    private endpoint;
    private failover;
    private backoff;
    /** One request with retries of retryable failures (when retry is set). */
    private request;
    private once;
    /**
     * Sends a message: it gets an id (unless it has one) and waits in the
     * outbox until the gateway stores it, retried with that id on network
     * errors, timeouts and 5xx answers, so it is never stored twice. Resolves
     * with the stored message (or the scheduled one, with send_at or
     * delay_ms); rejects with an ApiError on a 4xx, which is never retried,
     * or when the client is closed first (the message stays in a persistent
     * outbox and is sent on the next connect()). A direct message needs
     * recipient_id (its conversation_id is looked up when left out); a
     * message to a group gives the group's conversation_id and no
     * recipient_id.
     */
    send(message: Omit<SendRequest, "conversation_id"> & {
        conversation_id?: string;
    }): Promise<SentMessage | ScheduledMessage>;
    private deliverEntry;
    /** Messages in the outbox, not yet stored. */
    outbox(): Promise<OutboxEntry[]>;
    /** The conversation of the user and peer (GET /v1/dm/:peer). */
    directConversation(peer: string): Promise<string>;
    /** Creates a group with the other members given; you are its owner (POST /v1/conversations). */
    createGroup(title: string, memberIds: string[]): Promise<Conversation>;
    /** A conversation with its members and their roles (GET /v1/conversations/:id). */
    conversation(id: string): Promise<Conversation>;
    /** A page of your conversations, newest activity first (GET /v1/conversations). */
    conversations(cursor?: string, limit?: number): Promise<{
        conversations: ConversationSummary[];
        next_cursor?: string;
    }>;
    /** A page of a conversation's history after a seq (GET /v1/conversations/:id/messages). */
    history(conversationId: string, after?: number, limit?: number): Promise<{
        messages: Message[];
        next_after: number;
        cached: boolean;
    }>;
    /** Unread messages per conversation (GET /v1/unread). */
    unread(): Promise<{
        conversations: Record<string, number>;
        total: number;
    }>;
    /** Full-text search over the user's conversations (GET /v1/search). */
    search(q: string, options?: {
        conversationId?: string;
        limit?: number;
        cursor?: string;
    }): Promise<{
        results: SearchHit[];
        next_cursor: string | null;
    }>;
    /** The user's pending scheduled messages (GET /v1/scheduled). */
    scheduled(): Promise<ScheduledMessage[]>;
    /** Cancels a pending scheduled message (DELETE /v1/scheduled/:id). */
    cancelScheduled(id: string): Promise<void>;
    /** Starts a broadcast (POST /v1/broadcasts). Not retried: a retry would start a second one. */
    createBroadcast(request: BroadcastRequest): Promise<{
        id: string;
        total: number;
        status: Broadcast["status"];
    }>;
    /** A broadcast's progress (GET /v1/broadcasts/:id). */
    broadcast(id: string): Promise<Broadcast>;
    /** Stops a broadcast at its next chunk boundary (DELETE /v1/broadcasts/:id). */
    cancelBroadcast(id: string): Promise<{
        id: string;
        status: Broadcast["status"];
        cancelling?: boolean;
        message?: string;
    }>;
    /** Uploads an attachment (POST /v1/attachments). */
    uploadAttachment(data: Blob | ArrayBuffer | Uint8Array, contentType: string): Promise<{
        id: string;
        content_type: string;
        size: number;
        expires_at: string;
    }>;
    /** Downloads an attachment (GET /v1/attachments/:id). */
    attachment(id: string): Promise<Blob>;
    /** The user's notification preferences. */
    preferences(): Promise<NotificationPreferences>;
    /** Sets the user's notification preferences. */
    setPreferences(p: NotificationPreferences): Promise<NotificationPreferences>;
    /** The user's display name. */
    profile(): Promise<Profile>;
    /** Sets the user's display name. */
    setProfile(displayName: string): Promise<Profile>;
    /**
     * Connects and keeps connecting until close() or a 401, and sends what
     * waits in the outbox. Events flow through on().
     */
    connect(): void;
    /** Stops reconnecting and closes the websocket; outbox sends stop retrying. */
    close(): void;
    private loadCursors;
    private flushOutbox;
    private conv;
    private loop;
    /** One websocket connection, until it ends. */
    private session;
    /** Whether the gateway refuses token (a websocket cannot see the upgrade's status). */
    private unauthorized;
    /** Asks for everything after the cursors, or marks another resume wanted. */
    private resume;
    /** Emits, drops or holds one message frame (see the module comment). */
    private place;
    /** Emits the held messages that arrived before resume number done was sent. */
    private releaseHeld;
    private deliver;
    private drain;
    /**
     * Tells the sender a message was delivered to or read by the user. Sent
     * at once when connected, else kept and sent after the next ready. Acks
     * are idempotent: acking again is always safe.
     */
    ack(messageId: string, status: "delivered" | "read"): void;
}
export {};
