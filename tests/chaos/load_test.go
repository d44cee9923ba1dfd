//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/client"
	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/outbox"
)

// world is the chat traffic of one test: pairs of users, one sending to
// the other through the gateways' HTTP API, the other connected by
// websocket, both through the Go client (package client), as a service
// would be: senders retry a send with the same id until it is
// acknowledged, moving to the next gateway when one fails; receivers
// reconnect to the next gateway, resume after every ready and resync, and
// are handed each message once and in order per conversation.
type world struct {
	t        *testing.T
	c        *cluster
	gateways []*proc
	pairs    []pair

	mu       sync.Mutex
	acked    map[uuid.UUID]uuid.UUID // message id → recipient
	seen     map[uuid.UUID]int       // message id → times handed over
	lastSeen time.Time
	seenBy   map[uuid.UUID]time.Time // recipient → when its last message was handed over

	sent        atomic.Int64 // acknowledged sends
	unavailable atomic.Int64 // 503 answers
	failures    atomic.Int64 // transport errors and other 5xx
}

type pair struct {
	sender, recipient uuid.UUID
	conversation      uuid.UUID
	from, to          *client.Client
}

func newWorld(t *testing.T, c *cluster, pairs int, gateways ...*proc) *world {
	t.Helper()
	a, err := auth.New([]byte(c.secret))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, c: c, gateways: gateways, acked: map[uuid.UUID]uuid.UUID{}, seen: map[uuid.UUID]int{}, seenBy: map[uuid.UUID]time.Time{}}
	for i := 0; i < pairs; i++ {
		p := pair{sender: uuid.New(), recipient: uuid.New()}
		p.conversation = outbox.DirectConversationID(p.sender, p.recipient)
		p.from = w.client(t, a, p.sender, i, nil)
		recipient := p.recipient
		p.to = w.client(t, a, p.recipient, i, func(m client.Message) {
			w.mu.Lock()
			w.seen[m.ID]++
			w.lastSeen = time.Now()
			w.seenBy[recipient] = w.lastSeen
			w.mu.Unlock()
		})
		w.pairs = append(w.pairs, p)
	}
	return w
}

// client returns a client of user whose endpoints start at gateway i (so
// the pairs spread over the gateways), counting the failed attempts it
// retries.
func (w *world) client(t *testing.T, a *auth.Authority, user uuid.UUID, i int, onMessage func(client.Message)) *client.Client {
	t.Helper()
	tok, err := a.Mint(user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for k := range w.gateways {
		endpoints = append(endpoints, "http://"+w.gateways[(i+k)%len(w.gateways)].addr)
	}
	cl, err := client.New(client.Config{
		Endpoints:  endpoints,
		Token:      func(context.Context) (string, error) { return tok, nil },
		MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
		OnMessage: onMessage,
		OnRetry: func(err error) {
			var apiErr *client.APIError
			if errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable {
				w.unavailable.Add(1)
			} else {
				w.failures.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// start connects every receiver, then has the senders post perPair
// messages per pair at about rate messages/s in all, for at most five
// minutes; both stop when the test ends. The channel it returns is closed
// once every message was acknowledged.
func (w *world) start(perPair int, rate float64) <-chan struct{} {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	w.t.Cleanup(cancel) // if connect fails the test
	running := w.connect(ctx)
	w.t.Cleanup(func() { cancel(); running.Wait() })
	sending := make(chan struct{})
	go func() { defer close(sending); w.send(ctx, perPair, rate) }()
	return sending
}

// connect runs every receiver until ctx ends and waits until each is
// connected; the WaitGroup it returns is done when every receiver ended.
func (w *world) connect(ctx context.Context) *sync.WaitGroup {
	running := &sync.WaitGroup{}
	for _, p := range w.pairs {
		running.Add(1)
		go func() { defer running.Done(); _ = p.to.Run(ctx) }()
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range w.pairs {
		for p.to.Stats().Connects == 0 {
			if time.Now().After(deadline) {
				w.t.Fatal("receivers not connected within 30s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return running
}

// send posts n messages per pair at about rate messages/s in all, and
// returns when each is acknowledged or ctx ends.
func (w *world) send(ctx context.Context, n int, rate float64) {
	var wg sync.WaitGroup
	perPair := time.Duration(float64(time.Second) * float64(len(w.pairs)) / rate)
	for _, p := range w.pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(perPair)
			defer tick.Stop()
			for k := 0; k < n && ctx.Err() == nil; k++ {
				w.sendOne(ctx, p)
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
}

// httpClient is the tests' own client for the admin API.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// sendOne sends one message; the client retries it with its id until it
// is acknowledged.
func (w *world) sendOne(ctx context.Context, p pair) {
	res, err := p.from.Send(ctx, client.Outgoing{ConversationID: p.conversation, RecipientID: p.recipient, Content: "chaos"})
	if err != nil {
		if ctx.Err() == nil {
			w.t.Errorf("send refused: %v", err)
		}
		return
	}
	w.mu.Lock()
	w.acked[res.ID] = p.recipient
	w.mu.Unlock()
	w.sent.Add(1)
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

// duplicates returns how many message frames the receivers' clients
// dropped as already handed over (live and in a resume, or published
// twice), and fails the test if any message was handed over twice.
func (w *world) duplicates() int64 {
	w.mu.Lock()
	for id, n := range w.seen {
		if n > 1 {
			w.t.Errorf("message %s handed over %d times", id, n)
		}
	}
	w.mu.Unlock()
	var n int64
	for _, p := range w.pairs {
		n += p.to.Stats().Duplicates
	}
	return n
}

// reconnects returns the receivers' websocket reconnections.
func (w *world) reconnects() int64 {
	var n int64
	for _, p := range w.pairs {
		n += p.to.Stats().Reconnects
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
	dups, reconnects := w.duplicates(), w.reconnects()
	w.t.Logf("FIGURES %s: messages %d acknowledged, faults: %s, lost 0, frames received twice %d (dropped by the client), jobs run more than once %d, 503 answers %d, transport failures %d, reconnects %d, recovery %.1fs",
		name, w.sent.Load(), faults, dups, rerun, w.unavailable.Load(), w.failures.Load(), reconnects, recovery.Seconds())
	fmt.Printf("FIGURES %s: acknowledged=%d faults=%q lost=0 frames_twice=%d jobs_rerun=%d http_503=%d transport_failures=%d reconnects=%d recovery_s=%.1f\n",
		name, w.sent.Load(), faults, dups, rerun, w.unavailable.Load(), w.failures.Load(), reconnects, recovery.Seconds())
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
