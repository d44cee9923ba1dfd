package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/validation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testBundle struct {
	pool   *pgxpool.Pool
	outbox *outbox.Outbox
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(client, outbox.Config{MaxContentBytes: 1024})
	require.NoError(t, err)
	return &testBundle{pool: pool, outbox: ob}
}

func newMessage() outbox.Message {
	return outbox.Message{
		ConversationID: uuid.New(),
		SenderID:       uuid.New(),
		RecipientID:    uuid.New(),
		Content:        "hello there, secret plans inside",
	}
}

type jobRow struct {
	ID          int64
	Kind        string
	Queue       string
	MaxAttempts int
	Priority    int
	Args        []byte
	State       string
}

func jobRows(t *testing.T, pool *pgxpool.Pool) []jobRow {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT id, kind, queue, max_attempts, priority, args, state FROM river_job ORDER BY id`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (jobRow, error) {
		var j jobRow
		return j, r.Scan(&j.ID, &j.Kind, &j.Queue, &j.MaxAttempts, &j.Priority, &j.Args, &j.State)
	})
	require.NoError(t, err)
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestSendTxCommitWritesMessageAndItsJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	msg := newMessage()
	msg.Priority = "critical"

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	res, err := b.outbox.SendTx(ctx, tx, msg)
	require.NoError(t, err)
	// Nothing is visible outside the transaction before commit.
	require.Zero(t, count(t, b.pool, "messages"))
	require.Zero(t, count(t, b.pool, "river_job"))
	require.Zero(t, count(t, b.pool, "search_backlog"))
	require.NoError(t, tx.Commit(ctx))

	require.EqualValues(t, 1, res.Seq)
	require.Equal(t, "pending", res.Status)
	require.Equal(t, msg.ConversationID, res.ConversationID)

	stored, err := db.GetMessage(ctx, b.pool, res.ID)
	require.NoError(t, err)
	require.Equal(t, msg.Content, *stored.Content)
	require.Equal(t, msg.SenderID, stored.SenderID)
	require.Equal(t, msg.RecipientID, stored.RecipientID)
	require.EqualValues(t, 1, stored.Priority)

	parts, err := db.ListParticipants(ctx, b.pool, msg.ConversationID)
	require.NoError(t, err)
	require.ElementsMatch(t, []uuid.UUID{msg.SenderID, msg.RecipientID}, parts)

	got := jobRows(t, b.pool)
	require.Len(t, got, 2)
	want := []struct {
		kind, queue string
		attempts    int
		priority    int
	}{
		{jobs.KindSendMessage, jobs.QueueMessageDelivery, 5, 1},
		{jobs.KindSendNotification, jobs.QueueMessageNotification, 3, 1},
	}
	for i, w := range want {
		j := got[i]
		require.Equal(t, w.kind, j.Kind)
		require.Equal(t, w.queue, j.Queue)
		require.Equal(t, w.attempts, j.MaxAttempts, j.Kind)
		require.Equal(t, w.priority, j.Priority, j.Kind)
		require.Equal(t, "available", j.State)
		require.Equal(t, j.ID, res.Jobs[i].ID)
		require.NotContains(t, string(j.Args), "secret", "job args never carry message content")
		var args map[string]any
		require.NoError(t, json.Unmarshal(j.Args, &args))
		require.Equal(t, res.ID.String(), args["message_id"])
	}
}

func TestSendTxRollbackLeavesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = b.outbox.SendTx(ctx, tx, newMessage())
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))

	require.Zero(t, count(t, b.pool, "messages"))
	require.Zero(t, count(t, b.pool, "conversations"))
	require.Zero(t, count(t, b.pool, "conversation_participants"))
	require.Zero(t, count(t, b.pool, "river_job"))
	require.Zero(t, count(t, b.pool, "search_backlog"))
}

func TestSendTxCallerRowsShareTheTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `CREATE TABLE audit (note text NOT NULL)`)
	require.NoError(t, err)

	// The caller's own write and the outbox's commit or vanish together.
	// In order, not parallel: they share the database.
	for _, tc := range []struct {
		name   string
		commit bool
		rows   int // audit and message rows after the case
	}{
		{"rolled back", false, 0},
		{"committed", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := b.pool.Begin(ctx)
			require.NoError(t, err)
			_, err = tx.Exec(ctx, `INSERT INTO audit VALUES ('sent')`)
			require.NoError(t, err)
			_, err = b.outbox.SendTx(ctx, tx, newMessage())
			require.NoError(t, err)
			if tc.commit {
				require.NoError(t, tx.Commit(ctx))
			} else {
				require.NoError(t, tx.Rollback(ctx))
			}
			require.Equal(t, tc.rows, count(t, b.pool, "audit"))
			require.Equal(t, tc.rows, count(t, b.pool, "messages"))
		})
	}
	require.Equal(t, 1, count(t, b.pool, "audit"))
	require.Equal(t, 1, count(t, b.pool, "messages"))
	require.Equal(t, 2, count(t, b.pool, "river_job"))
	require.Equal(t, 1, count(t, b.pool, "search_backlog"), "the rolled-back message left no backlog row")
}

func TestInvalidInputIsTypedAndWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	cases := []struct {
		name  string
		edit  func(*outbox.Message)
		field string
	}{
		{"no conversation", func(m *outbox.Message) { m.ConversationID = uuid.Nil }, "conversation_id"},
		{"no sender", func(m *outbox.Message) { m.SenderID = uuid.Nil }, "sender_id"},
		{"self", func(m *outbox.Message) { m.RecipientID = m.SenderID }, "recipient_id"},
		{"empty content", func(m *outbox.Message) { m.Content = "" }, "content"},
		{"blank content", func(m *outbox.Message) { m.Content = " \n\t" }, "content"},
		{"content over limit", func(m *outbox.Message) { m.Content = strings.Repeat("x", 1025) }, "content"},
		{"invalid utf-8", func(m *outbox.Message) { m.Content = "bad \xff byte" }, "content"},
		{"nul", func(m *outbox.Message) { m.Content = "a\x00b" }, "content"},
		{"unknown priority", func(m *outbox.Message) { m.Priority = "urgent" }, "priority"},
		{"both bodies", func(m *outbox.Message) { m.Ciphertext, m.KeyID = []byte{1}, "k1" }, "content"},
		{"ciphertext without key", func(m *outbox.Message) { m.Content, m.Ciphertext = "", []byte{1} }, "key_id"},
		{"key without ciphertext", func(m *outbox.Message) { m.Content, m.KeyID = "", "k1" }, "ciphertext"},
	}
	// Not parallel: the counts below need every case done.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMessage()
			tc.edit(&m)

			_, err := b.outbox.Send(ctx, b.pool, m)
			var verr *validation.Error
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tc.field, verr.Field)
			require.NotContains(t, err.Error(), "secret", "errors never echo content")

			tx, err := b.pool.Begin(ctx)
			require.NoError(t, err)
			_, err = b.outbox.SendTx(ctx, tx, m)
			require.ErrorAs(t, err, &verr)
			// The transaction is still usable: validation ran before any write.
			require.NoError(t, tx.Commit(ctx))
		})
	}
	require.Zero(t, count(t, b.pool, "messages"))
	require.Zero(t, count(t, b.pool, "conversations"))
	require.Zero(t, count(t, b.pool, "river_job"))
	require.Zero(t, count(t, b.pool, "search_backlog"))
}

func TestEncryptedMessageIsNotIndexed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	m := newMessage()
	m.Content, m.Ciphertext, m.KeyID = "", []byte("sealed-bytes"), "conv-key-1"

	res, err := b.outbox.Send(ctx, b.pool, m)
	require.NoError(t, err)
	stored, err := db.GetMessage(ctx, b.pool, res.ID)
	require.NoError(t, err)
	require.Nil(t, stored.Content)
	require.Equal(t, []byte("sealed-bytes"), stored.Ciphertext)

	var kinds []string
	for _, j := range res.Jobs {
		kinds = append(kinds, j.Kind)
	}
	require.Equal(t, []string{jobs.KindSendMessage, jobs.KindSendNotification}, kinds)
	require.Zero(t, count(t, b.pool, "search_backlog"), "an encrypted message never waits for indexing")
}

func TestOnlyParticipantsSend(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	first := newMessage()
	_, err := b.outbox.Send(ctx, b.pool, first)
	require.NoError(t, err)

	// The recipient replies: fine, and the seq continues.
	reply := first
	reply.SenderID, reply.RecipientID = first.RecipientID, first.SenderID
	res, err := b.outbox.Send(ctx, b.pool, reply)
	require.NoError(t, err)
	require.EqualValues(t, 2, res.Seq)

	// An outsider cannot post into the conversation, nor address one.
	intruder := first
	intruder.SenderID = uuid.New()
	_, err = b.outbox.Send(ctx, b.pool, intruder)
	require.ErrorIs(t, err, outbox.ErrNotParticipant)
	outsider := first
	outsider.RecipientID = uuid.New()
	_, err = b.outbox.Send(ctx, b.pool, outsider)
	require.ErrorIs(t, err, outbox.ErrNotParticipant)

	require.Equal(t, 2, count(t, b.pool, "messages"))
	require.Equal(t, 4, count(t, b.pool, "river_job"))
	// The failed attempts left no gap in the sequence.
	res, err = b.outbox.Send(ctx, b.pool, first)
	require.NoError(t, err)
	require.EqualValues(t, 3, res.Seq)
}

func TestDuplicateMessageIDIsConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	m := newMessage()
	m.ID = uuid.New()
	_, err := b.outbox.Send(ctx, b.pool, m)
	require.NoError(t, err)
	_, err = b.outbox.Send(ctx, b.pool, m)
	require.ErrorIs(t, err, db.ErrConflict)
	require.Equal(t, 1, count(t, b.pool, "messages"))
}

func TestConcurrentSendersGetUniqueGapFreeSeq(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	a, c := uuid.New(), uuid.New()
	conv := uuid.New()

	const senders = 20
	seqs := make(chan int64, senders)
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := outbox.Message{ConversationID: conv, SenderID: a, RecipientID: c, Content: "hi"}
			if i%2 == 1 {
				m.SenderID, m.RecipientID = c, a
			}
			res, err := b.outbox.Send(ctx, b.pool, m)
			if err != nil {
				errs <- err
				return
			}
			seqs <- res.Seq
		}()
	}
	wg.Wait()
	close(seqs)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[int64]bool{}
	for s := range seqs {
		require.False(t, seen[s], "seq %d handed out twice", s)
		seen[s] = true
	}
	for s := int64(1); s <= senders; s++ {
		require.True(t, seen[s], "seq %d missing", s)
	}
	var maxSeq int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT last_seq FROM conversations WHERE id = $1`, conv).Scan(&maxSeq))
	require.EqualValues(t, senders, maxSeq)
}

func TestSendRollsBackOnJobInsertFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// Break job insertion after the message row is written.
	_, err := b.pool.Exec(ctx, `ALTER TABLE river_job ADD CONSTRAINT no_jobs CHECK (false) NOT VALID`)
	require.NoError(t, err)

	_, err = b.outbox.Send(ctx, b.pool, newMessage())
	require.Error(t, err)
	var verr *validation.Error
	require.False(t, errors.As(err, &verr), "a database failure is not a validation error")
	require.Zero(t, count(t, b.pool, "messages"), "no message without its jobs")
	require.Zero(t, count(t, b.pool, "conversations"))
}

func TestSendManyRefusesAConversationEveryoneDeleted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	first := newMessage()
	_, err := b.outbox.Send(ctx, b.pool, first)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE conversations SET deleted_at = now() WHERE id = $1`, first.ConversationID)
	require.NoError(t, err)

	// The single path refuses it; so must the bulk path, used by broadcasts.
	_, err = b.outbox.Send(ctx, b.pool, first)
	require.ErrorIs(t, err, outbox.ErrNotParticipant)
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // rolled back below
	_, err = b.outbox.SendManyTx(ctx, tx, []outbox.Message{newMessage(), first})
	require.ErrorIs(t, err, outbox.ErrNotParticipant)
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, 1, count(t, b.pool, "messages"))
}

// Send takes a pool, a connection or a transaction; whichever path it
// takes (BEGIN pipelined with the insert for a pool or an idle connection,
// pgx's Begin otherwise), the message and its jobs commit together, a
// refused or failed send writes nothing, and the connection is left free.
func TestSendEveryBeginnerIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		encrypt bool
		with    func(t *testing.T, b *testBundle, send func(outbox.Beginner))
	}{
		{"pool", false, func(_ *testing.T, b *testBundle, send func(outbox.Beginner)) { send(b.pool) }},
		{"pool/encrypted", true, func(_ *testing.T, b *testBundle, send func(outbox.Beginner)) { send(b.pool) }},
		{"connection", false, func(t *testing.T, b *testBundle, send func(outbox.Beginner)) {
			conn, err := b.pool.Acquire(ctx)
			require.NoError(t, err)
			defer conn.Release()
			send(conn.Conn())
			require.Equal(t, byte('I'), conn.Conn().PgConn().TxStatus())
		}},
		{"transaction", false, func(t *testing.T, b *testBundle, send func(outbox.Beginner)) {
			tx, err := b.pool.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
			send(tx)
			require.NoError(t, tx.Commit(ctx))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m := newMessage()
			m.ID = uuid.New()
			if tc.encrypt {
				m.Content, m.Ciphertext, m.KeyID = "", []byte("sealed elsewhere"), "test-key"
			}
			tc.with(t, b, func(bg outbox.Beginner) {
				res, err := b.outbox.Send(ctx, bg, m)
				require.NoError(t, err)
				require.EqualValues(t, 1, res.Seq)
				require.NotEmpty(t, res.Jobs)

				outsider := m
				outsider.ID, outsider.SenderID = uuid.Nil, uuid.New()
				_, err = b.outbox.Send(ctx, bg, outsider)
				require.ErrorIs(t, err, outbox.ErrNotParticipant)

				_, err = b.outbox.Send(ctx, bg, m)
				require.ErrorIs(t, err, db.ErrConflict, "the same id again")

				reply := m
				reply.ID, reply.SenderID, reply.RecipientID = uuid.Nil, m.RecipientID, m.SenderID
				res, err = b.outbox.Send(ctx, bg, reply)
				require.NoError(t, err)
				require.EqualValues(t, 2, res.Seq, "refused sends took no seq")
			})
			jobsPerMessage, backlog := 2, 2
			if tc.encrypt {
				backlog = 0 // encrypted messages are never indexed
			}
			require.Equal(t, 2, count(t, b.pool, "messages"))
			require.Equal(t, 2*jobsPerMessage, count(t, b.pool, "river_job"))
			require.Equal(t, backlog, count(t, b.pool, "search_backlog"))
		})
	}
}
