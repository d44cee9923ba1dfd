package db_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
)

func TestSearchEntriesFollowTheMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	conv, a, b := uuid.New(), uuid.New(), uuid.New()
	insert := func(content *string, cipher []byte, key *string) uuid.UUID {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		m, err := db.InsertMessage(ctx, tx, db.NewMessage{ID: uuid.New(), ConversationID: conv, SenderID: a, RecipientID: b,
			Priority: 3, Content: content, Ciphertext: cipher, KeyID: key})
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
		return m.ID
	}
	entries := func(id uuid.UUID) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM message_search WHERE message_id = $1`, id).Scan(&n))
		return n
	}
	text, key := "hello search", "k1"
	plain := insert(&text, nil, nil)
	sealed := insert(nil, []byte("ciphertext"), &key)

	require.NoError(t, db.SyncSearchEntry(ctx, pool, plain, "simple"))
	require.NoError(t, db.SyncSearchEntry(ctx, pool, sealed, "simple"))
	require.NoError(t, db.SyncSearchEntry(ctx, pool, uuid.New(), "simple")) // unknown: nothing to do
	require.Equal(t, 1, entries(plain))
	require.Equal(t, 0, entries(sealed), "encrypted messages are never indexed")
	require.NoError(t, db.SyncSearchEntry(ctx, pool, plain, "simple"))
	require.Equal(t, 1, entries(plain), "idempotent")

	_, _, err := db.SoftDeleteMessage(ctx, pool, plain, a)
	require.NoError(t, err)
	require.NoError(t, db.SyncSearchEntry(ctx, pool, plain, "simple"))
	require.Equal(t, 0, entries(plain))

	ok, err := db.ValidSearchLanguage(ctx, pool, "english")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = db.ValidSearchLanguage(ctx, pool, "klingon")
	require.NoError(t, err)
	require.False(t, ok)
}
