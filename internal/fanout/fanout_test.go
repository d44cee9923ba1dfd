package fanout_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/outbox"
)

func TestRefillFromBeforeAnEditIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := dbtest.Redis(t)
	f := fanout.New(rdb, fanout.Config{Keys: fanout.Keys{Prefix: prefix}})
	conv := uuid.New()
	frame := func(seq int64, content string) fanout.MessageFrame {
		return fanout.MessageFrame{ID: uuid.New(), ConversationID: conv, Seq: seq, Content: content, CreatedAt: time.Now()}
	}

	// A reader reads the version, then the page; meanwhile message 2 is
	// deleted. Its stale page must not reach the cache.
	_, v, hit := f.Recent(ctx, conv, 0, 10)
	require.False(t, hit, "nothing cached yet")
	require.NotEmpty(t, v)
	require.NoError(t, f.Forget(ctx, conv, 2))
	require.NoError(t, f.FillRecent(ctx, conv, v, []fanout.MessageFrame{frame(1, "a"), frame(2, "secret, since deleted")}))
	_, _, hit = f.Recent(ctx, conv, 0, 10)
	require.False(t, hit, "the stale refill was refused")

	// A refill from after the change is stored.
	_, v, hit = f.Recent(ctx, conv, 0, 10)
	require.False(t, hit)
	require.NoError(t, f.FillRecent(ctx, conv, v, []fanout.MessageFrame{frame(1, "a"), frame(2, "")}))
	got, _, hit := f.Recent(ctx, conv, 0, 10)
	require.True(t, hit)
	require.Len(t, got, 2)

	// Encrypted frames are cached without content, whatever they carry.
	enc := frame(3, "plaintext that must not be cached")
	enc.Encrypted = true
	require.NoError(t, f.FillRecent(ctx, conv, v, []fanout.MessageFrame{enc}))
	got, _, hit = f.Recent(ctx, conv, 2, 10)
	require.True(t, hit)
	require.Empty(t, got[0].Content)
	require.True(t, got[0].Encrypted)
}

// A frame Redis refuses (here a cache key of the wrong type) stays pending;
// the other messages of the same round trip are published and marked sent.
func TestDeliverManyFastMarksOnlyWhatGotThrough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	rdb, prefix := dbtest.Redis(t)
	f := fanout.New(rdb, fanout.Config{Keys: fanout.Keys{Prefix: prefix}})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(client, outbox.Config{})
	require.NoError(t, err)

	var ms []db.Message
	for range 3 {
		res, err := ob.Send(ctx, pool, outbox.Message{ConversationID: uuid.New(), SenderID: uuid.New(), RecipientID: uuid.New(),
			Content: "hi", CallerPublishes: true})
		require.NoError(t, err)
		m, err := db.GetMessage(ctx, pool, res.ID)
		require.NoError(t, err)
		ms = append(ms, m)
	}
	// The recent-messages cache key of the second conversation is a string.
	keys := fanout.Keys{Prefix: prefix}
	require.NoError(t, rdb.Set(ctx, keys.Prefix+"recent:{"+ms[1].ConversationID.String()+"}", "not a sorted set", time.Minute).Err())

	n, err := f.DeliverManyFast(ctx, pool, ms)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	for i, want := range []db.MessageStatus{db.MessageSent, db.MessagePending, db.MessageSent} {
		m, err := db.GetMessage(ctx, pool, ms[i].ID)
		require.NoError(t, err)
		require.Equal(t, want, m.Status, "message %d", i)
	}

	// When nothing gets through, it says so and marks nothing.
	n, err = f.DeliverManyFast(ctx, pool, ms[1:2])
	require.ErrorIs(t, err, fanout.ErrUnavailable)
	require.Zero(t, n)
}
