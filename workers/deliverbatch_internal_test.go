package workers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/outbox"
)

// Many send-message jobs at once: each gets its own message's outcome
// from the shared batches.
func TestDeliveryBatchesAnswerEachJobForItsOwnMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	rdb, prefix := dbtest.Redis(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(client, outbox.Config{})
	require.NoError(t, err)
	send := func() db.Message {
		res, err := ob.Send(ctx, pool, outbox.Message{ConversationID: uuid.New(), SenderID: uuid.New(), RecipientID: uuid.New(),
			Content: "hi", CallerPublishes: true})
		require.NoError(t, err)
		m, err := db.GetMessage(ctx, pool, res.ID)
		require.NoError(t, err)
		return m
	}
	pending := make([]db.Message, 40)
	for i := range pending {
		pending[i] = send()
	}
	already := send()
	err = db.MarkSentRelaxed(ctx, pool, already.ID)
	require.NoError(t, err)
	// Redis refuses this one's cache update: its recent-messages key is a
	// string.
	refused := send()
	require.NoError(t, rdb.Set(ctx, prefix+"recent:{"+refused.ConversationID.String()+"}", "not a sorted set", time.Minute).Err())
	missing := uuid.New()

	b := &deliveryBatcher{timeout: 10 * time.Second, deps: Deps{
		Pool: pool, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Fanout: fanout.New(rdb, fanout.Config{Keys: fanout.Keys{Prefix: prefix}}),
	}}
	ids := []uuid.UUID{already.ID, refused.ID, missing, pending[0].ID} // pending[0] twice: two jobs, one message
	for _, m := range pending {
		ids = append(ids, m.ID)
	}
	outs := make([]deliveryOutcome, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i] = b.deliver(ctx, id) }()
	}
	wg.Wait()

	require.Equal(t, deliveryOutcome{found: true}, outs[0], "already sent: nothing to do")
	require.True(t, outs[1].found)
	require.ErrorIs(t, outs[1].err, errFrameRefused)
	require.False(t, errors.Is(outs[1].err, fanout.ErrUnavailable), "Redis answered: not an outage to snooze through")
	require.Equal(t, deliveryOutcome{}, outs[2], "no such message")
	// The two jobs of pending[0] (outs[3] and outs[4]) both succeed: in
	// one batch they share the delivery, in two the later finds it sent.
	for _, out := range outs[3:5] {
		require.True(t, out.found)
		require.NoError(t, out.err)
	}
	require.True(t, outs[3].delivered || outs[4].delivered, "one of them delivered it")
	for i, out := range outs[5:] {
		require.Equal(t, deliveryOutcome{found: true, delivered: true}, out, "job %d", i)
	}
	for _, m := range pending {
		got, err := db.GetMessage(ctx, pool, m.ID)
		require.NoError(t, err)
		require.Equal(t, db.MessageSent, got.Status)
	}
	got, err := db.GetMessage(ctx, pool, refused.ID)
	require.NoError(t, err)
	require.Equal(t, db.MessagePending, got.Status, "refused: stays pending for the retry")

	// Alone in its batch, the refused message gets the same answer.
	alone := b.deliver(ctx, refused.ID)
	require.ErrorIs(t, alone.err, errFrameRefused)
	require.False(t, errors.Is(alone.err, fanout.ErrUnavailable))

	// Redis gone: every job learns it is an outage (they snooze).
	require.NoError(t, rdb.Del(ctx, prefix+"recent:{"+refused.ConversationID.String()+"}").Err())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	gone := redis.NewClient(&redis.Options{Addr: closed, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { gone.Close() })
	down := &deliveryBatcher{timeout: time.Second, deps: Deps{Pool: pool,
		Fanout: fanout.New(gone, fanout.Config{Keys: fanout.Keys{Prefix: prefix}})}}
	out := down.deliver(ctx, refused.ID)
	require.True(t, out.found)
	require.ErrorIs(t, out.err, fanout.ErrUnavailable)
}
