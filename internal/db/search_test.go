package db_test

import (
	"context"
	"testing"
	"time"

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

func TestSearchBacklogIsIndexedInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	a, b := uuid.New(), uuid.New()
	insert := func(content *string, cipher []byte, key *string) uuid.UUID {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		m, err := db.InsertMessage(ctx, tx, db.NewMessage{ID: uuid.New(), ConversationID: uuid.New(), SenderID: a, RecipientID: b,
			Priority: 3, Content: content, Ciphertext: cipher, KeyID: key})
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
		return m.ID
	}
	count := func(sql string, args ...any) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	words := []string{"alpha", "bravo", "charlie"}
	var plain []uuid.UUID
	for _, w := range words {
		plain = append(plain, insert(&w, nil, nil))
	}
	key := "k1"
	insert(nil, []byte("ciphertext"), &key)
	require.Equal(t, 3, count(`SELECT count(*) FROM search_backlog`), "every plaintext message waits, the encrypted one does not")

	// A message deleted before the sweep reaches it gets no entry.
	_, _, err := db.SoftDeleteMessage(ctx, pool, plain[2], a)
	require.NoError(t, err)

	taken, indexed, err := db.IndexBacklog(ctx, pool, "simple", 2)
	require.NoError(t, err)
	require.Equal(t, 2, taken)
	require.Equal(t, 1, count(`SELECT count(*) FROM search_backlog`))
	total := indexed
	taken, indexed, err = db.IndexBacklog(ctx, pool, "simple", 2)
	require.NoError(t, err)
	require.Equal(t, 1, taken, "fewer than the batch: the backlog is empty")
	total += indexed
	require.Equal(t, 2, total)
	require.Zero(t, count(`SELECT count(*) FROM search_backlog`))
	for i, id := range plain {
		want := 1
		if i == 2 {
			want = 0
		}
		require.Equal(t, want, count(`SELECT count(*) FROM message_search WHERE message_id = $1 AND document @@ to_tsquery('simple', $2)`, id, words[i]), words[i])
	}
	taken, indexed, err = db.IndexBacklog(ctx, pool, "simple", 2)
	require.NoError(t, err)
	require.Zero(t, taken+indexed)
}

// A sweep that took a message just before it was sealed must not leave a
// plaintext search entry behind: SealMessages waits for it and removes
// what it wrote.
func TestSealingWaitsForASweepHoldingTheMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	text := "secret plans"
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	m, err := db.InsertMessage(ctx, tx, db.NewMessage{ID: uuid.New(), ConversationID: uuid.New(), SenderID: uuid.New(),
		RecipientID: uuid.New(), Priority: 3, Content: &text})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	// The sweep's statement, paused before it commits.
	sweep, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = sweep.Rollback(ctx) }()
	taken, indexed, err := db.IndexBacklog(ctx, sweep, "simple", 10)
	require.NoError(t, err)
	require.Equal(t, 1, taken)
	require.Equal(t, 1, indexed)

	sealed := make(chan error, 1)
	go func() {
		seal, err := pool.Begin(ctx)
		if err != nil {
			sealed <- err
			return
		}
		defer func() { _ = seal.Rollback(ctx) }()
		if _, err := db.SealMessages(ctx, seal, "k1", []db.SealedMessage{{ID: m.ID, Ciphertext: []byte("sealed")}}); err != nil {
			sealed <- err
			return
		}
		sealed <- seal.Commit(ctx)
	}()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%DELETE FROM search_backlog%'`).Scan(&waiting))
		return waiting == 1
	}, 10*time.Second, 10*time.Millisecond, "sealing waits for the sweep holding the message")
	require.NoError(t, sweep.Commit(ctx))
	require.NoError(t, <-sealed)

	var entries int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM message_search WHERE message_id = $1`, m.ID).Scan(&entries))
	require.Zero(t, entries, "the sweep's plaintext entry was removed")
}
