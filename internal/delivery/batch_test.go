package delivery

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

// Many send-message jobs at once: each gets its own message's outcome
// from the shared batches.
func TestBatchesAnswerEachJobForItsOwnMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	pending := make([]db.Message, 40)
	for i := range pending {
		pending[i] = b.pending(t)
	}
	already := b.pending(t)
	require.NoError(t, db.MarkSentRelaxed(ctx, b.pool, already.ID))
	refused := b.pending(t)
	b.refuse(t, refused)
	missing := uuid.New()

	batcher := New(b.pool, b.fanout, Config{}).NewBatcher(10 * time.Second)
	ids := []uuid.UUID{already.ID, refused.ID, missing, pending[0].ID} // pending[0] twice: two jobs, one message
	for _, m := range pending {
		ids = append(ids, m.ID)
	}
	outs := make([]Outcome, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i] = batcher.Deliver(ctx, id) }()
	}
	wg.Wait()

	require.Equal(t, Outcome{Found: true}, outs[0], "already sent: nothing to do")
	require.True(t, outs[1].Found)
	require.ErrorIs(t, outs[1].Err, ErrFrameRefused)
	require.False(t, errors.Is(outs[1].Err, fanout.ErrUnavailable), "Redis answered: not an outage to snooze through")
	require.Equal(t, Outcome{}, outs[2], "no such message")
	// The two jobs of pending[0] (outs[3] and outs[4]) both succeed: in
	// one batch they share the delivery, in two the later finds it sent.
	for _, out := range outs[3:5] {
		require.True(t, out.Found)
		require.NoError(t, out.Err)
	}
	require.True(t, outs[3].Delivered || outs[4].Delivered, "one of them delivered it")
	for i, out := range outs[5:] {
		require.Equal(t, Outcome{Found: true, Delivered: true}, out, "job %d", i)
	}
	for _, m := range pending {
		require.Equal(t, db.MessageSent, b.status(t, m.ID))
	}
	require.Equal(t, db.MessagePending, b.status(t, refused.ID), "refused: stays pending for the retry")

	// Alone in its batch, the refused message gets the same answer.
	alone := batcher.Deliver(ctx, refused.ID)
	require.ErrorIs(t, alone.Err, ErrFrameRefused)
	require.False(t, errors.Is(alone.Err, fanout.ErrUnavailable))

	// Redis gone: every job learns it is an outage (they snooze).
	require.NoError(t, b.rdb.Del(ctx, b.prefix+"recent:{"+refused.ConversationID.String()+"}").Err())
	down := New(b.pool, unreachable(t, b.prefix), Config{}).NewBatcher(time.Second)
	out := down.Deliver(ctx, refused.ID)
	require.True(t, out.Found)
	require.ErrorIs(t, out.Err, fanout.ErrUnavailable)
}
