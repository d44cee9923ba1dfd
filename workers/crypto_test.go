package workers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/workers"
)

func TestRotateRewrapsTheConversationKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	k := func(c byte) string {
		return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{c}, keyring.KeySize))
	}
	old, err := keyring.Parse("k1:"+k(1), "k1")
	require.NoError(t, err)
	conv, id := uuid.New(), uuid.New()
	sealed, _, err := keyring.NewSealer(old).Seal(ctx, pool, conv, id, "keep me readable")
	require.NoError(t, err)

	next, err := keyring.Parse("k1:"+k(1)+",k2:"+k(2), "k2")
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ws := river.NewWorkers()
	require.NoError(t, workers.Register(ws, workers.Deps{Pool: pool, Logger: logger, Sealer: keyring.NewSealer(next)}, jobs.DefaultQueues()))
	r, err := runner.New(pool, runner.Config{Queues: jobs.DefaultQueues(), Workers: ws, Logger: logger})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { _ = r.Shutdown(ctx) })

	res, err := r.Client().Insert(ctx, jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpRotate, ConversationID: conv}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return job(t, pool, res.Job.ID).State == "completed" }, 20*time.Second, 20*time.Millisecond)
	var kek string
	require.NoError(t, pool.QueryRow(ctx, `SELECT kek_id FROM conversation_keys WHERE conversation_id = $1`, conv).Scan(&kek))
	require.Equal(t, "k2", kek)

	// Readable with the new keyring, even once k1 is retired.
	retired, err := keyring.Parse("k2:"+k(2), "k2")
	require.NoError(t, err)
	key := "conversation-key-v1"
	plain, err := keyring.NewSealer(retired).Open(ctx, pool, dbMessage(conv, id, sealed, key))
	require.NoError(t, err)
	require.Equal(t, "keep me readable", plain)
}

func dbMessage(conv, id uuid.UUID, sealed []byte, key string) db.Message {
	return db.Message{ID: id, ConversationID: conv, Ciphertext: sealed, KeyID: &key}
}
