package gateway_test

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
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	msgclient "github.com/msgrunner/msgrunner/client"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/outbox"
)

// received records what a client's OnMessage was handed.
type received struct {
	mu   sync.Mutex
	seqs map[uuid.UUID][]int64 // conversation → seqs in the order handed over
	ids  map[uuid.UUID]int     // message id → times handed over
}

func newReceived() *received {
	return &received{seqs: map[uuid.UUID][]int64{}, ids: map[uuid.UUID]int{}}
}

func (r *received) add(m msgclient.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs[m.ConversationID] = append(r.seqs[m.ConversationID], m.Seq)
	r.ids[m.ID]++
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

// inOrderOnce checks that every conversation was handed over as 1, 2, 3,
// ... with nothing twice and nothing skipped.
func (r *received) inOrderOnce(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for conv, seqs := range r.seqs {
		for i, s := range seqs {
			require.EqualValues(t, i+1, s, "conversation %s handed over as %v", conv, seqs)
		}
	}
	for id, n := range r.ids {
		require.Equal(t, 1, n, "message %s handed over %d times", id, n)
	}
}

// newClient returns a client of user on endpoints, recording its messages
// in rec (when not nil).
func (b *bundle) newClient(t *testing.T, user uuid.UUID, rec *received, endpoints ...string) *msgclient.Client {
	t.Helper()
	tok := b.token(t, user)
	cfg := msgclient.Config{
		Endpoints:  endpoints,
		Token:      func(context.Context) (string, error) { return tok, nil },
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		RequestTimeout: 3 * time.Second,
	}
	if rec != nil {
		cfg.OnMessage = rec.add
	}
	c, err := msgclient.New(cfg)
	require.NoError(t, err)
	return c
}

// runClient runs c until the test ends, and returns once it is connected.
func runClient(t *testing.T, c *msgclient.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	require.Eventually(t, func() bool { return c.Stats().Connects > 0 }, 10*time.Second, 10*time.Millisecond)
}

// TestClientEveryMessageOnceInOrderThroughFaults sends 1,000 messages
// from 10 senders to 10 receivers through Go clients, while the gateway
// node most of them use is cut off mid-stream (every connection to it
// dropped, new ones refused) and Redis is cut off from every part: each
// receiver is handed every message exactly once, in seq order per
// conversation, and the database holds each message once.
func TestClientEveryMessageOnceInOrderThroughFaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fronts := []*dbtest.Proxy{dbtest.NewProxy(t, b.nodes[0].srv.Addr()), dbtest.NewProxy(t, b.nodes[1].srv.Addr())}
	endpoints := []string{"http://" + fronts[0].Addr(), "http://" + fronts[1].Addr()}

	const pairs, each = 10, 100
	type pair struct {
		from, to *msgclient.Client
		bob      uuid.UUID
		rec      *received
	}
	var ps []pair
	for range pairs {
		alice, bob := uuid.New(), uuid.New()
		rec := newReceived()
		p := pair{from: b.newClient(t, alice, nil, endpoints...), to: b.newClient(t, bob, rec, endpoints...), bob: bob, rec: rec}
		runClient(t, p.to)
		ps = append(ps, p)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, pairs)
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				if _, err := p.from.Send(ctx, msgclient.Outgoing{RecipientID: p.bob, Content: fmt.Sprintf("message %d", k)}); err != nil {
					errs <- err
					return
				}
				acked.Add(1)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	// Mid-stream: the first gateway is cut off for a second, then Redis.
	require.Eventually(t, func() bool { return acked.Load() > pairs*each/5 }, time.Minute, 5*time.Millisecond)
	fronts[0].Sever()
	time.Sleep(time.Second)
	fronts[0].Restore()
	require.Eventually(t, func() bool { return acked.Load() > pairs*each/2 }, time.Minute, 5*time.Millisecond)
	b.redisProxy.Sever()
	time.Sleep(time.Second)
	b.redisProxy.Restore()

	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, pairs*each, acked.Load())
	require.Equal(t, pairs*each, b.count(t, `SELECT count(*) FROM messages`), "retries stored nothing twice")

	var stats msgclient.Stats
	for _, p := range ps {
		require.Eventually(t, func() bool { return p.rec.count() == each }, time.Minute, 20*time.Millisecond,
			"a receiver got %d of %d", p.rec.count(), each)
		p.rec.inOrderOnce(t)
		s := p.to.Stats()
		stats.Duplicates += s.Duplicates
		stats.Gaps += s.Gaps
		stats.Reconnects += s.Reconnects
		stats.Retries += p.from.Stats().Retries
	}
	t.Logf("FIGURES client faults: %d messages handed over once in order; dropped duplicates %d, gaps held %d, reconnects %d, send retries %d",
		pairs*each, stats.Duplicates, stats.Gaps, stats.Reconnects, stats.Retries)
}

// TestClientHoldsAMessageAheadOfItsConversation: a live message whose
// predecessors have not arrived is held while a resume fetches them, and
// the conversation is handed over in order.
func TestClientHoldsAMessageAheadOfItsConversation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	rec := newReceived()
	c := b.newClient(t, bob, rec, b.nodes[0].base)
	runClient(t, c)

	// Seqs 1 and 2 are written without being published (the backstop
	// publishes them two seconds later); seq 3 is published at once.
	conv := outbox.DirectConversationID(alice, bob)
	ob := b.writer(t)
	for range 2 {
		_, err := ob.Send(context.Background(), b.pool, outbox.Message{
			ConversationID: conv, SenderID: alice, RecipientID: bob, Content: "quiet", CallerPublishes: true,
		})
		require.NoError(t, err)
	}
	status, body := b.post(t, 0, b.token(t, alice), msgBody(conv, bob, "loud"))
	require.Equal(t, http.StatusCreated, status, "%v", body)

	require.Eventually(t, func() bool { return rec.count() == 3 }, 10*time.Second, 10*time.Millisecond)
	rec.inOrderOnce(t)
	require.GreaterOrEqual(t, c.Stats().Gaps, int64(1), "seq 3 arrived ahead of 1 and 2")
	// The backstop's late frames for 1 and 2 are dropped as duplicates.
	require.Eventually(t, func() bool { return c.Stats().Duplicates >= 2 }, 10*time.Second, 20*time.Millisecond)
	rec.inOrderOnce(t)
}

// TestClientSendWhileOffline: a send made while no gateway answers is
// retried with its id until one does, and stored once; a refused send is
// returned at once with the API's code and never retried.
func TestClientSendWhileOffline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	front := dbtest.NewProxy(t, b.nodes[0].srv.Addr())
	alice, bob := uuid.New(), uuid.New()
	c := b.newClient(t, alice, nil, "http://"+front.Addr())

	conv := outbox.DirectConversationID(alice, bob)
	front.Sever()
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), msgclient.Outgoing{ConversationID: conv, RecipientID: bob, Content: "from a tunnel"})
		sent <- err
	}()
	time.Sleep(700 * time.Millisecond)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM messages`))
	front.Restore()
	require.NoError(t, <-sent)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM messages`))
	require.Positive(t, c.Stats().Retries)

	before := c.Stats().Retries
	_, err := c.Send(context.Background(), msgclient.Outgoing{ConversationID: conv, RecipientID: bob, Content: "   "})
	var apiErr *msgclient.APIError
	require.True(t, errors.As(err, &apiErr), "%v", err)
	require.Equal(t, http.StatusBadRequest, apiErr.Status)
	require.Equal(t, "invalid_field", apiErr.Code)
	require.Equal(t, "content", apiErr.Field)
	require.Equal(t, before, c.Stats().Retries, "a 4xx is never retried")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM messages`))
}

// TestClientStopsOnUnauthorized: Run returns ErrUnauthorized for a token
// the gateway refuses instead of reconnecting forever.
func TestClientStopsOnUnauthorized(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, err := msgclient.New(msgclient.Config{
		Endpoints: []string{b.nodes[0].base},
		Token:     func(context.Context) (string, error) { return "not-a-token", nil },
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.ErrorIs(t, c.Run(ctx), msgclient.ErrUnauthorized)
}

// writer returns an outbox writing to the bundle's database.
func (b *bundle) writer(t *testing.T) *outbox.Outbox {
	t.Helper()
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(rc, outbox.Config{})
	require.NoError(t, err)
	return ob
}

// The Go client creates a group, sends to it, and its members' clients
// are handed the group's messages (the creation first) in order, once.
func TestClientGroupConversation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	rec := newReceived()
	ac := b.newClient(t, alice, nil, b.nodes[0].base)
	bc := b.newClient(t, bob, rec, b.nodes[1].base)
	runClient(t, bc)
	ctx := context.Background()

	g, err := ac.CreateGroup(ctx, "book club", []uuid.UUID{bob})
	require.NoError(t, err)
	require.Equal(t, "owner", g.Role)
	require.Len(t, g.Members, 2)
	for k := range 5 {
		sent, err := ac.Send(ctx, msgclient.Outgoing{ConversationID: g.ID, Content: fmt.Sprintf("chapter %d", k+1)})
		require.NoError(t, err)
		require.EqualValues(t, k+2, sent.Seq)
	}
	require.Eventually(t, func() bool { return rec.count() == 6 }, 10*time.Second, 10*time.Millisecond)
	rec.inOrderOnce(t)
	seen, err := bc.Group(ctx, g.ID)
	require.NoError(t, err)
	require.Equal(t, "member", seen.Role)
	require.EqualValues(t, 6, seen.LastSeq)
}
