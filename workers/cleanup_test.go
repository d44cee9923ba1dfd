package workers_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/attachments"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/workers"
)

func TestCleanupDeletesExactlyTheRightRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	dir := t.TempDir()
	store, err := attachments.NewDir(dir)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ws := river.NewWorkers()
	require.NoError(t, workers.Register(ws, workers.Deps{Pool: pool, Logger: logger, Attachments: store}, jobs.DefaultQueues()))
	// Only the cleanup queue runs, so the seeded "live" job stays live.
	r, err := runner.New(pool, runner.Config{Queues: jobs.DefaultQueues()[5:], Workers: ws, Logger: logger})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { _ = r.Shutdown(ctx) })

	exec := func(sql string, args ...any) {
		_, err := pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	a, b := uuid.New(), uuid.New()
	convs := map[string]uuid.UUID{"kept": uuid.New(), "half": uuid.New(), "gone": uuid.New()}
	for name, c := range convs {
		exec(`INSERT INTO conversations (id, last_seq) VALUES ($1, 10)`, c)
		exec(`INSERT INTO conversation_participants (conversation_id, user_id) VALUES ($1, $2), ($1, $3)`, c, a, b)
		if name != "kept" {
			exec(`UPDATE conversation_participants SET deleted_at = now() WHERE conversation_id = $1`, c)
			exec(`UPDATE conversations SET deleted_at = now() WHERE id = $1`, c)
		}
	}
	seq := 0
	msg := func(conv uuid.UUID, status string, age time.Duration) uuid.UUID {
		seq++
		id := uuid.New()
		exec(`INSERT INTO messages (id, conversation_id, sender_id, recipient_id, seq, content, status, created_at)
			VALUES ($1, $2, $3, $4, $5, 'x', $6, now() - $7::interval)`, id, conv, a, b, seq, status, age.String())
		return id
	}
	day := 24 * time.Hour
	for range 3 {
		msg(convs["kept"], "delivered", 100*day) // old: go
	}
	keepPending := msg(convs["kept"], "sent", 100*day) // not delivered: stays
	keepFresh := msg(convs["kept"], "read", 10*day)    // young: stays
	keepLive := msg(convs["kept"], "read", 100*day)    // a live job refers to it: stays
	exec(`INSERT INTO river_job (kind, queue, args, max_attempts, state) VALUES ('send-notification', 'message-notification', jsonb_build_object('message_id', $1::text), 3, 'available')`, keepLive.String())
	msg(convs["half"], "delivered", day)
	msg(convs["half"], "read", day)
	halfPending := msg(convs["half"], "pending", day) // not delivered: stays, and so does its conversation
	msg(convs["gone"], "read", day)
	// Groups: a group message is done once sent. One group lives on; the
	// other every member left, so it goes whole, system messages too.
	groups := map[string]uuid.UUID{"live": uuid.New(), "left": uuid.New()}
	for name, g := range groups {
		exec(`INSERT INTO conversations (id, kind, title, last_seq) VALUES ($1, 'group', 'g', 10)`, g)
		exec(`INSERT INTO conversation_participants (conversation_id, user_id, role, joined_seq) VALUES ($1, $2, 'owner', 1)`, g, a)
		if name == "left" {
			exec(`UPDATE conversation_participants SET left_seq = 3 WHERE conversation_id = $1`, g)
			exec(`UPDATE conversations SET deleted_at = now() WHERE id = $1`, g)
		}
	}
	groupMsg := func(g uuid.UUID, age time.Duration, event bool) uuid.UUID {
		seq++
		id := uuid.New()
		content, ev := any("x"), any(nil)
		if event {
			content, ev = nil, `{"type":"member_left"}`
		}
		exec(`INSERT INTO messages (id, conversation_id, sender_id, seq, content, event, status, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'sent', now() - $7::interval)`, id, g, a, seq, content, ev, age.String())
		return id
	}
	groupMsg(groups["live"], 100*day, false) // old and sent: goes
	keepGroupFresh := groupMsg(groups["live"], day, false)
	groupMsg(groups["left"], day, false)
	groupMsg(groups["left"], day, true)
	exec(`INSERT INTO conversation_keys (conversation_id, kek_id, wrapped_key) VALUES ($1, 'k1', '\x00'), ($2, 'k1', '\x00')`, convs["gone"], convs["kept"])

	files := map[string]time.Duration{"old1": -time.Hour, "old2": -2 * time.Hour, "fresh": time.Hour}
	for name, ttl := range files {
		key := a.String() + "/" + name
		_, err := store.Put(ctx, key, strings.NewReader("data"))
		require.NoError(t, err)
		exec(`INSERT INTO attachments (id, owner_id, content_type, size_bytes, storage_key, expires_at) VALUES ($1, $2, 'text/plain', 4, $3, now() + $4::interval)`,
			uuid.New(), a, key, ttl.String())
	}

	run := func(args jobs.CleanupMessagesArgs) map[string]any {
		res, err := r.Client().Insert(ctx, args, nil)
		require.NoError(t, err)
		var out map[string]any
		require.Eventually(t, func() bool {
			var state string
			var output []byte
			require.NoError(t, pool.QueryRow(ctx, `SELECT state::text, coalesce(metadata->'output', 'null') FROM river_job WHERE id = $1`, res.Job.ID).Scan(&state, &output))
			if state != "completed" {
				return false
			}
			require.NoError(t, json.Unmarshal(output, &out))
			return true
		}, 20*time.Second, 20*time.Millisecond)
		return out
	}
	count := func(pool *pgxpool.Pool, sql string) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, sql).Scan(&n))
		return n
	}
	totalMessages := count(pool, `SELECT count(*) FROM messages`)

	// Dry runs count and delete nothing.
	out := run(jobs.CleanupMessagesArgs{Type: jobs.CleanupOldMessages, RetentionDays: 90, DryRun: true})
	require.EqualValues(t, 4, out["messages"])
	out = run(jobs.CleanupMessagesArgs{Type: jobs.CleanupDeletedConversations, DryRun: true})
	require.EqualValues(t, 5, out["messages"])
	out = run(jobs.CleanupMessagesArgs{Type: jobs.CleanupExpiredAttachments, DryRun: true})
	require.EqualValues(t, 2, out["attachments"])
	require.Equal(t, totalMessages, count(pool, `SELECT count(*) FROM messages`))
	require.Equal(t, 3, count(pool, `SELECT count(*) FROM attachments`))

	// Real runs, two rows per transaction.
	out = run(jobs.CleanupMessagesArgs{Type: jobs.CleanupOldMessages, RetentionDays: 90, BatchSize: 2})
	require.EqualValues(t, 4, out["messages"])
	require.EqualValues(t, 3, out["batches"], "2 + 2, and an empty one that finds nothing left")
	// The job kept a progress record in its metadata, the last one whole.
	var progress map[string]any
	var raw []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT metadata->'progress' FROM river_job WHERE kind = 'cleanup-messages'
		AND args->>'type' = 'old_messages' AND NOT coalesce((args->>'dry_run')::bool, false)`).Scan(&raw))
	require.NoError(t, json.Unmarshal(raw, &progress))
	require.EqualValues(t, 100, progress["percentage"])
	require.Equal(t, "old_messages", progress["step"])
	require.EqualValues(t, 3, progress["currentStep"])
	require.EqualValues(t, 4, progress["data"].(map[string]any)["messages"])
	out = run(jobs.CleanupMessagesArgs{Type: jobs.CleanupDeletedConversations, BatchSize: 2})
	require.EqualValues(t, 1, out["keys_shredded"], "the deleted conversation's key is destroyed first")
	require.Equal(t, 1, count(pool, `SELECT count(*) FROM conversation_keys`), "the live conversation keeps its key")
	require.EqualValues(t, 5, out["messages"])
	require.EqualValues(t, 2, out["conversations"])
	out = run(jobs.CleanupMessagesArgs{Type: jobs.CleanupExpiredAttachments, BatchSize: 1})
	require.EqualValues(t, 2, out["attachments"])

	var left []uuid.UUID
	rows, err := pool.Query(ctx, `SELECT id FROM messages ORDER BY seq`)
	require.NoError(t, err)
	for rows.Next() {
		var id uuid.UUID
		require.NoError(t, rows.Scan(&id))
		left = append(left, id)
	}
	require.ElementsMatch(t, []uuid.UUID{keepPending, keepFresh, keepLive, halfPending, keepGroupFresh}, left)
	require.Equal(t, 3, count(pool, `SELECT count(*) FROM conversations`), "the emptied deleted conversation and the left group are gone")
	require.Equal(t, 1, count(pool, `SELECT count(*) FROM attachments`))
	_, err = os.Stat(filepath.Join(dir, a.String(), "fresh"))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, a.String(), "old1"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
