package admincli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
)

func TestJobsAndQueueCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	insert := func(state string) int64 {
		var id int64
		require.NoError(t, conn.QueryRow(ctx, `
			INSERT INTO river_job (kind, queue, args, max_attempts, state, attempt, attempted_at, finalized_at, errors)
			VALUES ('send-message', 'message-delivery', '{"message_id":"00000000-0000-4000-8000-000000000001"}', 5, $1::river_job_state,
				1, now(), CASE WHEN $1 IN ('discarded','completed') THEN now() END,
				CASE WHEN $1 = 'discarded' THEN ARRAY['{"at":"2026-01-01T00:00:00Z","attempt":1,"error":"boom","trace":""}'::jsonb] END)
			RETURNING id`, state).Scan(&id))
		return id
	}
	failed, running := insert("discarded"), insert("running")
	insert("completed")
	getenv := env(map[string]string{"DATABASE_URL": url, "USER": "ops"})
	var audit bytes.Buffer
	admin := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, getenv, &out, &audit)
		return out.String(), err
	}

	out, err := admin("jobs", "failed", "--json")
	require.NoError(t, err)
	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 1)
	require.EqualValues(t, failed, listed[0]["id"])
	require.Equal(t, "boom", listed[0]["errors"].([]any)[0].(map[string]any)["error"])

	out, err = admin("jobs", "list")
	require.NoError(t, err)
	require.Equal(t, 4, len(strings.Split(strings.TrimSpace(out), "\n")), out) // header + 3
	require.Contains(t, out, "boom")

	out, err = admin("jobs", "retry", fmt.Sprint(failed))
	require.NoError(t, err)
	require.Contains(t, out, "is now available")
	require.Contains(t, audit.String(), fmt.Sprintf(`"who":"ops","via":"cli","action":"retry","job_id":%d`, failed), "the audit line names the operator and the job")

	_, err = admin("jobs", "delete", fmt.Sprint(running), "999999")
	require.ErrorContains(t, err, "running jobs cannot be deleted")
	require.ErrorContains(t, err, "job 999999: not found")

	out, err = admin("queue", "list")
	require.NoError(t, err)
	require.Contains(t, out, "message-delivery")
	require.Contains(t, out, "total")

	_, err = admin("queue", "pause", "never-worked")
	require.ErrorContains(t, err, `queue "never-worked" not found`)
	_, err = conn.Exec(ctx, `INSERT INTO river_queue (name, created_at, metadata, updated_at) VALUES ('message-delivery', now(), '{}', now())`)
	require.NoError(t, err)
	out, err = admin("queue", "pause", "message-delivery")
	require.NoError(t, err)
	require.Contains(t, out, "paused")

	out, err = admin("report", "failures", "--format", "csv", "--from", "2025-12-31T00:00:00Z", "--to", "2026-01-02T00:00:00Z")
	require.NoError(t, err)
	require.Contains(t, out, "kind,error,occurrences,last_seen")
	require.Contains(t, out, "send-message,boom,1,")
	_, err = admin("report", "jobs", "--format", "json")
	require.NoError(t, err)
	out, err = admin("report", "delivery")
	require.NoError(t, err)
	require.Contains(t, out, "(no data in this range)")
	_, err = admin("report", "everything")
	require.ErrorContains(t, err, "unknown report")

	for _, bad := range [][]string{{"report"}, {"report", "jobs", "--format", "xml"}, {"report", "jobs", "--from", "monday"}, {"jobs"}, {"jobs", "retry"}, {"jobs", "retry", "x"}, {"jobs", "list", "--state", "weird"}, {"jobs", "list", "--limit", "0"}, {"queue", "pause"}, {"queue", "explode"}} {
		_, err := admin(bad...)
		require.Error(t, err, "%v", bad)
		require.Equal(t, 2, exitCode(err), "%v", bad)
	}
}

// jobs show prints one job whole; --state failed is the dead letter; an
// empty listing says so; the every-second sweeps only show when asked;
// queue retry-failed retries a queue's failed jobs as the API does.
func TestJobsShowFiltersAndRetryFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	insert := func(kind, queue, state string) int64 {
		var id int64
		require.NoError(t, conn.QueryRow(ctx, `
			INSERT INTO river_job (kind, queue, args, max_attempts, state, attempt, attempted_at, finalized_at, errors, metadata)
			VALUES ($1, $2, '{"message_id":"00000000-0000-4000-8000-000000000001"}', 5, $3::river_job_state,
				2, now(), CASE WHEN $3 IN ('discarded','completed') THEN now() END,
				CASE WHEN $3 = 'discarded' THEN ARRAY['{"at":"2026-01-01T00:00:00Z","attempt":1,"error":"first try","trace":""}'::jsonb,
					'{"at":"2026-01-01T00:00:02Z","attempt":2,"error":"second try","trace":""}'::jsonb] END,
				'{"output":{"percentage":40},"progress":{"percentage":40,"step":"chunk","totalSteps":5,"currentStep":2}}')
			RETURNING id`, kind, queue, state).Scan(&id))
		return id
	}
	getenv := env(map[string]string{"DATABASE_URL": url, "USER": "ops"})
	admin := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, getenv, &out, io.Discard)
		return out.String(), err
	}

	out, err := admin("jobs", "failed")
	require.NoError(t, err)
	require.Equal(t, "no failed jobs\n", out)
	out, err = admin("jobs", "list", "--queue", "message-notification")
	require.NoError(t, err)
	require.Equal(t, "no jobs in queue message-notification\n", out)

	failed := insert("send-notification", "message-notification", "discarded")
	insert("deliver-pending", "message-delivery", "completed")

	out, err = admin("jobs", "show", fmt.Sprint(failed))
	require.NoError(t, err)
	for _, want := range []string{"send-notification", "discarded", "2 of 5", "attempt 1 at 2026-01-01 00:00:00Z: first try", "attempt 2", "second try",
		`{"percentage": 40}`, "progress   40% (chunk, step 2 of 5)"} {
		require.Contains(t, out, want)
	}
	out, err = admin("jobs", "show", "--json", fmt.Sprint(failed))
	require.NoError(t, err)
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &shown))
	require.Len(t, shown["errors"], 2)
	require.EqualValues(t, 40, shown["output"].(map[string]any)["percentage"])
	_, err = admin("jobs", "show", "999999")
	require.ErrorContains(t, err, "job 999999: not found")
	require.Equal(t, 1, exitCode(err))

	out, err = admin("jobs", "list", "--state", "failed")
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprint(failed))
	out, err = admin("jobs", "list")
	require.NoError(t, err)
	require.NotContains(t, out, "deliver-pending", "the sweeps are left out")
	out, err = admin("jobs", "list", "--all")
	require.NoError(t, err)
	require.Contains(t, out, "deliver-pending")

	out, err = admin("queue", "retry-failed", "message-notification", "--json")
	require.NoError(t, err)
	var retried map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &retried))
	require.EqualValues(t, 1, retried["retried"])
	var state string
	require.NoError(t, conn.QueryRow(ctx, `SELECT state::text FROM river_job WHERE id = $1`, failed).Scan(&state))
	require.Equal(t, "available", state)
	out, err = admin("queue", "retry-failed", "message-notification")
	require.NoError(t, err)
	require.Equal(t, "no failed jobs in queue message-notification to retry\n", out)

	out, err = admin("report", "failures", "--json")
	require.NoError(t, err)
	require.True(t, json.Valid([]byte(out)), out)
	out, err = admin("migrate", "status", "--json")
	require.NoError(t, err)
	require.True(t, json.Valid([]byte(out)), out)
	// Commands that enqueue say which jobs, as JSON too.
	out, err = admin("cleanup", "--type", "old_messages", "--retention-days", "30", "--dry-run", "--json")
	require.NoError(t, err)
	var enq struct {
		JobIDs []int64 `json:"job_ids"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &enq), out)
	require.Len(t, enq.JobIDs, 1)
}
