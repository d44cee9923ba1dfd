package runner_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testQueue = "runner-test"

type testArgs struct {
	N int `json:"n"`
}

func (testArgs) Kind() string { return "runner-test" }

func (testArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: testQueue} }

// testWorker records each completed job in the worked table, in the job's
// own transaction-free way: a row per (job, attempt). hold, when set, makes
// each job wait that long or until its context ends.
type testWorker struct {
	river.WorkerDefaults[testArgs]
	pool    *pgxpool.Pool
	hold    time.Duration
	started atomic.Int64
}

func (w *testWorker) Work(ctx context.Context, job *river.Job[testArgs]) error {
	w.started.Add(1)
	if w.hold > 0 {
		select {
		case <-time.After(w.hold):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	_, err := w.pool.Exec(ctx, `INSERT INTO worked (job_id, n) VALUES ($1, $2)`, job.ID, job.Args.N)
	return err
}

type testBundle struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	_, err := pool.Exec(context.Background(), `CREATE TABLE worked (job_id bigint NOT NULL, n int NOT NULL, at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	return &testBundle{pool: pool, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func (b *testBundle) newRunner(t *testing.T, w *testWorker, edit func(*runner.Config)) *runner.Runner {
	t.Helper()
	ws := river.NewWorkers()
	river.AddWorker(ws, w)
	cfg := runner.Config{
		Queues:  []jobs.QueueSpec{{Name: testQueue, Workers: 10, RetryBase: 10 * time.Millisecond, Timeout: time.Minute}},
		Workers: ws,
		Logger:  b.logger,
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := runner.New(b.pool, cfg)
	require.NoError(t, err)
	return r
}

func (b *testBundle) insert(t *testing.T, r *runner.Runner, n int) {
	t.Helper()
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: testArgs{N: i}}
	}
	_, err := r.Client().InsertMany(context.Background(), params)
	require.NoError(t, err)
}

func (b *testBundle) scalar(t *testing.T, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

// requireAllWorkedOnce checks that each of the n jobs completed and was
// recorded by exactly one successful attempt.
func (b *testBundle) requireAllWorkedOnce(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return b.scalar(t, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == n
	}, 30*time.Second, 20*time.Millisecond, "every job completes")
	require.Equal(t, n, b.scalar(t, `SELECT count(DISTINCT n) FROM worked`))
	require.Equal(t, n, b.scalar(t, `SELECT count(*) FROM worked`), "no job's effect recorded twice")
}

func TestRunnerWorksJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.newRunner(t, &testWorker{pool: b.pool}, nil)
	require.NoError(t, r.Start(context.Background()))
	b.insert(t, r, 300)
	b.requireAllWorkedOnce(t, 300)
	require.NoError(t, r.Shutdown(context.Background()))

	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `msgrunner_job_runs_total{kind="runner-test",outcome="completed",queue="runner-test"} 300`)
	require.Contains(t, rec.Body.String(), `msgrunner_job_run_seconds_count{kind="runner-test"} 300`)
}

func TestShutdownLetsRunningJobsFinish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := &testWorker{pool: b.pool, hold: 500 * time.Millisecond}
	r := b.newRunner(t, w, func(c *runner.Config) { c.ShutdownTimeout = 10 * time.Second })
	require.NoError(t, r.Start(context.Background()))
	b.insert(t, r, 25)
	require.Eventually(t, func() bool { return w.started.Load() >= 10 }, 10*time.Second, 5*time.Millisecond)

	require.NoError(t, r.Shutdown(context.Background()))
	// Jobs in flight finished; none was cut short, and nothing was started
	// after the stop began.
	inFlight := int(w.started.Load())
	require.Equal(t, inFlight, b.scalar(t, `SELECT count(*) FROM worked`))
	require.Equal(t, inFlight, b.scalar(t, `SELECT count(*) FROM river_job WHERE state = 'completed'`))
	require.Zero(t, b.scalar(t, `SELECT count(*) FROM river_job WHERE state = 'running'`))
	require.Less(t, inFlight, 25, "the stop left jobs for the next runner")

	// The rest are still queued and the next runner works them all.
	next := b.newRunner(t, &testWorker{pool: b.pool}, nil)
	require.NoError(t, next.Start(context.Background()))
	b.requireAllWorkedOnce(t, 25)
	require.NoError(t, next.Shutdown(context.Background()))
}

func TestShutdownCancelsJobsPastTheDeadlineAndTheyAreRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := &testWorker{pool: b.pool, hold: time.Hour}
	r := b.newRunner(t, w, func(c *runner.Config) { c.ShutdownTimeout = 300 * time.Millisecond })
	require.NoError(t, r.Start(context.Background()))
	b.insert(t, r, 15)
	require.Eventually(t, func() bool { return w.started.Load() >= 10 }, 10*time.Second, 5*time.Millisecond)

	start := time.Now()
	require.NoError(t, r.Shutdown(context.Background()))
	require.Less(t, time.Since(start), 10*time.Second, "shutdown is bounded by its deadline")
	require.Zero(t, b.scalar(t, `SELECT count(*) FROM worked`))
	require.Zero(t, b.scalar(t, `SELECT count(*) FROM river_job WHERE state = 'running'`), "no job is left running")
	// Jobs cut off by the stop go straight back to the queue, without
	// using up an attempt.
	require.Equal(t, 15, b.scalar(t, `SELECT count(*) FROM river_job WHERE state = 'available' AND attempt = 0`))

	next := b.newRunner(t, &testWorker{pool: b.pool}, nil)
	require.NoError(t, next.Start(context.Background()))
	b.requireAllWorkedOnce(t, 15)
	require.NoError(t, next.Shutdown(context.Background()))
}

func TestJobsOfADeadRunnerAreRescued(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.newRunner(t, &testWorker{pool: b.pool}, func(c *runner.Config) {
		c.JobTimeout = time.Second
		c.RescueStuckJobsAfter = 2 * time.Second
		c.Queues[0].Workers = 1
	})
	b.insert(t, r, 3)
	// A runner took these jobs and died: running, attempted long ago.
	_, err := b.pool.Exec(context.Background(), `UPDATE river_job
		SET state = 'running', attempt = 1, attempted_at = now() - interval '10 minutes', attempted_by = '{dead-runner}'`)
	require.NoError(t, err)

	require.NoError(t, r.Start(context.Background()))
	b.requireAllWorkedOnce(t, 3)
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.newRunner(t, &testWorker{pool: b.pool}, func(c *runner.Config) { c.Addr = "127.0.0.1:0" })

	get := func(h http.Handler, path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		return rec.Code, body
	}
	code, _ := get(r.Handler(), "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "not ready before start")

	require.NoError(t, r.Start(context.Background()))
	resp, err := http.Get("http://" + r.Addr() + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	code, body := get(r.Handler(), "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", body["status"])

	require.NoError(t, r.Shutdown(context.Background()))
	code, body = get(r.Handler(), "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "stopping", body["checks"].(map[string]any)["runner"])
}

func TestConfigErrorsNameTheField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ws := river.NewWorkers()
	cases := []struct {
		name string
		cfg  runner.Config
		want string // in the error
	}{
		{"no queues", runner.Config{Workers: ws, Logger: b.logger}, "Config.Queues must list"},
		{"no workers in a queue", runner.Config{Queues: []jobs.QueueSpec{{Name: "q", Workers: 0, RetryBase: time.Second, Timeout: time.Second}}, Workers: ws, Logger: b.logger}, "Workers must be 1..10000"},
		{"no Workers", runner.Config{Queues: jobs.DefaultQueues(), Logger: b.logger}, "Config.Workers is required"},
		{"rescue before the job timeout", runner.Config{Queues: jobs.DefaultQueues(), Workers: ws, Logger: b.logger, JobTimeout: time.Hour, RescueStuckJobsAfter: time.Minute}, "RescueStuckJobsAfter"},
		{"queue twice", runner.Config{Queues: []jobs.QueueSpec{
			{Name: "q", Workers: 1, RetryBase: time.Second, Timeout: time.Second},
			{Name: "q", Workers: 1, RetryBase: time.Second, Timeout: time.Second},
		}, Workers: ws, Logger: b.logger}, "lists \"q\" twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := runner.New(b.pool, tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// A queue with a fetch cooldown of its own (longer than the runner's poll
// interval, which River would refuse as is) starts and works its jobs.
func TestQueueWithItsOwnFetchCooldown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.newRunner(t, &testWorker{pool: b.pool}, func(c *runner.Config) {
		c.FetchPollInterval = 5 * time.Millisecond
		c.Queues[0].FetchCooldown = 20 * time.Millisecond
	})
	require.NoError(t, r.Start(context.Background()))
	b.insert(t, r, 100)
	b.requireAllWorkedOnce(t, 100)
	require.NoError(t, r.Shutdown(context.Background()))
}
