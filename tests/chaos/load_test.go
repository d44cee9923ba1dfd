//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/outbox"
)

// world is the chat traffic of one test: pairs of users, one sending to
// the other through the gateways' HTTP API, the other connected by
// websocket and counting what it receives. Senders retry a send with the
// same id until it is acknowledged (the API is idempotent by id), moving
// to the next gateway when one fails; receivers reconnect to the next
// gateway and resume after every ready and resync, as docs/api.md tells
// clients to.
type world struct {
	t        *testing.T
	c        *cluster
	gateways atomic.Pointer[[]*proc]
	pairs    []pair

	mu       sync.Mutex
	acked    map[uuid.UUID]uuid.UUID // message id → recipient
	seen     map[uuid.UUID]int       // message id → message frames received
	lastSeen time.Time
	seenBy   map[uuid.UUID]time.Time // recipient → when its last message frame arrived

	sent        atomic.Int64 // acknowledged sends
	unavailable atomic.Int64 // 503 answers
	failures    atomic.Int64 // transport errors and other 5xx
	reconnects  atomic.Int64
}

type pair struct {
	sender, recipient uuid.UUID
	senderToken       string
	recipientToken    string
	conversation      uuid.UUID
}

func newWorld(t *testing.T, c *cluster, pairs int, gateways ...*proc) *world {
	t.Helper()
	a, err := auth.New([]byte(c.secret))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, c: c, acked: map[uuid.UUID]uuid.UUID{}, seen: map[uuid.UUID]int{}, seenBy: map[uuid.UUID]time.Time{}}
	w.setGateways(gateways...)
	for i := 0; i < pairs; i++ {
		p := pair{sender: uuid.New(), recipient: uuid.New()}
		p.conversation = outbox.DirectConversationID(p.sender, p.recipient)
		if p.senderToken, err = a.Mint(p.sender, time.Hour); err != nil {
			t.Fatal(err)
		}
		if p.recipientToken, err = a.Mint(p.recipient, time.Hour); err != nil {
			t.Fatal(err)
		}
		w.pairs = append(w.pairs, p)
	}
	return w
}

// setGateways replaces the gateways senders and receivers use.
func (w *world) setGateways(gs ...*proc) { w.gateways.Store(&gs) }

func (w *world) gateway(i int) *proc {
	gs := *w.gateways.Load()
	return gs[i%len(gs)]
}

// start connects every receiver, then has the senders post perPair
// messages per pair at about rate messages/s in all, for at most five
// minutes; both stop when the test ends. The channel it returns is closed
// once every message was acknowledged.
func (w *world) start(perPair int, rate float64) <-chan struct{} {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	w.t.Cleanup(cancel)
	w.connect(ctx)
	sending := make(chan struct{})
	go func() { defer close(sending); w.send(ctx, perPair, rate) }()
	return sending
}

// connect starts every receiver; they run until ctx ends.
func (w *world) connect(ctx context.Context) {
	var ready sync.WaitGroup
	for i, p := range w.pairs {
		ready.Add(1)
		go w.receive(ctx, i, p, &ready)
	}
	ready.Wait()
}

func (w *world) receive(ctx context.Context, i int, p pair, ready *sync.WaitGroup) {
	first := true
	for attempt := i; ctx.Err() == nil; attempt++ {
		g := w.gateway(attempt)
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, _, err := websocket.Dial(dctx, "ws://"+g.addr+"/v1/ws", &websocket.DialOptions{
			HTTPHeader: http.Header{"Authorization": {"Bearer " + p.recipientToken}},
		})
		cancel()
		if err != nil {
			w.reconnects.Add(1)
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		conn.SetReadLimit(64 << 20)
		w.readFrames(ctx, conn, p.recipient, func() {
			if first {
				first = false
				ready.Done()
			}
		})
		conn.CloseNow()
		if ctx.Err() == nil {
			w.reconnects.Add(1)
			sleep(ctx, 100*time.Millisecond)
		}
	}
	if first {
		ready.Done()
	}
}

// readFrames reads until the connection ends, resuming after every ready
// and resync.
func (w *world) readFrames(ctx context.Context, conn *websocket.Conn, recipient uuid.UUID, onReady func()) {
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var f struct {
			Type string    `json:"type"`
			ID   uuid.UUID `json:"id"`
		}
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		switch f.Type {
		case "ready", "resync":
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := conn.Write(wctx, websocket.MessageText, []byte(`{"type":"resume","after":{}}`))
			cancel()
			if err != nil {
				return
			}
			if f.Type == "ready" {
				onReady()
			}
		case "message":
			w.mu.Lock()
			w.seen[f.ID]++
			w.lastSeen = time.Now()
			w.seenBy[recipient] = w.lastSeen
			w.mu.Unlock()
		}
	}
}

// send posts n messages per pair at about rate messages/s in all, and
// returns when each is acknowledged or ctx ends.
func (w *world) send(ctx context.Context, n int, rate float64) {
	var wg sync.WaitGroup
	perPair := time.Duration(float64(time.Second) * float64(len(w.pairs)) / rate)
	for i, p := range w.pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(perPair)
			defer tick.Stop()
			for k := 0; k < n && ctx.Err() == nil; k++ {
				w.sendOne(ctx, i+k, p)
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// sendOne posts one message, retrying with the same id until it is
// acknowledged.
func (w *world) sendOne(ctx context.Context, i int, p pair) {
	id := uuid.New()
	body, _ := json.Marshal(map[string]any{"id": id, "conversation_id": p.conversation, "recipient_id": p.recipient, "content": "chaos " + id.String()})
	for attempt := i; ctx.Err() == nil; attempt++ {
		g := w.gateway(attempt)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.addr+"/v1/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+p.senderToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpClient.Do(req)
		if err != nil {
			w.failures.Add(1)
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
			w.mu.Lock()
			w.acked[id] = p.recipient
			w.mu.Unlock()
			w.sent.Add(1)
			return
		case resp.StatusCode == http.StatusServiceUnavailable:
			w.unavailable.Add(1)
		case resp.StatusCode >= 500:
			w.failures.Add(1)
		default:
			w.t.Errorf("POST /v1/messages answered %d: %s", resp.StatusCode, msg)
			return
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// allSeenSince reports whether each of recipients received a message frame
// after t.
func (w *world) allSeenSince(recipients []uuid.UUID, t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range recipients {
		if !w.seenBy[r].After(t) {
			return false
		}
	}
	return true
}

// missing returns the acknowledged messages no receiver has seen yet.
func (w *world) missing() []uuid.UUID {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []uuid.UUID
	for id := range w.acked {
		if w.seen[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// waitAllSeen waits until every acknowledged message was received and
// returns how long that took.
func (w *world) waitAllSeen(within time.Duration) time.Duration {
	w.t.Helper()
	start := time.Now()
	for {
		m := w.missing()
		if len(m) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > within {
			w.t.Fatalf("%d of %d acknowledged messages never reached their recipient within %s (first: %s)", len(m), w.sent.Load(), within, m[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// duplicates returns how many message frames arrived more than once (live
// and in a resume, or published twice): receivers dedupe them by id.
func (w *world) duplicates() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.seen {
		if c > 1 {
			n += c - 1
		}
	}
	return n
}

// checkStored asserts the Postgres side: every acknowledged message is
// stored once, marked sent (or beyond), and each of its jobs exists once
// and completed. It waits up to within for the runner to finish.
func (w *world) checkStored(within time.Duration) (jobsRerun int) {
	w.t.Helper()
	w.mu.Lock()
	ids := make([]uuid.UUID, 0, len(w.acked))
	for id := range w.acked {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	c := w.c
	if got := c.scalar(`SELECT count(*) FROM messages WHERE id = ANY($1)`, ids); got != len(ids) {
		w.t.Fatalf("%d acknowledged messages, %d stored", len(ids), got)
	}
	if got := c.scalar(`SELECT count(*) FROM messages`); got != len(ids) {
		w.t.Fatalf("%d messages stored, %d acknowledged: a message was stored twice or without an answer", got, len(ids))
	}
	deadline := time.Now().Add(within)
	for {
		unsent := c.scalar(`SELECT count(*) FROM messages WHERE status = 'pending'`)
		open := c.scalar(`SELECT count(*) FROM river_job WHERE kind = ANY($1) AND state NOT IN ('completed', 'cancelled', 'discarded')`, messageKinds)
		unindexed := c.scalar(`SELECT count(*) FROM search_backlog`)
		if unsent == 0 && open == 0 && unindexed == 0 {
			break
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("after %s: %d messages still pending, %d jobs not finished (%s), %d messages not indexed; runner leases: %s",
				within, unsent, open, c.summary(`SELECT state || ' attempt ' || attempt || ' by ' || coalesce(attempted_by[array_upper(attempted_by, 1)], '-') || ' at ' || coalesce(attempted_at::text, '-'), count(*)
					FROM river_job WHERE kind = ANY($1) AND state NOT IN ('completed', 'cancelled', 'discarded') GROUP BY 1 ORDER BY 2 DESC LIMIT 5`, messageKinds),
				unindexed, c.summary(`SELECT runner_id || ' renewed ' || renewed_at::text || ' stopped ' || coalesce(stopped_at::text, '-'), 0 FROM runner_leases`))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if bad := c.scalar(`SELECT count(*) FROM river_job WHERE kind = ANY($1) AND state IN ('discarded', 'cancelled')`, messageKinds); bad != 0 {
		w.t.Fatalf("%d jobs discarded or cancelled", bad)
	}
	// One send-notification job per message: nothing enqueued twice,
	// nothing missing. No send-message job: the gateway publishes each
	// message itself, and the deliver-pending sweep is its backstop (none
	// is left pending, checked above). No index-message job either: the
	// index-pending sweep indexed every message (the backlog is empty,
	// checked above; each has its search entry, checked below).
	if got := c.scalar(`SELECT count(*) FROM river_job WHERE kind = 'send-message'`); got != 0 {
		w.t.Fatalf("%d send-message jobs for messages the gateway publishes", got)
	}
	for _, kind := range messageKinds {
		if got := c.scalar(`SELECT count(DISTINCT args->>'message_id') FROM river_job WHERE kind = $1 AND state = 'completed'`, kind); got != len(ids) {
			w.t.Fatalf("%d messages, %d with a completed %s job", len(ids), got, kind)
		}
		if got := c.scalar(`SELECT count(*) FROM river_job WHERE kind = $1`, kind); got != len(ids) {
			w.t.Fatalf("%d messages, %d %s jobs", len(ids), got, kind)
		}
	}
	if got := c.scalar(`SELECT count(*) FROM river_job WHERE kind = 'index-message'`); got != 0 {
		w.t.Fatalf("%d index-message jobs for new messages the index-pending sweep indexes", got)
	}
	if got := c.scalar(`SELECT count(*) FROM message_search WHERE message_id = ANY($1)`, ids); got != len(ids) {
		w.t.Fatalf("%d messages, %d search entries", len(ids), got)
	}
	// The in-app notification is the runner's visible effect: exactly one
	// per message, sent.
	if got := c.scalar(`SELECT count(*) FROM notifications WHERE channel = 'in_app' AND status = 'sent'`); got != len(ids) {
		w.t.Fatalf("%d messages, %d in-app notifications sent (%s)", len(ids), got,
			c.summary(`SELECT status::text, count(*) FROM notifications WHERE channel = 'in_app' GROUP BY 1`))
	}
	return c.scalar(`SELECT count(*) FROM river_job WHERE kind = ANY($1) AND (attempt > 1 OR cardinality(errors) > 0)`, messageKinds)
}

// messageKinds are the jobs every direct message sent through a gateway
// enqueues.
var messageKinds = []string{"send-notification"}

// report prints a test's figures in one line docs/reliability.md quotes.
func (w *world) report(name string, faults string, recovery time.Duration, rerun int) {
	w.t.Logf("FIGURES %s: messages %d acknowledged, faults: %s, lost 0, frames received twice %d (deduped by id), jobs run more than once %d, 503 answers %d, transport failures %d, reconnects %d, recovery %.1fs",
		name, w.sent.Load(), faults, w.duplicates(), rerun, w.unavailable.Load(), w.failures.Load(), w.reconnects.Load(), recovery.Seconds())
	fmt.Printf("FIGURES %s: acknowledged=%d faults=%q lost=0 frames_twice=%d jobs_rerun=%d http_503=%d transport_failures=%d reconnects=%d recovery_s=%.1f\n",
		name, w.sent.Load(), faults, w.duplicates(), rerun, w.unavailable.Load(), w.failures.Load(), w.reconnects.Load(), recovery.Seconds())
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
