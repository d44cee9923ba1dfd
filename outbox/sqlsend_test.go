package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/outbox"
)

// sqlSend calls msgrunner.send_message in tx.
func sqlSend(ctx context.Context, tx pgx.Tx, m outbox.Message) (outbox.Result, error) {
	var (
		res    outbox.Result
		id     *uuid.UUID
		conv   *uuid.UUID
		prio   = "normal"
		status string
	)
	if m.ID != uuid.Nil {
		id = &m.ID
	}
	if m.ConversationID != uuid.Nil {
		conv = &m.ConversationID
	}
	if m.Priority != "" {
		prio = m.Priority
	}
	err := tx.QueryRow(ctx, `SELECT id, conversation_id, seq, status, created_at
		FROM msgrunner.send_message(sender_id => $1, recipient_id => $2, content => $3, priority => $4, id => $5, conversation_id => $6)`,
		m.SenderID, m.RecipientID, m.Content, prio, id, conv).
		Scan(&res.ID, &res.ConversationID, &res.Seq, &status, &res.CreatedAt)
	res.Status = status
	return res, err
}

// tableRows returns every row of the tables a send writes, as JSON without
// the columns that hold the time of writing or River's job ids, sorted.
func tableRows(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	queries := map[string]string{
		"conversations":             `SELECT to_jsonb(c) - 'created_at' FROM conversations c`,
		"conversation_participants": `SELECT to_jsonb(p) - 'joined_at' FROM conversation_participants p`,
		"messages":                  `SELECT to_jsonb(m) - 'created_at' FROM messages m`,
		"search_backlog":            `SELECT to_jsonb(b) - 'queued_at' FROM search_backlog b`,
		"river_job":                 `SELECT to_jsonb(j) - 'id' - 'created_at' - 'scheduled_at' FROM river_job j`,
		// River's scheduled_at is the client's clock, the function's the
		// server's: both say "now".
		"river_job_due_now": `SELECT count(*) FILTER (WHERE scheduled_at <= now() AND scheduled_at > now() - interval '1 minute')::text FROM river_job`,
	}
	out := make(map[string][]string, len(queries))
	for table, q := range queries {
		rows, err := pool.Query(context.Background(), q)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err, table)
		sort.Strings(got)
		out[table] = got
	}
	return out
}

// listen collects the notifications of River's insert channel on pool's
// database.
func listen(t *testing.T, pool *pgxpool.Pool) func() []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `LISTEN "public.river_insert"`)
	require.NoError(t, err)
	var (
		mu  sync.Mutex
		got []string
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			n, err := conn.Conn().WaitForNotification(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, n.Payload)
			mu.Unlock()
		}
	}()
	stopped := false
	stop := func() []string {
		if !stopped {
			stopped = true
			cancel()
			<-done
			conn.Release()
		}
		mu.Lock()
		defer mu.Unlock()
		out := append([]string(nil), got...)
		sort.Strings(out)
		return out
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestSQLSendWritesWhatSendTxWrites sends the same messages through
// outbox.SendTx into one database and msgrunner.send_message into another,
// and compares every row the two wrote, and River's insert notifications.
func TestSQLSendWritesWhatSendTxWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	goSide, sqlSide := setup(t), setup(t)
	goHeard, sqlHeard := listen(t, goSide.pool), listen(t, sqlSide.pool)

	alice, bob, carol := uuid.New(), uuid.New(), uuid.New()
	msgs := []outbox.Message{
		{SenderID: alice, RecipientID: bob, Content: "first, which creates the conversation"},
		{SenderID: bob, RecipientID: alice, Content: "a reply", Priority: "critical"},
		{SenderID: alice, RecipientID: bob, Content: "ünïcödé ✓ and\nlines", Priority: "LOW"},
		{SenderID: carol, RecipientID: alice, Content: "another conversation", Priority: "high"},
	}
	for i := range msgs {
		msgs[i].ID = uuid.Must(uuid.NewV7())
		msgs[i].ConversationID = outbox.DirectConversationID(msgs[i].SenderID, msgs[i].RecipientID)
	}
	for _, m := range msgs {
		tx, err := goSide.pool.Begin(ctx)
		require.NoError(t, err)
		want, err := goSide.outbox.SendTx(ctx, tx, m)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))

		tx, err = sqlSide.pool.Begin(ctx)
		require.NoError(t, err)
		got, err := sqlSend(ctx, tx, m)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))

		require.Equal(t, want.ID, got.ID)
		require.Equal(t, want.ConversationID, got.ConversationID)
		require.Equal(t, want.Seq, got.Seq)
		require.Equal(t, want.Status, got.Status)
	}

	want, got := tableRows(t, goSide.pool), tableRows(t, sqlSide.pool)
	require.Len(t, want["messages"], len(msgs))
	require.Len(t, want["river_job"], 2*len(msgs))
	require.Equal(t, []string{fmt.Sprint(2 * len(msgs))}, want["river_job_due_now"])
	for table := range want {
		require.Equal(t, want[table], got[table], "rows of %s", table)
	}

	// River's insert notification reaches listening runners both ways.
	require.Eventually(t, func() bool {
		return strings.Contains(fmt.Sprint(sqlHeard()), "message-notification")
	}, 5*time.Second, 20*time.Millisecond)
	wantHeard := []string{`{"queue": "message-delivery"}`, `{"queue": "message-notification"}`}
	require.Subset(t, goHeard(), wantHeard, "River's own insert notifications")
	require.Subset(t, sqlHeard(), wantHeard)
}

// TestSQLSendWithoutIDOrConversation gives a message a time-ordered id and
// finds the direct conversation itself.
func TestSQLSendWithoutIDOrConversation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()

	var ids []uuid.UUID
	for range 3 {
		tx, err := b.pool.Begin(ctx)
		require.NoError(t, err)
		res, err := sqlSend(ctx, tx, outbox.Message{SenderID: alice, RecipientID: bob, Content: "hi"})
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
		require.Equal(t, outbox.DirectConversationID(alice, bob), res.ConversationID)
		require.EqualValues(t, 7, res.ID.Version())
		require.WithinDuration(t, time.Now(), time.Unix(res.ID.Time().UnixTime()), 5*time.Second)
		ids = append(ids, res.ID)
	}
	require.IsIncreasing(t, []string{ids[0].String(), ids[1].String(), ids[2].String()}, "UUIDv7 ids sort by time")

	for range 100 {
		a, c := uuid.New(), uuid.New()
		var got uuid.UUID
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT msgrunner.direct_conversation_id($1, $2)`, a, c).Scan(&got))
		require.Equal(t, outbox.DirectConversationID(a, c), got)
	}
}

// TestSQLSendRetryWithTheSameID answers from the stored message and writes
// nothing more.
func TestSQLSendRetryWithTheSameID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	m := outbox.Message{ID: uuid.Must(uuid.NewV7()), SenderID: uuid.New(), RecipientID: uuid.New(), Content: "once"}

	var first outbox.Result
	for i := range 3 {
		tx, err := b.pool.Begin(ctx)
		require.NoError(t, err)
		res, err := sqlSend(ctx, tx, m)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
		if i == 0 {
			first = res
			continue
		}
		require.Equal(t, first.ID, res.ID)
		require.Equal(t, first.Seq, res.Seq)
		require.True(t, first.CreatedAt.Equal(res.CreatedAt))
	}
	require.Equal(t, 1, count(t, b.pool, "messages"))
	require.Equal(t, 2, count(t, b.pool, "river_job"))
	var lastSeq int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT last_seq FROM conversations`).Scan(&lastSeq))
	require.EqualValues(t, 1, lastSeq)
}

// TestSQLSendRollbackStoresNothing: the caller's rollback takes the
// message and its jobs with it.
func TestSQLSendRollbackStoresNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = sqlSend(ctx, tx, outbox.Message{SenderID: uuid.New(), RecipientID: uuid.New(), Content: "never"})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	for _, table := range []string{"messages", "river_job", "conversations", "conversation_participants", "search_backlog"} {
		require.Zero(t, count(t, b.pool, table), table)
	}
}

// TestSQLSendConcurrentSendersGetDistinctSeqs: seqs of one conversation
// stay unique and gap-free under concurrent callers.
func TestSQLSendConcurrentSendersGetDistinctSeqs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	const workers, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := alice, bob
			if w%2 == 1 {
				from, to = bob, alice
			}
			for range each {
				errs <- pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
					_, err := sqlSend(ctx, tx, outbox.Message{SenderID: from, RecipientID: to, Content: "race"})
					return err
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var n, distinct, maxSeq int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT seq), max(seq) FROM messages`).Scan(&n, &distinct, &maxSeq))
	require.EqualValues(t, workers*each, n)
	require.EqualValues(t, n, distinct)
	require.EqualValues(t, n, maxSeq)
	require.Equal(t, 2, count(t, b.pool, "conversation_participants"))
}

// TestSQLSendRefusesWhatTheAPIRefuses: each refusal names the API's code
// and field, and the caller's transaction, rolled back, leaves nothing.
func TestSQLSendRefusesWhatTheAPIRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)

	// A conversation that exists: alice and bob's, with one message; one
	// whose id is alice and carol's but whose participants are others
	// (created through the Go outbox, which does not check the id); one
	// every participant deleted; one switched to encrypted.
	alice, bob, carol, dave := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	taken := uuid.Must(uuid.NewV7())
	send := func(m outbox.Message) {
		t.Helper()
		tx, err := b.pool.Begin(ctx)
		require.NoError(t, err)
		_, err = b.outbox.SendTx(ctx, tx, m)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
	}
	send(outbox.Message{ID: taken, ConversationID: outbox.DirectConversationID(alice, bob), SenderID: alice, RecipientID: bob, Content: "hello"})
	send(outbox.Message{ConversationID: outbox.DirectConversationID(alice, carol), SenderID: bob, RecipientID: dave, Content: "elsewhere"})
	send(outbox.Message{ConversationID: outbox.DirectConversationID(bob, carol), SenderID: bob, RecipientID: carol, Content: "gone"})
	send(outbox.Message{ConversationID: outbox.DirectConversationID(carol, dave), SenderID: carol, RecipientID: dave, Content: "sealed later"})
	_, err := b.pool.Exec(ctx, `UPDATE conversations SET deleted_at = now() WHERE id = $1`, outbox.DirectConversationID(bob, carol))
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE conversations SET encrypted = true WHERE id = $1`, outbox.DirectConversationID(carol, dave))
	require.NoError(t, err)

	before := tableRows(t, b.pool)
	ok := outbox.Message{SenderID: alice, RecipientID: bob, Content: "fine"}
	cases := []struct {
		name          string
		edit          func(m *outbox.Message)
		setting       string
		code, column  string
		messagePrefix string
	}{
		{"no sender", func(m *outbox.Message) { m.SenderID = uuid.Nil }, "", "MR400", "sender_id", "invalid_field"},
		{"no recipient", func(m *outbox.Message) { m.RecipientID = uuid.Nil }, "", "MR400", "recipient_id", "invalid_field"},
		{"to oneself", func(m *outbox.Message) { m.RecipientID = alice }, "", "MR400", "recipient_id", "invalid_field"},
		{"someone else's conversation", func(m *outbox.Message) { m.ConversationID = outbox.DirectConversationID(alice, carol) }, "", "MR403", "conversation_id", "not_participant"},
		{"conversation id of others", func(m *outbox.Message) { m.RecipientID = carol }, "", "MR403", "conversation_id", "not_participant"},
		{"deleted by everyone", func(m *outbox.Message) { m.SenderID, m.RecipientID = carol, bob }, "", "MR403", "conversation_id", "not_participant"},
		{"encrypted conversation", func(m *outbox.Message) { m.SenderID, m.RecipientID = dave, carol }, "", "MR501", "", "encryption_unavailable"},
		{"unknown priority", func(m *outbox.Message) { m.Priority = "urgent" }, "", "MR400", "priority", "invalid_field"},
		{"empty content", func(m *outbox.Message) { m.Content = "" }, "", "MR400", "content", "invalid_field"},
		{"blank content", func(m *outbox.Message) { m.Content = " \t\n\u00a0\u3000" }, "", "MR400", "content", "invalid_field"},
		{"content over the limit", func(m *outbox.Message) { m.Content = strings.Repeat("é", 6) }, "10", "MR400", "content", "invalid_field"},
		{"id of someone else's message", func(m *outbox.Message) { m.ID = taken; m.SenderID, m.RecipientID = bob, alice }, "", "MR409", "id", "id_taken"},
	}
	for _, c := range cases {
		m := ok
		c.edit(&m)
		tx, err := b.pool.Begin(ctx)
		require.NoError(t, err)
		if c.setting != "" {
			_, err = tx.Exec(ctx, `SELECT set_config('msgrunner.max_content_bytes', $1, true)`, c.setting)
			require.NoError(t, err)
		}
		_, err = sqlSend(ctx, tx, m)
		require.NoError(t, tx.Rollback(ctx))
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "%s: %v", c.name, err)
		require.Equal(t, c.code, pgErr.Code, "%s: %s", c.name, pgErr.Message)
		require.Equal(t, c.column, pgErr.ColumnName, c.name)
		require.True(t, strings.HasPrefix(pgErr.Message, c.messagePrefix+": "), "%s: %s", c.name, pgErr.Message)
	}
	require.Equal(t, before, tableRows(t, b.pool), "refused sends wrote nothing")

	// The content limit counts bytes, as the API's does.
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT set_config('msgrunner.max_content_bytes', '12', true)`)
	require.NoError(t, err)
	m := ok
	m.Content = strings.Repeat("é", 6)
	res, err := sqlSend(ctx, tx, m)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.EqualValues(t, 2, res.Seq)
	args := jobRows(t, b.pool)
	for _, j := range args {
		var a map[string]any
		require.NoError(t, json.Unmarshal(j.Args, &a))
		require.NotContains(t, string(j.Args), "é", "job args never carry content")
	}
}
