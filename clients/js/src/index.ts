// Client of the msgrunner gateway for browsers and Node 20+.
//
// It keeps the delivery promise of docs/api.md for its user, so an
// application writes no protocol code:
//   - connect() holds a websocket to one of the gateways, reconnects with
//     jittered exponential backoff (moving to the next endpoint) and stops
//     only on close() or a 401;
//   - after every ready and resync it sends resume with the cursor of every
//     conversation it knows (CursorStorage), and again when a resume fails;
//   - it emits each message exactly once, in seq order per conversation:
//     duplicates are dropped, and a live message ahead of its
//     conversation's cursor is held while a resume fetches what lies
//     between;
//   - send() gives the message an id first, keeps it in an outbox (which
//     survives reconnects, and reloads with persistent storage) and retries
//     it with that id on network errors, timeouts and 5xx answers until it
//     is stored; a 4xx rejects at once and is never retried.
//
// Types of the API's bodies and frames come from api/gateway.yaml (the
// generated ./schema.ts).

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
export class ApiError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** The API's error code (docs/api.md, Errors), e.g. invalid_field. */
  readonly code: string;
  /** The request field at fault, when one is. */
  readonly field?: string;
  /** Milliseconds a 429 asks to wait. */
  readonly retryAfterMs?: number;

  constructor(status: number, code: string, message: string, field?: string, retryAfterMs?: number) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Whether a failed request may succeed if sent again. */
function retryable(err: unknown): boolean {
  if (err instanceof ApiError) return err.status >= 500 && err.status !== 501;
  return true; // network errors and timeouts
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
  body: Omit<SendRequest, "conversation_id"> & { conversation_id?: string };
}

/** Cursors in memory: lost when the page or process ends. */
export class MemoryCursors implements CursorStorage {
  private cursors: Record<string, number> = {};
  load(): Record<string, number> { return { ...this.cursors }; }
  save(conversationId: string, seq: number): void {
    if (seq > (this.cursors[conversationId] ?? 0)) this.cursors[conversationId] = seq;
  }
}

/** An outbox in memory: it survives reconnects, not the page or process. */
export class MemoryOutbox implements OutboxStorage {
  private entries = new Map<string, OutboxEntry>();
  load(): OutboxEntry[] { return [...this.entries.values()]; }
  put(entry: OutboxEntry): void { this.entries.set(entry.id, entry); }
  remove(id: string): void { this.entries.delete(id); }
}

/** Cursor storage in a Web Storage area (localStorage in browsers). */
export class WebStorageCursors implements CursorStorage {
  constructor(private readonly storage: Storage, private readonly key = "msgrunner.cursors") {}
  load(): Record<string, number> {
    try { return JSON.parse(this.storage.getItem(this.key) ?? "{}"); } catch { return {}; }
  }
  save(conversationId: string, seq: number): void {
    const all = this.load();
    if (seq > (all[conversationId] ?? 0)) {
      all[conversationId] = seq;
      this.storage.setItem(this.key, JSON.stringify(all));
    }
  }
}

/** Outbox storage in a Web Storage area: unsent messages survive a reload. */
export class WebStorageOutbox implements OutboxStorage {
  constructor(private readonly storage: Storage, private readonly key = "msgrunner.outbox") {}
  load(): OutboxEntry[] {
    try { return JSON.parse(this.storage.getItem(this.key) ?? "[]"); } catch { return []; }
  }
  put(entry: OutboxEntry): void {
    const all = this.load().filter((e) => e.id !== entry.id);
    all.push(entry);
    this.storage.setItem(this.key, JSON.stringify(all));
  }
  remove(id: string): void {
    this.storage.setItem(this.key, JSON.stringify(this.load().filter((e) => e.id !== id)));
  }
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
  refused: { id: string; error: ApiError };
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

interface ConvState {
  cursor: number;
  held: Map<number, { message: Message; resumesBefore: number }>;
}

type Handler<T> = (value: T) => void;

/** Message id in the style of the Go outbox: UUIDv7 (time-ordered). */
export function newMessageId(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  let ms = Date.now();
  for (let i = 5; i >= 0; i--) { b[i] = ms % 256; ms = Math.floor(ms / 256); }
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });

/** A client of the gateway for one user. */
export class MsgrunnerClient {
  private readonly opts: Required<Omit<ClientOptions, "WebSocket" | "fetch" | "cursors" | "outbox">>;
  private readonly WS?: typeof WebSocket;
  private readonly doFetch: typeof fetch;
  private readonly cursors: CursorStorage;
  private readonly outboxStore: OutboxStorage;
  private readonly handlers = new Map<keyof ClientEvents, Set<Handler<never>>>();
  private readonly convs = new Map<string, ConvState>();
  private next = 0;
  private ws: WebSocket | null = null;
  private running = false;
  private stopper = new AbortController();
  private acks: string[] = [];
  private resumeRef = "";
  private resumeInFlight = false;
  private resumeAgain = false;
  private resumeErrors = 0;
  private loaded: Promise<void> | null = null;
  private readonly pending = new Map<string, Promise<SentMessage | ScheduledMessage>>();
  /** Counters of what the client recovered from. */
  readonly stats: ClientStats = { delivered: 0, duplicates: 0, gaps: 0, resumes: 0, connects: 0, reconnects: 0, retries: 0 };

  constructor(options: ClientOptions) {
    if (!options.endpoints?.length) throw new Error("msgrunner: endpoints needs at least one gateway URL");
    for (const e of options.endpoints) {
      const u = new URL(e);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`msgrunner: endpoint ${e} is not an http(s) URL`);
    }
    if (!options.token) throw new Error("msgrunner: token is required");
    this.opts = {
      endpoints: options.endpoints.map((e) => e.replace(/\/+$/, "")),
      token: options.token,
      minBackoffMs: options.minBackoffMs ?? 250,
      maxBackoffMs: options.maxBackoffMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    };
    this.WS = options.WebSocket ?? (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    const f = options.fetch ?? globalThis.fetch;
    if (!f) throw new Error("msgrunner: no fetch: pass options.fetch");
    this.doFetch = f.bind(globalThis);
    this.cursors = options.cursors ?? new MemoryCursors();
    this.outboxStore = options.outbox ?? new MemoryOutbox();
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ClientEvents>(event: K, handler: Handler<ClientEvents[K]>): () => void {
    let set = this.handlers.get(event);
    if (!set) { set = new Set(); this.handlers.set(event, set); }
    const h = handler as Handler<never>;
    set.add(h);
    return () => { set.delete(h); };
  }

  private emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    for (const h of (this.handlers.get(event) ?? []) as Set<Handler<ClientEvents[K]>>) {
      try { h(value); } catch (err) { queueMicrotask(() => { throw err; }); }
    }
  }

  private async token(): Promise<string> {
    const t = this.opts.token;
    return typeof t === "function" ? await t() : t;
  }

  private endpoint(): string { return this.opts.endpoints[this.next % this.opts.endpoints.length]; }

  private failover(endpoint: string): void {
    if (this.endpoint() === endpoint) this.next++;
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** Math.min(attempt, 30));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  // ---- HTTP ----

  /** One request with retries of retryable failures (when retry is set). */
  private async request<T>(method: string, path: string, opts: { body?: unknown; raw?: BodyInit; contentType?: string;
    retry?: boolean; signal?: AbortSignal; binary?: boolean } = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const endpoint = this.endpoint();
      try {
        return await this.once<T>(endpoint, method, path, opts);
      } catch (err) {
        if (!opts.retry || !retryable(err) || opts.signal?.aborted) throw err;
        if (!(err instanceof ApiError)) this.failover(endpoint);
        this.stats.retries++;
        await sleep(this.backoff(attempt), opts.signal);
        if (opts.signal?.aborted) throw err;
      }
    }
  }

  private async once<T>(endpoint: string, method: string, path: string, opts: { body?: unknown; raw?: BodyInit;
    contentType?: string; signal?: AbortSignal; binary?: boolean }): Promise<T> {
    const timeout = AbortSignal.timeout(this.opts.requestTimeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const headers: Record<string, string> = { Authorization: `Bearer ${await this.token()}` };
    let body: BodyInit | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["Content-Type"] = "application/json";
    } else if (opts.contentType) {
      headers["Content-Type"] = opts.contentType;
    }
    const resp = await this.doFetch(endpoint + path, { method, headers, body, signal });
    if (!resp.ok) {
      const text = await resp.text();
      let code = `http_${resp.status}`, message = text, field: string | undefined;
      try {
        const e = JSON.parse(text).error;
        if (e?.code) ({ code, message, field } = e);
      } catch { /* not JSON */ }
      const after = Number(resp.headers.get("Retry-After"));
      throw new ApiError(resp.status, code, message, field, Number.isFinite(after) && after > 0 ? after * 1000 : undefined);
    }
    if (opts.binary) return (await resp.blob()) as T;
    if (resp.status === 204) return undefined as T;
    return (await resp.json()) as T;
  }

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
  async send(message: Omit<SendRequest, "conversation_id"> & { conversation_id?: string }): Promise<SentMessage | ScheduledMessage> {
    if (!message.conversation_id && !message.recipient_id) {
      throw new TypeError("send: give recipient_id (a direct message) or conversation_id (a group's)");
    }
    const id = message.id ?? newMessageId();
    const entry: OutboxEntry = { id, body: { ...message, id } };
    await this.outboxStore.put(entry);
    return this.deliverEntry(entry);
  }

  private deliverEntry(entry: OutboxEntry): Promise<SentMessage | ScheduledMessage> {
    const inFlight = this.pending.get(entry.id);
    if (inFlight) return inFlight;
    const signal = this.stopper.signal;
    const p = (async () => {
      try {
        const body = { ...entry.body };
        body.conversation_id ??= await this.request<{ conversation_id: string }>("GET",
          `/v1/dm/${encodeURIComponent(body.recipient_id ?? "")}`, { retry: true, signal }).then((r) => r.conversation_id);
        const sent = await this.request<SentMessage | ScheduledMessage>("POST", "/v1/messages", { body, retry: true, signal });
        await this.outboxStore.remove(entry.id);
        this.emit("sent", sent);
        return sent;
      } catch (err) {
        if (err instanceof ApiError && !retryable(err)) {
          await this.outboxStore.remove(entry.id);
          this.emit("refused", { id: entry.id, error: err });
        }
        throw err;
      } finally {
        this.pending.delete(entry.id);
      }
    })();
    this.pending.set(entry.id, p);
    return p;
  }

  /** Messages in the outbox, not yet stored. */
  async outbox(): Promise<OutboxEntry[]> { return [...await this.outboxStore.load()]; }

  /** The conversation of the user and peer (GET /v1/dm/:peer). */
  async directConversation(peer: string): Promise<string> {
    const r = await this.request<{ conversation_id: string }>("GET", `/v1/dm/${encodeURIComponent(peer)}`, { retry: true });
    return r.conversation_id;
  }

  /** Creates a group with the other members given; you are its owner (POST /v1/conversations). */
  createGroup(title: string, memberIds: string[]): Promise<Conversation> {
    return this.request<Conversation>("POST", "/v1/conversations", { body: { title, member_ids: memberIds } });
  }

  /** A conversation with its members and their roles (GET /v1/conversations/:id). */
  conversation(id: string): Promise<Conversation> {
    return this.request<Conversation>("GET", `/v1/conversations/${encodeURIComponent(id)}`, { retry: true });
  }

  /** A page of your conversations, newest activity first (GET /v1/conversations). */
  conversations(cursor?: string, limit?: number): Promise<{ conversations: ConversationSummary[]; next_cursor?: string }> {
    const q = new URLSearchParams();
    if (cursor) q.set("cursor", cursor);
    if (limit) q.set("limit", String(limit));
    return this.request("GET", `/v1/conversations?${q}`, { retry: true });
  }

  /** A page of a conversation's history after a seq (GET /v1/conversations/:id/messages). */
  history(conversationId: string, after = 0, limit?: number): Promise<{ messages: Message[]; next_after: number; cached: boolean }> {
    const q = new URLSearchParams({ after: String(after) });
    if (limit) q.set("limit", String(limit));
    return this.request("GET", `/v1/conversations/${encodeURIComponent(conversationId)}/messages?${q}`, { retry: true });
  }

  /** Unread messages per conversation (GET /v1/unread). */
  unread(): Promise<{ conversations: Record<string, number>; total: number }> {
    return this.request("GET", "/v1/unread", { retry: true });
  }

  /** Full-text search over the user's conversations (GET /v1/search). */
  search(q: string, options: { conversationId?: string; limit?: number; cursor?: string } = {}):
    Promise<{ results: SearchHit[]; next_cursor: string | null }> {
    const p = new URLSearchParams({ q });
    if (options.conversationId) p.set("conversation_id", options.conversationId);
    if (options.limit) p.set("limit", String(options.limit));
    if (options.cursor) p.set("cursor", options.cursor);
    return this.request("GET", `/v1/search?${p}`, { retry: true });
  }

  /** The user's pending scheduled messages (GET /v1/scheduled). */
  async scheduled(): Promise<ScheduledMessage[]> {
    return (await this.request<{ scheduled: ScheduledMessage[] }>("GET", "/v1/scheduled", { retry: true })).scheduled;
  }

  /** Cancels a pending scheduled message (DELETE /v1/scheduled/:id). */
  cancelScheduled(id: string): Promise<void> {
    return this.request("DELETE", `/v1/scheduled/${encodeURIComponent(id)}`, { retry: true });
  }

  /** Starts a broadcast (POST /v1/broadcasts). Not retried: a retry would start a second one. */
  createBroadcast(request: BroadcastRequest): Promise<{ id: string; total: number; status: Broadcast["status"] }> {
    return this.request("POST", "/v1/broadcasts", { body: request });
  }

  /** A broadcast's progress (GET /v1/broadcasts/:id). */
  broadcast(id: string): Promise<Broadcast> {
    return this.request("GET", `/v1/broadcasts/${encodeURIComponent(id)}`, { retry: true });
  }

  /** Stops a broadcast at its next chunk boundary (DELETE /v1/broadcasts/:id). */
  cancelBroadcast(id: string): Promise<{ id: string; status: Broadcast["status"]; cancelling?: boolean; message?: string }> {
    return this.request("DELETE", `/v1/broadcasts/${encodeURIComponent(id)}`, { retry: true });
  }

  /** Uploads an attachment (POST /v1/attachments). */
  uploadAttachment(data: Blob | ArrayBuffer | Uint8Array, contentType: string):
    Promise<{ id: string; content_type: string; size: number; expires_at: string }> {
    return this.request("POST", "/v1/attachments", { raw: data as BodyInit, contentType });
  }

  /** Downloads an attachment (GET /v1/attachments/:id). */
  attachment(id: string): Promise<Blob> {
    return this.request("GET", `/v1/attachments/${encodeURIComponent(id)}`, { retry: true, binary: true });
  }

  /** The user's notification preferences. */
  preferences(): Promise<NotificationPreferences> {
    return this.request("GET", "/v1/me/notification-preferences", { retry: true });
  }

  /** Sets the user's notification preferences. */
  setPreferences(p: NotificationPreferences): Promise<NotificationPreferences> {
    return this.request("PUT", "/v1/me/notification-preferences", { body: p, retry: true });
  }

  /** The user's display name. */
  profile(): Promise<Profile> { return this.request("GET", "/v1/me/profile", { retry: true }); }

  /** Sets the user's display name. */
  setProfile(displayName: string): Promise<Profile> {
    return this.request("PUT", "/v1/me/profile", { body: { display_name: displayName }, retry: true });
  }

  // ---- websocket ----

  /**
   * Connects and keeps connecting until close() or a 401, and sends what
   * waits in the outbox. Events flow through on().
   */
  connect(): void {
    if (this.running) return;
    if (!this.WS) throw new Error("msgrunner: no WebSocket: pass options.WebSocket (Node 20 needs --experimental-websocket)");
    this.running = true;
    this.stopper = new AbortController();
    this.loaded ??= this.loadCursors();
    void this.loop();
    void this.flushOutbox();
  }

  /** Stops reconnecting and closes the websocket; outbox sends stop retrying. */
  close(): void {
    this.running = false;
    this.stopper.abort();
    this.ws?.close(1000);
    this.ws = null;
  }

  private async loadCursors(): Promise<void> {
    const saved = await this.cursors.load();
    for (const [id, seq] of Object.entries(saved)) {
      const c = this.conv(id);
      c.cursor = Math.max(c.cursor, seq);
    }
  }

  private async flushOutbox(): Promise<void> {
    for (const entry of await this.outboxStore.load()) {
      this.deliverEntry(entry).catch(() => { /* refused entries are emitted; the rest wait for connect() */ });
    }
  }

  private conv(id: string): ConvState {
    let c = this.convs.get(id);
    if (!c) { c = { cursor: 0, held: new Map() }; this.convs.set(id, c); }
    return c;
  }

  private async loop(): Promise<void> {
    await this.loaded;
    for (let attempt = 0; this.running; attempt++) {
      const endpoint = this.endpoint();
      this.emit("connection", { state: "connecting", endpoint });
      const { ready, error, unauthorized } = await this.session(endpoint);
      if (!this.running) break;
      if (ready) attempt = 0;
      this.stats.reconnects++;
      if (unauthorized) {
        this.running = false;
        this.emit("connection", { state: "stopped", endpoint, error: "the gateway refused the token (401)" });
        return;
      }
      this.emit("connection", { state: "offline", endpoint, error });
      this.failover(endpoint);
      await sleep(this.backoff(attempt), this.stopper.signal);
    }
    this.emit("connection", { state: "stopped" });
  }

  /** One websocket connection, until it ends. */
  private async session(endpoint: string): Promise<{ ready: boolean; error?: string; unauthorized?: boolean }> {
    let token: string;
    try { token = await this.token(); } catch (err) { return { ready: false, error: String(err) }; }
    const url = endpoint.replace(/^http/, "ws") + "/v1/ws?token=" + encodeURIComponent(token);
    return new Promise((resolve) => {
      let ready = false;
      let ws: WebSocket;
      try { ws = new this.WS!(url); } catch (err) { resolve({ ready, error: String(err) }); return; }
      this.ws = ws;
      this.resumeInFlight = false;
      this.resumeAgain = false;
      let retryTimer: ReturnType<typeof setTimeout> | undefined;
      ws.onmessage = (ev) => {
        let f: ServerFrame & { ref?: string; code?: string; message?: string };
        try { f = JSON.parse(String(ev.data)); } catch { return; }
        switch (f.type) {
          case "ready":
            ready = true;
            this.stats.connects++;
            for (const a of this.acks.splice(0)) ws.send(a);
            this.emit("connection", { state: "live", endpoint });
            this.resume(ws);
            break;
          case "resync":
            this.resume(ws);
            break;
          case "message":
            this.place(ws, f as Message);
            break;
          case "resumed":
            if (f.ref === this.resumeRef && this.resumeInFlight) {
              this.resumeInFlight = false;
              this.resumeErrors = 0;
              this.releaseHeld(this.stats.resumes);
              if (this.resumeAgain) this.resume(ws);
            }
            break;
          case "receipt":
            this.emit("receipt", f as Receipt);
            break;
          case "notification":
            this.emit("notification", f as Notification);
            break;
          case "error":
            if (f.ref && f.ref === this.resumeRef && this.resumeInFlight) {
              // The resume failed (the database was briefly away): again, later.
              this.resumeInFlight = false;
              retryTimer = setTimeout(() => this.resume(ws), this.backoff(this.resumeErrors++));
            }
            break;
        }
      };
      let opened = false, finished = false;
      const finish = (code: number, reason: string) => {
        if (finished) return;
        finished = true;
        clearTimeout(retryTimer);
        if (this.ws === ws) this.ws = null;
        // A refused upgrade ends before ready; ask the gateway why.
        if (!ready && this.running) {
          this.unauthorized(endpoint, token).then((u) => resolve({ ready, unauthorized: u, error: `closed (${code})` }));
          return;
        }
        resolve({ ready, error: reason ? `closed (${code}): ${reason}` : `closed (${code})` });
      };
      ws.onopen = () => { opened = true; };
      // Some implementations (Node 20's) fire only error, no close, when
      // the upgrade is refused.
      ws.onerror = () => { if (opened) ws.close(); else finish(1006, "connection failed"); };
      ws.onclose = (ev) => finish(ev.code, ev.reason);
    });
  }

  /** Whether the gateway refuses token (a websocket cannot see the upgrade's status). */
  private async unauthorized(endpoint: string, token: string): Promise<boolean> {
    try {
      const r = await this.doFetch(endpoint + "/v1/unread", { headers: { Authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(this.opts.requestTimeoutMs) });
      return r.status === 401;
    } catch {
      return false;
    }
  }

  /** Asks for everything after the cursors, or marks another resume wanted. */
  private resume(ws: WebSocket): void {
    if (ws.readyState !== 1) return;
    if (this.resumeInFlight) { this.resumeAgain = true; return; }
    const after: Record<string, number> = {};
    for (const [id, c] of this.convs) if (c.cursor > 0) after[id] = c.cursor;
    this.stats.resumes++;
    this.resumeRef = `resume-${this.stats.resumes}`;
    this.resumeInFlight = true;
    this.resumeAgain = false;
    ws.send(JSON.stringify({ type: "resume", ref: this.resumeRef, after }));
  }

  /** Emits, drops or holds one message frame (see the module comment). */
  private place(ws: WebSocket, m: Message): void {
    const c = this.conv(m.conversation_id);
    if (m.seq <= c.cursor) {
      this.stats.duplicates++;
    } else if (m.seq === c.cursor + 1 || m.status !== undefined) {
      // A resumed message is the next one the user may see (history the
      // user deleted and retention leave gaps no resume fills).
      this.deliver(c, m);
      this.drain(c);
    } else if (c.held.has(m.seq)) {
      this.stats.duplicates++;
    } else {
      c.held.set(m.seq, { message: m, resumesBefore: this.stats.resumes });
      this.stats.gaps++;
      this.resume(ws);
    }
  }

  /** Emits the held messages that arrived before resume number done was sent. */
  private releaseHeld(done: number): void {
    for (const c of this.convs.values()) {
      const seqs = [...c.held.entries()].filter(([, h]) => h.resumesBefore < done).map(([s]) => s).sort((a, b) => a - b);
      for (const seq of seqs) {
        const h = c.held.get(seq);
        if (!h) continue;
        c.held.delete(seq);
        if (seq <= c.cursor) { this.stats.duplicates++; continue; }
        this.deliver(c, h.message);
        this.drain(c);
      }
    }
  }

  private deliver(c: ConvState, m: Message): void {
    c.cursor = m.seq;
    for (const seq of c.held.keys()) {
      if (seq <= c.cursor) { c.held.delete(seq); this.stats.duplicates++; }
    }
    this.stats.delivered++;
    this.emit("message", m);
    Promise.resolve(this.cursors.save(m.conversation_id, m.seq)).catch(() => { /* a restart may see it again */ });
  }

  private drain(c: ConvState): void {
    for (let h = c.held.get(c.cursor + 1); h; h = c.held.get(c.cursor + 1)) {
      c.held.delete(c.cursor + 1);
      this.deliver(c, h.message);
    }
  }

  /**
   * Tells the sender a message was delivered to or read by the user. Sent
   * at once when connected, else kept and sent after the next ready. Acks
   * are idempotent: acking again is always safe.
   */
  ack(messageId: string, status: "delivered" | "read"): void {
    const frame = JSON.stringify({ type: "ack", message_id: messageId, status });
    if (this.ws && this.ws.readyState === 1) this.ws.send(frame);
    else if (this.acks.length < 10_000) this.acks.push(frame);
  }
}
