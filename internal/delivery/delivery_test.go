package delivery

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

// unreachable returns a Fanout on a Redis address where nothing listens.
func unreachable(t *testing.T, prefix string) *fanout.Fanout {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	gone := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { gone.Close() })
	return fanout.New(gone, fanout.Config{Keys: fanout.Keys{Prefix: prefix}})
}

// A frame Redis refuses stays pending; the other messages of the same
// round trip are published and marked sent.
func TestDeliverMarksOnlyWhatGotThrough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	d := New(b.pool, b.fanout, Config{})
	ms := []db.Message{b.pending(t), b.pending(t), b.pending(t)}
	b.refuse(t, ms[1])

	n, err := d.DeliverMany(ctx, ms)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	for i, want := range []db.MessageStatus{db.MessageSent, db.MessagePending, db.MessageSent} {
		require.Equal(t, want, b.status(t, ms[i].ID), "message %d", i)
	}

	// When nothing gets through, it says so and marks nothing.
	n, err = d.DeliverMany(ctx, ms[1:2])
	require.ErrorIs(t, err, fanout.ErrUnavailable)
	require.Zero(t, n)

	// A message already past pending is not published again.
	again, err := db.GetMessage(ctx, b.pool, ms[0].ID)
	require.NoError(t, err)
	sent, err := d.Deliver(ctx, []db.Message{again})
	require.NoError(t, err)
	require.Equal(t, []bool{false}, sent)
}

// The fast path publishes at once and marks later; Close writes the
// marks still waiting.
func TestAfterCommitPublishesNowAndMarksInABatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	d := New(b.pool, b.fanout, Config{DeferMarks: true, Marks: MarkConfig{Linger: time.Hour}})
	m := b.pending(t)
	sub := b.rdb.Subscribe(ctx, b.fanout.Keys().UserChannel(m.RecipientID))
	defer sub.Close()
	_, err := sub.Receive(ctx)
	require.NoError(t, err)

	require.NoError(t, d.AfterCommit(ctx, m, 0))
	got, err := sub.ReceiveMessage(ctx)
	require.NoError(t, err)
	var fr fanout.MessageFrame
	require.NoError(t, json.Unmarshal([]byte(got.Payload), &fr))
	require.Equal(t, m.ID, fr.ID)
	require.Equal(t, "hi", fr.Content)
	require.Equal(t, db.MessagePending, b.status(t, m.ID), "the mark lingers")

	require.NoError(t, d.Close(ctx))
	require.Equal(t, db.MessageSent, b.status(t, m.ID), "Close wrote the mark")

	// After Close the mark is written before AfterCommit returns.
	late := b.pending(t)
	require.NoError(t, d.AfterCommit(ctx, late, 0))
	require.Equal(t, db.MessageSent, b.status(t, late.ID))
	require.NoError(t, d.Close(ctx), "closing twice is harmless")

	// Redis refusing the frame: not published, still pending.
	refused := b.pending(t)
	b.refuse(t, refused)
	err = d.AfterCommit(ctx, refused, 0)
	require.ErrorIs(t, err, ErrNotPublished)
	require.ErrorIs(t, err, fanout.ErrUnavailable)
	require.Equal(t, db.MessagePending, b.status(t, refused.ID))
}

// Without deferred marks the fast path marks before it returns.
func TestAfterCommitWithoutDeferredMarksMarksAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := New(b.pool, b.fanout, Config{})
	m := b.pending(t)
	require.NoError(t, d.AfterCommit(context.Background(), m, 0))
	require.Equal(t, db.MessageSent, b.status(t, m.ID))
}

func TestMarkerBatchesAndCloseMarksWhatIsQueued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ids := []uuid.UUID{b.pending(t).ID, b.pending(t).ID, b.pending(t).ID}

	// A batch that lingers for an hour is marked only when close flushes it.
	m := newMarker(b.pool, MarkConfig{Linger: time.Hour}, discard)
	require.NoError(t, m.mark(ctx, ids))
	require.Never(t, func() bool { return b.status(t, ids[0]) != db.MessagePending }, 50*time.Millisecond, 10*time.Millisecond,
		"still lingering")
	require.NoError(t, m.close(ctx))
	for _, id := range ids {
		require.Equal(t, db.MessageSent, b.status(t, id), "marked by close")
	}
}

func TestMarkerMarksInTheCallerWhenItsQueueIsFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ids := []uuid.UUID{b.pending(t).ID, b.pending(t).ID, b.pending(t).ID}

	// Hold the first message's row so the marker's statement for it waits.
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM messages WHERE id = $1 FOR UPDATE`, ids[0])
	require.NoError(t, err)

	// A statement timeout longer than the waits below, so the held mark
	// outlasts them even on a slow machine.
	m := newMarker(b.pool, MarkConfig{Linger: time.Millisecond, Queue: 1, Timeout: time.Minute}, discard)
	require.NoError(t, m.mark(ctx, ids[:1]))
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE messages SET status%'`).Scan(&waiting))
		return waiting == 1
	}, 10*time.Second, 10*time.Millisecond, "the marker's statement waits on the held row")

	require.NoError(t, m.mark(ctx, ids[1:]), "one queued behind the busy marker, the other marked by the caller")
	require.Equal(t, db.MessagePending, b.status(t, ids[1]))
	require.Equal(t, db.MessageSent, b.status(t, ids[2]))

	require.NoError(t, tx.Rollback(ctx))
	require.NoError(t, m.close(ctx))
	for _, id := range ids {
		require.Equal(t, db.MessageSent, b.status(t, id))
	}
}

// The sweep publishes what is pending past its age, not what is newer,
// and leaves everything for the next run while Redis is down.
func TestSweepDeliversOnlyWhatWaitedLongEnough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	old := []db.Message{b.pending(t), b.pending(t), b.pending(t)}
	_, err := b.pool.Exec(ctx, `UPDATE messages SET created_at = created_at - interval '1 minute' WHERE id = ANY($1)`,
		[]uuid.UUID{old[0].ID, old[1].ID, old[2].ID})
	require.NoError(t, err)
	fresh := b.pending(t)

	down := New(b.pool, unreachable(t, b.prefix), Config{})
	n, err := down.Sweep(ctx, 30*time.Second, 2, time.Minute)
	require.NoError(t, err, "an outage is not the sweep's failure")
	require.Zero(t, n)

	d := New(b.pool, b.fanout, Config{})
	n, err = d.Sweep(ctx, 30*time.Second, 2, time.Minute) // two pages
	require.NoError(t, err)
	require.Equal(t, 3, n)
	for _, m := range old {
		require.Equal(t, db.MessageSent, b.status(t, m.ID))
	}
	require.Equal(t, db.MessagePending, b.status(t, fresh.ID), "younger than the cutoff")
}
