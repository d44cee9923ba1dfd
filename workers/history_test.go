package workers_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/workers"
)

func seedFinishedJob(t *testing.T, pool *pgxpool.Pool, kind, state string, finalized time.Time, waitMS, runMS, attempt int) int64 {
	t.Helper()
	attempted := finalized.Add(-time.Duration(runMS) * time.Millisecond)
	scheduled := attempted.Add(-time.Duration(waitMS) * time.Millisecond)
	var errs any
	if state == "discarded" {
		errs = []string{`{"at":"` + finalized.Format(time.RFC3339Nano) + `","attempt":1,"error":"gave up","trace":""}`}
	}
	var id int64
	require.NoError(t, pool.QueryRow(context.Background(), `
		INSERT INTO river_job (kind, queue, args, max_attempts, state, attempt, scheduled_at, attempted_at, finalized_at, errors)
		VALUES ($1, 'message-delivery', '{"message_id":"00000000-0000-4000-8000-000000000001"}', 5, $2::river_job_state, $3, $4, $5, $6, $7::jsonb[])
		RETURNING id`, kind, state, attempt, scheduled, attempted, finalized, errs).Scan(&id))
	return id
}

func runHistory(t *testing.T, r *runner.Runner, pool *pgxpool.Pool) {
	t.Helper()
	res, err := r.Client().Insert(context.Background(), jobs.JobHistoryArgs{Hours: 3, ArchiveRetentionDays: 30}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return job(t, pool, res.Job.ID).State == "completed" }, 20*time.Second, 20*time.Millisecond)
}

func TestJobStatsRollupMatchesAHandCountAndIsIdempotent(t *testing.T) {
	t.Parallel()
	pool, r := startRunner(t, jobs.DefaultQueues())
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	at := hour.Add(10 * time.Minute)
	seedFinishedJob(t, pool, "send-message", "completed", at, 10, 100, 1)
	seedFinishedJob(t, pool, "send-message", "completed", at, 20, 200, 2)
	seedFinishedJob(t, pool, "send-message", "completed", at, 30, 300, 1)
	seedFinishedJob(t, pool, "send-message", "discarded", at, 5, 5, 5)
	seedFinishedJob(t, pool, "send-message", "cancelled", at, 5, 5, 1)
	seedFinishedJob(t, pool, "send-message", "completed", hour.Add(-30*time.Minute), 1, 1, 1) // an hour outside the window

	type stat struct {
		Completed, Discarded, Cancelled, Retried int64
		RunP50, WaitP50                          float64
	}
	read := func() (int, stat) {
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM job_stats WHERE kind <> 'job-history'`).Scan(&n))
		var s stat
		require.NoError(t, pool.QueryRow(context.Background(), `
			SELECT completed, discarded, cancelled, retried, run_p50_ms, wait_p50_ms FROM job_stats
			WHERE kind = 'send-message' AND queue = 'message-delivery' AND hour = $1`, hour).
			Scan(&s.Completed, &s.Discarded, &s.Cancelled, &s.Retried, &s.RunP50, &s.WaitP50))
		return n, s
	}

	runHistory(t, r, pool)
	n, s := read()
	require.Equal(t, stat{Completed: 3, Discarded: 1, Cancelled: 1, Retried: 2, RunP50: 200, WaitP50: 20}, s)
	rowsAfterFirst := n

	// Re-running replaces the hour's row: same figures, no duplicates.
	runHistory(t, r, pool)
	n, s2 := read()
	require.Equal(t, s, s2)
	require.Equal(t, rowsAfterFirst, n)

	// A late-finishing job in that hour is reflected on the next run.
	seedFinishedJob(t, pool, "send-message", "completed", at, 40, 400, 1)
	runHistory(t, r, pool)
	_, s3 := read()
	require.EqualValues(t, 4, s3.Completed)
	require.InDelta(t, 250, s3.RunP50, 0.01)
}

func TestArchivedFailuresSurviveRiversCleaner(t *testing.T) {
	t.Parallel()
	pool, r := startRunner(t, jobs.DefaultQueues())
	old := time.Now().Add(-2 * time.Hour)
	id := seedFinishedJob(t, pool, "send-message", "discarded", old, 5, 5, 5)
	runHistory(t, r, pool)

	count := func(sql string) int {
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), sql, id).Scan(&n))
		return n
	}
	require.Equal(t, 1, count(`SELECT count(*) FROM failed_jobs WHERE job_id = $1 AND errors[1]->>'error' = 'gave up'`))
	require.NoError(t, r.Shutdown(context.Background()))

	// A runner keeping discarded jobs only a minute: River's cleaner
	// deletes the job; the archive keeps it.
	ws := river.NewWorkers()
	require.NoError(t, workers.Register(ws, workers.Deps{Pool: pool, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, jobs.DefaultQueues()))
	strict, err := runner.New(pool, runner.Config{Queues: jobs.DefaultQueues(), Workers: ws, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		DiscardedRetention: time.Minute})
	require.NoError(t, err)
	require.NoError(t, strict.Start(context.Background()))
	t.Cleanup(func() { _ = strict.Shutdown(context.Background()) })
	require.Eventually(t, func() bool { return count(`SELECT count(*) FROM river_job WHERE id = $1`) == 0 }, 60*time.Second, 100*time.Millisecond)
	require.Equal(t, 1, count(`SELECT count(*) FROM failed_jobs WHERE job_id = $1`))
}
