package fanout_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
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
