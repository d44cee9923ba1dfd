package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
)

// connect opens a connection to url, a test database (dbtest.URL).
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func newMessage(conv, from, to uuid.UUID) db.NewMessage {
	content := "hello"
	return db.NewMessage{ID: uuid.Must(uuid.NewV7()), ConversationID: conv, SenderID: from, RecipientID: to, Priority: 3, Content: &content}
}

func countRows(t *testing.T, conn *pgx.Conn, table string) int {
	t.Helper()
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestBeginInsertMessageCommitsAndRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t, dbtest.URL(t))
	a, b, conv := uuid.New(), uuid.New(), uuid.New()

	tx, ins, err := db.BeginInsertMessage(ctx, conn, newMessage(conv, a, b))
	require.NoError(t, err)
	require.EqualValues(t, 1, ins.Seq)
	require.Equal(t, db.MessagePending, ins.Status)
	require.Equal(t, byte('T'), conn.PgConn().TxStatus(), "the transaction is open until commit")
	require.NoError(t, tx.Commit(ctx))
	require.ErrorIs(t, tx.Commit(ctx), pgx.ErrTxClosed)
	require.ErrorIs(t, tx.Rollback(ctx), pgx.ErrTxClosed, "a deferred Rollback after Commit is harmless")
	_, err = tx.Exec(ctx, "SELECT 1")
	require.ErrorIs(t, err, pgx.ErrTxClosed)
	require.Equal(t, 1, countRows(t, conn, "messages"))

	// Rolled back: the message and its seq are gone.
	tx, ins, err = db.BeginInsertMessage(ctx, conn, newMessage(conv, b, a))
	require.NoError(t, err)
	require.EqualValues(t, 2, ins.Seq)
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, byte('I'), conn.PgConn().TxStatus())
	require.Equal(t, 1, countRows(t, conn, "messages"))
	tx, ins, err = db.BeginInsertMessage(ctx, conn, newMessage(conv, b, a))
	require.NoError(t, err)
	require.EqualValues(t, 2, ins.Seq, "the rolled-back seq is handed out again")
	require.NoError(t, tx.Commit(ctx))
}

func TestBeginInsertMessageErrorsLeaveNothingOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t, dbtest.URL(t))
	a, b, conv := uuid.New(), uuid.New(), uuid.New()
	tx, _, err := db.BeginInsertMessage(ctx, conn, newMessage(conv, a, b))
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	// An outsider: refused, rolled back, the connection free for the next.
	_, _, err = db.BeginInsertMessage(ctx, conn, newMessage(conv, uuid.New(), b))
	require.ErrorIs(t, err, db.ErrNotParticipant)
	require.Equal(t, byte('I'), conn.PgConn().TxStatus())

	// A duplicate id fails inside the pipeline: a conflict, rolled back.
	dup := newMessage(conv, a, b)
	tx, _, err = db.BeginInsertMessage(ctx, conn, dup)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	_, _, err = db.BeginInsertMessage(ctx, conn, dup)
	require.ErrorIs(t, err, db.ErrConflict)
	require.Equal(t, byte('I'), conn.PgConn().TxStatus())

	var last int64
	require.NoError(t, conn.QueryRow(ctx, "SELECT last_seq FROM conversations WHERE id = $1", conv).Scan(&last))
	require.EqualValues(t, 2, last, "refused sends took no seq")
	require.Equal(t, 2, countRows(t, conn, "messages"))

	// Not on a connection already in a transaction.
	_, err = conn.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	_, _, err = db.BeginInsertMessage(ctx, conn, newMessage(conv, a, b))
	require.ErrorContains(t, err, "already in one")
	_, err = conn.Exec(ctx, "ROLLBACK")
	require.NoError(t, err)

	// A statement that fails inside the transaction makes Commit report
	// the rollback.
	tx, _, err = db.BeginInsertMessage(ctx, conn, newMessage(conv, a, b))
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "SELECT 1/0")
	require.Error(t, err)
	require.ErrorIs(t, tx.Commit(ctx), pgx.ErrTxCommitRollback)
	require.Equal(t, byte('I'), conn.PgConn().TxStatus())
	require.Equal(t, 2, countRows(t, conn, "messages"))
	_, err = tx.Begin(ctx)
	require.ErrorIs(t, err, pgx.ErrTxClosed)
}

// On a pool the connection stays with the transaction until it ends, and
// goes back to the pool outside any transaction whatever the outcome.
func TestBeginInsertMessageOnAPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: dbtest.URL(t), MaxConns: 1})
	require.NoError(t, err)
	defer pool.Close()
	a, b, conv := uuid.New(), uuid.New(), uuid.New()
	tx, ins, err := db.BeginInsertMessage(ctx, pool, newMessage(conv, a, b))
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // a failed assertion must not leave the pool's one connection held
	require.EqualValues(t, 1, ins.Seq)
	require.EqualValues(t, 1, pool.Stat().AcquiredConns(), "held by the open transaction")
	require.NoError(t, tx.Commit(ctx))
	require.EqualValues(t, 0, pool.Stat().AcquiredConns())

	_, _, err = db.BeginInsertMessage(ctx, pool, newMessage(conv, uuid.New(), b))
	require.ErrorIs(t, err, db.ErrNotParticipant)
	require.EqualValues(t, 0, pool.Stat().AcquiredConns())
	// The one connection is healthy and outside any transaction.
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM messages").Scan(&n))
	require.Equal(t, 1, n)
	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer c.Release()
	require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus())
}

// The message insert is pipelined with the seq allocation, yet still runs
// as a statement of its own: a sender that waited for the conversation's
// row lock while another transaction created the conversation sees the
// participants that transaction committed, so an outsider racing the
// first message is refused rather than made a participant.
func TestPipelinedInsertSeesParticipantsCommittedWhileWaiting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	creator, racer, watcher := connect(t, url), connect(t, url), connect(t, url)
	a, b, conv := uuid.New(), uuid.New(), uuid.New()

	tx, _, err := db.BeginInsertMessage(ctx, creator, newMessage(conv, a, b))
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		rtx, _, err := db.BeginInsertMessage(ctx, racer, newMessage(conv, uuid.New(), b))
		if err == nil {
			_ = rtx.Commit(ctx)
		}
		done <- err
	}()
	// Wait until the racer is blocked on the conversation's row lock.
	require.Eventually(t, func() bool {
		var waiting bool
		_ = watcher.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock')`).Scan(&waiting)
		return waiting
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, tx.Commit(ctx))
	require.ErrorIs(t, <-done, db.ErrNotParticipant)

	var n int
	require.NoError(t, creator.QueryRow(ctx, "SELECT count(*) FROM conversation_participants WHERE conversation_id = $1", conv).Scan(&n))
	require.Equal(t, 2, n)
}
