package fanout_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/outbox"
)

// pendingMessages stores n messages the way the gateway does (no
// send-message job) and returns their ids.
func pendingMessages(t *testing.T, pool *pgxpool.Pool, n int) []uuid.UUID {
	t.Helper()
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(client, outbox.Config{})
	require.NoError(t, err)
	ids := make([]uuid.UUID, n)
	for i := range ids {
		res, err := ob.Send(context.Background(), pool, outbox.Message{ConversationID: uuid.New(), SenderID: uuid.New(),
			RecipientID: uuid.New(), Content: "hi", CallerPublishes: true})
		require.NoError(t, err)
		ids[i] = res.ID
	}
	return ids
}

func statusOf(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) db.MessageStatus {
	t.Helper()
	m, err := db.GetMessage(context.Background(), pool, id)
	require.NoError(t, err)
	return m.Status
}

func TestSentMarkerBatchesAndCloseMarksWhatIsQueued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	ids := pendingMessages(t, pool, 3)

	// A batch that lingers for an hour is marked only when Close flushes it.
	m := fanout.NewSentMarker(pool, fanout.MarkerConfig{Linger: time.Hour})
	for _, id := range ids {
		require.NoError(t, m.Mark(ctx, id))
	}
	time.Sleep(50 * time.Millisecond)
	for _, id := range ids {
		require.Equal(t, db.MessagePending, statusOf(t, pool, id), "still lingering")
	}
	require.NoError(t, m.Close(ctx))
	for _, id := range ids {
		require.Equal(t, db.MessageSent, statusOf(t, pool, id), "marked by Close")
	}

	// After Close, Mark still marks, in a statement of its own.
	late := pendingMessages(t, pool, 1)[0]
	require.NoError(t, m.Mark(ctx, late))
	require.Equal(t, db.MessageSent, statusOf(t, pool, late))
	require.NoError(t, m.Close(ctx), "closing twice is harmless")
}

func TestSentMarkerMarksInTheCallerWhenItsQueueIsFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	ids := pendingMessages(t, pool, 3)

	// Hold the first message's row so the marker's statement for it waits.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM messages WHERE id = $1 FOR UPDATE`, ids[0])
	require.NoError(t, err)

	// A statement timeout longer than the waits below, so the held mark
	// outlasts them even on a slow machine.
	m := fanout.NewSentMarker(pool, fanout.MarkerConfig{Linger: time.Millisecond, Queue: 1, Timeout: time.Minute})
	require.NoError(t, m.Mark(ctx, ids[0]))
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE messages SET status%'`).Scan(&waiting))
		return waiting == 1
	}, 10*time.Second, 10*time.Millisecond, "the marker's statement waits on the held row")

	require.NoError(t, m.Mark(ctx, ids[1]), "queued behind the busy marker")
	require.NoError(t, m.Mark(ctx, ids[2]), "the queue is full: marked by the caller")
	require.Equal(t, db.MessageSent, statusOf(t, pool, ids[2]))
	require.Equal(t, db.MessagePending, statusOf(t, pool, ids[1]))

	require.NoError(t, tx.Rollback(ctx))
	require.NoError(t, m.Close(ctx))
	for _, id := range ids {
		require.Equal(t, db.MessageSent, statusOf(t, pool, id))
	}
}
