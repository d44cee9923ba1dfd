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
/** An error answer of the gateway: the API's code and field, unchanged. */
export class ApiError extends Error {
    /** HTTP status. */
    status;
    /** The API's error code (docs/api.md, Errors), e.g. invalid_field. */
    code;
    /** The request field at fault, when one is. */
    field;
    /** Milliseconds a 429 asks to wait. */
    retryAfterMs;
    constructor(status, code, message, field, retryAfterMs) {
        super(message);
        this.name = "ApiError";
        this.status = status;
        this.code = code;
        this.field = field;
        this.retryAfterMs = retryAfterMs;
    }
}
/** Whether a failed request may succeed if sent again. */
function retryable(err) {
    if (err instanceof ApiError)
        return err.status >= 500 && err.status !== 501;
    return true; // network errors and timeouts
}
/** Cursors in memory: lost when the page or process ends. */
export class MemoryCursors {
    cursors = {};
    load() { return { ...this.cursors }; }
    save(conversationId, seq) {
        if (seq > (this.cursors[conversationId] ?? 0))
            this.cursors[conversationId] = seq;
    }
}
/** An outbox in memory: it survives reconnects, not the page or process. */
export class MemoryOutbox {
    entries = new Map();
    load() { return [...this.entries.values()]; }
    put(entry) { this.entries.set(entry.id, entry); }
    remove(id) { this.entries.delete(id); }
}
/** Cursor storage in a Web Storage area (localStorage in browsers). */
export class WebStorageCursors {
    storage;
    key;
    constructor(storage, key = "msgrunner.cursors") {
        this.storage = storage;
        this.key = key;
    }
    load() {
        try {
            return JSON.parse(this.storage.getItem(this.key) ?? "{}");
        }
        catch {
            return {};
        }
    }
    save(conversationId, seq) {
        const all = this.load();
        if (seq > (all[conversationId] ?? 0)) {
            all[conversationId] = seq;
            this.storage.setItem(this.key, JSON.stringify(all));
        }
    }
}
/** Outbox storage in a Web Storage area: unsent messages survive a reload. */
export class WebStorageOutbox {
    storage;
    key;
    constructor(storage, key = "msgrunner.outbox") {
        this.storage = storage;
        this.key = key;
    }
    load() {
        try {
            return JSON.parse(this.storage.getItem(this.key) ?? "[]");
        }
        catch {
            return [];
        }
    }
    put(entry) {
        const all = this.load().filter((e) => e.id !== entry.id);
        all.push(entry);
        this.storage.setItem(this.key, JSON.stringify(all));
    }
    remove(id) {
        this.storage.setItem(this.key, JSON.stringify(this.load().filter((e) => e.id !== id)));
    }
}
/** Message id in the style of the Go outbox: UUIDv7 (time-ordered). */
export function newMessageId() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    let ms = Date.now();
    for (let i = 5; i >= 0; i--) {
        b[i] = ms % 256;
        ms = Math.floor(ms / 256);
    }
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
const sleep = (ms, signal) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
});
/** A client of the gateway for one user. */
export class MsgrunnerClient {
    opts;
    WS;
    doFetch;
    cursors;
    outboxStore;
    handlers = new Map();
    convs = new Map();
    next = 0;
    ws = null;
    running = false;
    stopper = new AbortController();
    acks = [];
    resumeRef = "";
    resumeInFlight = false;
    resumeAgain = false;
    resumeErrors = 0;
    loaded = null;
    pending = new Map();
    /** Counters of what the client recovered from. */
    stats = { delivered: 0, duplicates: 0, gaps: 0, resumes: 0, connects: 0, reconnects: 0, retries: 0 };
    constructor(options) {
        if (!options.endpoints?.length)
            throw new Error("msgrunner: endpoints needs at least one gateway URL");
        for (const e of options.endpoints) {
            const u = new URL(e);
            if (u.protocol !== "http:" && u.protocol !== "https:")
                throw new Error(`msgrunner: endpoint ${e} is not an http(s) URL`);
        }
        if (!options.token)
            throw new Error("msgrunner: token is required");
        this.opts = {
            endpoints: options.endpoints.map((e) => e.replace(/\/+$/, "")),
            token: options.token,
            minBackoffMs: options.minBackoffMs ?? 250,
            maxBackoffMs: options.maxBackoffMs ?? 10_000,
            requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
        };
        this.WS = options.WebSocket ?? globalThis.WebSocket;
        const f = options.fetch ?? globalThis.fetch;
        if (!f)
            throw new Error("msgrunner: no fetch: pass options.fetch");
        this.doFetch = f.bind(globalThis);
        this.cursors = options.cursors ?? new MemoryCursors();
        this.outboxStore = options.outbox ?? new MemoryOutbox();
    }
    /** Subscribes to an event; returns the function that unsubscribes. */
    on(event, handler) {
        let set = this.handlers.get(event);
        if (!set) {
            set = new Set();
            this.handlers.set(event, set);
        }
        const h = handler;
        set.add(h);
        return () => { set.delete(h); };
    }
    emit(event, value) {
        for (const h of (this.handlers.get(event) ?? [])) {
            try {
                h(value);
            }
            catch (err) {
                queueMicrotask(() => { throw err; });
            }
        }
    }
    async token() {
        const t = this.opts.token;
        return typeof t === "function" ? await t() : t;
    }
    endpoint() { return this.opts.endpoints[this.next % this.opts.endpoints.length]; }
    failover(endpoint) {
        if (this.endpoint() === endpoint)
            this.next++;
    }
    backoff(attempt) {
        const ceiling = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** Math.min(attempt, 30));
        return ceiling / 2 + Math.random() * (ceiling / 2);
    }
    // ---- HTTP ----
    /** One request with retries of retryable failures (when retry is set). */
    async request(method, path, opts = {}) {
        for (let attempt = 0;; attempt++) {
            const endpoint = this.endpoint();
            try {
                return await this.once(endpoint, method, path, opts);
            }
            catch (err) {
                if (!opts.retry || !retryable(err) || opts.signal?.aborted)
                    throw err;
                if (!(err instanceof ApiError))
                    this.failover(endpoint);
                this.stats.retries++;
                await sleep(this.backoff(attempt), opts.signal);
                if (opts.signal?.aborted)
                    throw err;
            }
        }
    }
    async once(endpoint, method, path, opts) {
        const timeout = AbortSignal.timeout(this.opts.requestTimeoutMs);
        const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
        const headers = { Authorization: `Bearer ${await this.token()}` };
        let body = opts.raw;
        if (opts.body !== undefined) {
            body = JSON.stringify(opts.body);
            headers["Content-Type"] = "application/json";
        }
        else if (opts.contentType) {
            headers["Content-Type"] = opts.contentType;
        }
        const resp = await this.doFetch(endpoint + path, { method, headers, body, signal });
        if (!resp.ok) {
            const text = await resp.text();
            let code = `http_${resp.status}`, message = text, field;
            try {
                const e = JSON.parse(text).error;
                if (e?.code)
                    ({ code, message, field } = e);
            }
            catch { /* not JSON */ }
            const after = Number(resp.headers.get("Retry-After"));
            throw new ApiError(resp.status, code, message, field, Number.isFinite(after) && after > 0 ? after * 1000 : undefined);
        }
        if (opts.binary)
            return (await resp.blob());
        if (resp.status === 204)
            return undefined;
        return (await resp.json());
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
    async send(message) {
        if (!message.conversation_id && !message.recipient_id) {
            throw new TypeError("send: give recipient_id (a direct message) or conversation_id (a group's)");
        }
        const id = message.id ?? newMessageId();
        const entry = { id, body: { ...message, id } };
        await this.outboxStore.put(entry);
        return this.deliverEntry(entry);
    }
    deliverEntry(entry) {
        const inFlight = this.pending.get(entry.id);
        if (inFlight)
            return inFlight;
        const signal = this.stopper.signal;
        const p = (async () => {
            try {
                const body = { ...entry.body };
                body.conversation_id ??= await this.request("GET", `/v1/dm/${encodeURIComponent(body.recipient_id ?? "")}`, { retry: true, signal }).then((r) => r.conversation_id);
                const sent = await this.request("POST", "/v1/messages", { body, retry: true, signal });
                await this.outboxStore.remove(entry.id);
                this.emit("sent", sent);
                return sent;
            }
            catch (err) {
                if (err instanceof ApiError && !retryable(err)) {
                    await this.outboxStore.remove(entry.id);
                    this.emit("refused", { id: entry.id, error: err });
                }
                throw err;
            }
            finally {
                this.pending.delete(entry.id);
            }
        })();
        this.pending.set(entry.id, p);
        return p;
    }
    /** Messages in the outbox, not yet stored. */
    async outbox() { return [...await this.outboxStore.load()]; }
    /** The conversation of the user and peer (GET /v1/dm/:peer). */
    async directConversation(peer) {
        const r = await this.request("GET", `/v1/dm/${encodeURIComponent(peer)}`, { retry: true });
        return r.conversation_id;
    }
    /** Creates a group with the other members given; you are its owner (POST /v1/conversations). */
    createGroup(title, memberIds) {
        return this.request("POST", "/v1/conversations", { body: { title, member_ids: memberIds } });
    }
    /** A conversation with its members and their roles (GET /v1/conversations/:id). */
    conversation(id) {
        return this.request("GET", `/v1/conversations/${encodeURIComponent(id)}`, { retry: true });
    }
    /** A page of your conversations, newest activity first (GET /v1/conversations). */
    conversations(cursor, limit) {
        const q = new URLSearchParams();
        if (cursor)
            q.set("cursor", cursor);
        if (limit)
            q.set("limit", String(limit));
        return this.request("GET", `/v1/conversations?${q}`, { retry: true });
    }
    /** A page of a conversation's history after a seq (GET /v1/conversations/:id/messages). */
    history(conversationId, after = 0, limit) {
        const q = new URLSearchParams({ after: String(after) });
        if (limit)
            q.set("limit", String(limit));
        return this.request("GET", `/v1/conversations/${encodeURIComponent(conversationId)}/messages?${q}`, { retry: true });
    }
    /** Unread messages per conversation (GET /v1/unread). */
    unread() {
        return this.request("GET", "/v1/unread", { retry: true });
    }
    /** Full-text search over the user's conversations (GET /v1/search). */
    search(q, options = {}) {
        const p = new URLSearchParams({ q });
        if (options.conversationId)
            p.set("conversation_id", options.conversationId);
        if (options.limit)
            p.set("limit", String(options.limit));
        if (options.cursor)
            p.set("cursor", options.cursor);
        return this.request("GET", `/v1/search?${p}`, { retry: true });
    }
    /** The user's pending scheduled messages (GET /v1/scheduled). */
    async scheduled() {
        return (await this.request("GET", "/v1/scheduled", { retry: true })).scheduled;
    }
    /** Cancels a pending scheduled message (DELETE /v1/scheduled/:id). */
    cancelScheduled(id) {
        return this.request("DELETE", `/v1/scheduled/${encodeURIComponent(id)}`, { retry: true });
    }
    /** Starts a broadcast (POST /v1/broadcasts). Not retried: a retry would start a second one. */
    createBroadcast(request) {
        return this.request("POST", "/v1/broadcasts", { body: request });
    }
    /** A broadcast's progress (GET /v1/broadcasts/:id). */
    broadcast(id) {
        return this.request("GET", `/v1/broadcasts/${encodeURIComponent(id)}`, { retry: true });
    }
    /** Stops a broadcast at its next chunk boundary (DELETE /v1/broadcasts/:id). */
    cancelBroadcast(id) {
        return this.request("DELETE", `/v1/broadcasts/${encodeURIComponent(id)}`, { retry: true });
    }
    /** Uploads an attachment (POST /v1/attachments). */
    uploadAttachment(data, contentType) {
        return this.request("POST", "/v1/attachments", { raw: data, contentType });
    }
    /** Downloads an attachment (GET /v1/attachments/:id). */
    attachment(id) {
        return this.request("GET", `/v1/attachments/${encodeURIComponent(id)}`, { retry: true, binary: true });
    }
    /** The user's notification preferences. */
    preferences() {
        return this.request("GET", "/v1/me/notification-preferences", { retry: true });
    }
    /** Sets the user's notification preferences. */
    setPreferences(p) {
        return this.request("PUT", "/v1/me/notification-preferences", { body: p, retry: true });
    }
    /** The user's display name. */
    profile() { return this.request("GET", "/v1/me/profile", { retry: true }); }
    /** Sets the user's display name. */
    setProfile(displayName) {
        return this.request("PUT", "/v1/me/profile", { body: { display_name: displayName }, retry: true });
    }
    // ---- websocket ----
    /**
     * Connects and keeps connecting until close() or a 401, and sends what
     * waits in the outbox. Events flow through on().
     */
    connect() {
        if (this.running)
            return;
        if (!this.WS)
            throw new Error("msgrunner: no WebSocket: pass options.WebSocket (Node 20 needs --experimental-websocket)");
        this.running = true;
        this.stopper = new AbortController();
        this.loaded ??= this.loadCursors();
        void this.loop();
        void this.flushOutbox();
    }
    /** Stops reconnecting and closes the websocket; outbox sends stop retrying. */
    close() {
        this.running = false;
        this.stopper.abort();
        this.ws?.close(1000);
        this.ws = null;
    }
    async loadCursors() {
        const saved = await this.cursors.load();
        for (const [id, seq] of Object.entries(saved)) {
            const c = this.conv(id);
            c.cursor = Math.max(c.cursor, seq);
        }
    }
    async flushOutbox() {
        for (const entry of await this.outboxStore.load()) {
            this.deliverEntry(entry).catch(() => { });
        }
    }
    conv(id) {
        let c = this.convs.get(id);
        if (!c) {
            c = { cursor: 0, held: new Map() };
            this.convs.set(id, c);
        }
        return c;
    }
    async loop() {
        await this.loaded;
        for (let attempt = 0; this.running; attempt++) {
            const endpoint = this.endpoint();
            this.emit("connection", { state: "connecting", endpoint });
            const { ready, error, unauthorized } = await this.session(endpoint);
            if (!this.running)
                break;
            if (ready)
                attempt = 0;
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
    async session(endpoint) {
        let token;
        try {
            token = await this.token();
        }
        catch (err) {
            return { ready: false, error: String(err) };
        }
        const url = endpoint.replace(/^http/, "ws") + "/v1/ws?token=" + encodeURIComponent(token);
        return new Promise((resolve) => {
            let ready = false;
            let ws;
            try {
                ws = new this.WS(url);
            }
            catch (err) {
                resolve({ ready, error: String(err) });
                return;
            }
            this.ws = ws;
            this.resumeInFlight = false;
            this.resumeAgain = false;
            let retryTimer;
            ws.onmessage = (ev) => {
                let f;
                try {
                    f = JSON.parse(String(ev.data));
                }
                catch {
                    return;
                }
                switch (f.type) {
                    case "ready":
                        ready = true;
                        this.stats.connects++;
                        for (const a of this.acks.splice(0))
                            ws.send(a);
                        this.emit("connection", { state: "live", endpoint });
                        this.resume(ws);
                        break;
                    case "resync":
                        this.resume(ws);
                        break;
                    case "message":
                        this.place(ws, f);
                        break;
                    case "resumed":
                        if (f.ref === this.resumeRef && this.resumeInFlight) {
                            this.resumeInFlight = false;
                            this.resumeErrors = 0;
                            this.releaseHeld(this.stats.resumes);
                            if (this.resumeAgain)
                                this.resume(ws);
                        }
                        break;
                    case "receipt":
                        this.emit("receipt", f);
                        break;
                    case "notification":
                        this.emit("notification", f);
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
            const finish = (code, reason) => {
                if (finished)
                    return;
                finished = true;
                clearTimeout(retryTimer);
                if (this.ws === ws)
                    this.ws = null;
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
            ws.onerror = () => { if (opened)
                ws.close();
            else
                finish(1006, "connection failed"); };
            ws.onclose = (ev) => finish(ev.code, ev.reason);
        });
    }
    /** Whether the gateway refuses token (a websocket cannot see the upgrade's status). */
    async unauthorized(endpoint, token) {
        try {
            const r = await this.doFetch(endpoint + "/v1/unread", { headers: { Authorization: `Bearer ${token}` },
                signal: AbortSignal.timeout(this.opts.requestTimeoutMs) });
            return r.status === 401;
        }
        catch {
            return false;
        }
    }
    /** Asks for everything after the cursors, or marks another resume wanted. */
    resume(ws) {
        if (ws.readyState !== 1)
            return;
        if (this.resumeInFlight) {
            this.resumeAgain = true;
            return;
        }
        const after = {};
        for (const [id, c] of this.convs)
            if (c.cursor > 0)
                after[id] = c.cursor;
        this.stats.resumes++;
        this.resumeRef = `resume-${this.stats.resumes}`;
        this.resumeInFlight = true;
        this.resumeAgain = false;
        ws.send(JSON.stringify({ type: "resume", ref: this.resumeRef, after }));
    }
    /** Emits, drops or holds one message frame (see the module comment). */
    place(ws, m) {
        const c = this.conv(m.conversation_id);
        if (m.seq <= c.cursor) {
            this.stats.duplicates++;
        }
        else if (m.seq === c.cursor + 1 || m.status !== undefined) {
            // A resumed message is the next one the user may see (history the
            // user deleted and retention leave gaps no resume fills).
            this.deliver(c, m);
            this.drain(c);
        }
        else if (c.held.has(m.seq)) {
            this.stats.duplicates++;
        }
        else {
            c.held.set(m.seq, { message: m, resumesBefore: this.stats.resumes });
            this.stats.gaps++;
            this.resume(ws);
        }
    }
    /** Emits the held messages that arrived before resume number done was sent. */
    releaseHeld(done) {
        for (const c of this.convs.values()) {
            const seqs = [...c.held.entries()].filter(([, h]) => h.resumesBefore < done).map(([s]) => s).sort((a, b) => a - b);
            for (const seq of seqs) {
                const h = c.held.get(seq);
                if (!h)
                    continue;
                c.held.delete(seq);
                if (seq <= c.cursor) {
                    this.stats.duplicates++;
                    continue;
                }
                this.deliver(c, h.message);
                this.drain(c);
            }
        }
    }
    deliver(c, m) {
        c.cursor = m.seq;
        for (const seq of c.held.keys()) {
            if (seq <= c.cursor) {
                c.held.delete(seq);
                this.stats.duplicates++;
            }
        }
        this.stats.delivered++;
        this.emit("message", m);
        Promise.resolve(this.cursors.save(m.conversation_id, m.seq)).catch(() => { });
    }
    drain(c) {
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
    ack(messageId, status) {
        const frame = JSON.stringify({ type: "ack", message_id: messageId, status });
        if (this.ws && this.ws.readyState === 1)
            this.ws.send(frame);
        else if (this.acks.length < 10_000)
            this.acks.push(frame);
    }
}
