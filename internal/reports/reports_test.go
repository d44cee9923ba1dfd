package reports_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/reports"
	"github.com/msgrunner/msgrunner/validation"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func seed(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		_, err := pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO conversations (id, last_seq) VALUES ('00000000-0000-4000-8000-0000000000c1', 5)`)
	msg := func(seq int, created time.Time, status string, sent, delivered, read *time.Duration) {
		at := func(d *time.Duration, base time.Time) any {
			if d == nil {
				return nil
			}
			return base.Add(*d)
		}
		sentAt := at(sent, created)
		var deliveredAt, readAt any
		if sent != nil {
			deliveredAt = at(delivered, created.Add(*sent))
			readAt = at(read, created.Add(*sent))
		}
		exec(`INSERT INTO messages (id, conversation_id, sender_id, recipient_id, seq, content, status, created_at, sent_at, delivered_at, read_at)
			VALUES (gen_random_uuid(), '00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-00000000000a',
			'00000000-0000-4000-8000-00000000000b', $1, 'x', $2, $3, $4, $5, $6)`, seq, status, created, sentAt, deliveredAt, readAt)
	}
	d := func(v time.Duration) *time.Duration { return &v }
	msg(1, t0.Add(5*time.Minute), "read", d(100*time.Millisecond), d(time.Second), d(2*time.Second))
	msg(2, t0.Add(10*time.Minute), "delivered", d(200*time.Millisecond), d(3*time.Second), nil)
	msg(3, t0.Add(20*time.Minute), "sent", d(300*time.Millisecond), nil, nil)
	msg(4, t0.Add(30*time.Minute), "failed", nil, nil, nil)
	msg(5, t0.Add(75*time.Minute), "sent", d(time.Second), nil, nil)
	msg(6, t0.Add(-time.Hour), "sent", d(time.Second), nil, nil) // before the range

	// A group of a, b and c: its creation (a system message, left out),
	// then two messages from a. b has both delivered and the first read; c
	// has the first delivered.
	exec(`INSERT INTO conversations (id, kind, title, last_seq) VALUES ('00000000-0000-4000-8000-0000000000c2', 'group', 'g', 3)`)
	exec(`INSERT INTO conversation_participants (conversation_id, user_id, role, joined_seq, last_delivered_seq, last_read_seq) VALUES
		('00000000-0000-4000-8000-0000000000c2', '00000000-0000-4000-8000-00000000000a', 'owner', 1, 0, 0),
		('00000000-0000-4000-8000-0000000000c2', '00000000-0000-4000-8000-00000000000b', 'member', 1, 3, 2),
		('00000000-0000-4000-8000-0000000000c2', '00000000-0000-4000-8000-00000000000c', 'member', 1, 2, 0)`)
	exec(`INSERT INTO messages (id, conversation_id, sender_id, seq, event, created_at) VALUES
		(gen_random_uuid(), '00000000-0000-4000-8000-0000000000c2', '00000000-0000-4000-8000-00000000000a', 1, '{"type":"group_created"}', $1)`, t0.Add(76*time.Minute))
	for seq := 2; seq <= 3; seq++ {
		exec(`INSERT INTO messages (id, conversation_id, sender_id, seq, content, created_at) VALUES
			(gen_random_uuid(), '00000000-0000-4000-8000-0000000000c2', '00000000-0000-4000-8000-00000000000a', $1, 'x', $2)`, seq, t0.Add(80*time.Minute))
	}

	job := func(kind, state string, scheduled time.Time, waitMS, runMS int, errs ...string) {
		attempted := scheduled.Add(time.Duration(waitMS) * time.Millisecond)
		finalized := attempted.Add(time.Duration(runMS) * time.Millisecond)
		var errors []string
		for _, e := range errs {
			errors = append(errors, `{"at":"`+finalized.Format(time.RFC3339Nano)+`","attempt":1,"error":"`+e+`","trace":""}`)
		}
		var errArg any
		if len(errors) > 0 {
			errArg = errors
		}
		exec(`INSERT INTO river_job (kind, queue, args, max_attempts, state, attempt, scheduled_at, attempted_at, finalized_at, errors)
			VALUES ($1, 'q', '{}', 3, $2::river_job_state, 1, $3, $4, $5, $6::jsonb[])`, kind, state, scheduled, attempted, finalized, errArg)
	}
	job("send-message", "completed", t0, 5, 10)
	job("send-message", "completed", t0, 15, 20)
	job("send-message", "completed", t0, 25, 30)
	job("send-message", "discarded", t0, 5, 10, "redis down", "redis down\\nstack...")
	job("index-message", "cancelled", t0, 1, 1, "not implemented")

	exec(`INSERT INTO notifications (id, user_id, channel, status, created_at) VALUES
		(gen_random_uuid(), gen_random_uuid(), 'push', 'sent', $1),
		(gen_random_uuid(), gen_random_uuid(), 'push', 'sent', $1),
		(gen_random_uuid(), gen_random_uuid(), 'email', 'failed', $1)`, t0.Add(time.Minute))
	exec(`INSERT INTO batches (id, sender_id, content, status, total, processed, failed, created_at, started_at, finished_at)
		VALUES ('00000000-0000-4000-8000-0000000000b1', gen_random_uuid(), 'hi', 'completed', 1000, 1000, 2, $1, $1, $2)`,
		t0.Add(time.Minute), t0.Add(time.Minute+42*time.Second))
}

func run(t *testing.T, pool *pgxpool.Pool, name string) *reports.Report {
	t.Helper()
	r, err := reports.Run(context.Background(), pool, name, reports.Params{From: t0, To: t0.Add(2 * time.Hour)})
	require.NoError(t, err)
	return r
}

func TestReportsGiveTheKnownAnswers(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	seed(t, pool)

	r := run(t, pool, "delivery")
	require.Len(t, r.Rows, 2)
	first := r.Rows[0]
	require.Equal(t, t0, first[0].(time.Time).UTC())
	require.Equal(t, []any{int64(4), int64(3), int64(2), int64(1), int64(1)}, first[1:6])
	require.InDelta(t, 200, first[6], 0.01, "created->sent p50")
	require.InDelta(t, 298, first[8], 0.01, "created->sent p99 (interpolated)")
	require.InDelta(t, 2000, first[9], 0.01, "sent->delivered p50")
	second := r.Rows[1]
	require.Equal(t, int64(3), second[1], "one direct message and two group messages; the system message left out")
	require.InDelta(t, 1000, second[6], 0.01)
	require.Nil(t, second[9], "nothing delivered: nothing to measure")
	require.Equal(t, []any{int64(2), int64(1), int64(0)}, second[12:15], "group messages; delivered to all; read by all")
	require.Equal(t, []any{int64(0), int64(0), int64(0)}, first[12:15])

	r = run(t, pool, "jobs")
	require.Len(t, r.Rows, 2)
	idx := map[string][]any{}
	for _, row := range r.Rows {
		idx[row[0].(string)] = row
	}
	sm := idx["send-message"]
	require.Equal(t, []any{int64(3), int64(1), int64(0)}, sm[1:4])
	require.InDelta(t, 1.5, sm[4], 1e-9, "3 completed in 2 hours")
	require.InDelta(t, 0.25, sm[5], 1e-9, "failure rate")
	require.InDelta(t, 20, sm[6], 0.01, "run p50")
	require.InDelta(t, 15, sm[9], 0.01, "wait p50")
	require.Equal(t, int64(1), idx["index-message"][3])
	require.Nil(t, idx["index-message"][5], "no finished runs: no failure rate")

	r = run(t, pool, "failures")
	require.Equal(t, []any{"send-message", "redis down", int64(2)}, r.Rows[0][:3], "first lines grouped")
	require.Equal(t, "index-message", r.Rows[1][0])

	r = run(t, pool, "notifications")
	require.Equal(t, [][]any{{"email", "failed", int64(1)}, {"push", "sent", int64(2)}}, r.Rows)

	r = run(t, pool, "broadcasts")
	require.Len(t, r.Rows, 1)
	require.Equal(t, int64(1000), r.Rows[0][2])
	require.InDelta(t, 42, r.Rows[0][6], 1e-9)
}

func TestRenderings(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	seed(t, pool)
	r := run(t, pool, "delivery")

	var table bytes.Buffer
	require.NoError(t, reports.WriteTable(&table, r))
	require.Contains(t, table.String(), "CREATED")
	require.Contains(t, table.String(), "2026-11-28T10:00:00Z")

	var csvOut bytes.Buffer
	require.NoError(t, reports.WriteCSV(&csvOut, r))
	lines := strings.Split(strings.TrimSpace(csvOut.String()), "\n")
	require.Len(t, lines, 3)
	require.True(t, strings.HasPrefix(lines[0], "bucket,created,sent,delivered,read,failed,sent_p50_ms"))
	require.True(t, strings.HasSuffix(lines[2], ",,,,2,1,0"), "unmeasured percentiles are empty, the group counts follow: %s", lines[2])

	raw, err := json.Marshal(r)
	require.NoError(t, err)
	var decoded struct {
		Rows []map[string]any `json:"rows"`
	}
	require.NoError(t, json.Unmarshal(raw, &decoded))
	require.EqualValues(t, 4, decoded.Rows[0]["created"])
	require.Nil(t, decoded.Rows[1]["delivered_p50_ms"])
}

func TestBadParameters(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	cases := map[string]reports.Params{
		"from":     {To: t0},
		"to":       {From: t0, To: t0.Add(-time.Hour)},
		"interval": {From: t0, To: t0.Add(time.Hour), Interval: time.Second},
		"limit":    {From: t0, To: t0.Add(time.Hour), Limit: 5000},
	}
	for field, p := range cases {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			_, err := reports.Run(context.Background(), pool, "delivery", p)
			var ve *validation.Error
			require.ErrorAs(t, err, &ve)
			require.Equal(t, field, ve.Field)
		})
	}
	_, err := reports.Run(context.Background(), pool, "everything", reports.Params{From: t0, To: t0.Add(time.Hour)})
	require.ErrorContains(t, err, `unknown report "everything"`)
}

func TestReportsReachIntoTheHistoryRiverPruned(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	seed(t, pool) // live jobs finish at t0
	ctx := context.Background()
	// Two rolled-up hours from before anything River still holds.
	_, err := pool.Exec(ctx, `INSERT INTO job_stats (kind, queue, hour, completed, discarded, cancelled, retried, run_p50_ms, wait_p50_ms) VALUES
		('send-message', 'q', $1, 10, 2, 0, 1, 100, 10),
		('send-message', 'q', $2, 30, 0, 1, 0, 200, 20)`, t0.Add(-3*time.Hour), t0.Add(-2*time.Hour))
	require.NoError(t, err)
	// A failure archived from a job River has deleted.
	_, err = pool.Exec(ctx, `INSERT INTO failed_jobs (job_id, kind, queue, args, errors, attempt, max_attempts, created_at, finalized_at)
		VALUES (999999, 'batch-send', 'q', '{}', ARRAY['{"at":"`+t0.Add(-150*time.Minute).Format(time.RFC3339)+`","attempt":3,"error":"pruned but remembered","trace":""}'::jsonb], 3, 3, $1, $1)`,
		t0.Add(-150*time.Minute))
	require.NoError(t, err)

	r, err := reports.Run(ctx, pool, "jobs", reports.Params{From: t0.Add(-4 * time.Hour), To: t0.Add(-time.Hour)})
	require.NoError(t, err)
	require.Contains(t, r.Note, "job_stats")
	require.Len(t, r.Rows, 1)
	row := r.Rows[0]
	require.Equal(t, []any{"send-message", int64(40), int64(2), int64(1)}, row[:4])
	require.InDelta(t, 175, row[6], 0.01, "run p50 weighted by completed: (10·100 + 30·200) / 40")

	r, err = reports.Run(ctx, pool, "failures", reports.Params{From: t0.Add(-4 * time.Hour), To: t0.Add(-time.Hour)})
	require.NoError(t, err)
	require.Equal(t, []any{"batch-send", "pruned but remembered", int64(1)}, r.Rows[0][:3])
}
