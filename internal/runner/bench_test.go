package runner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
)

type noopWorker struct {
	river.WorkerDefaults[testArgs]
}

func (noopWorker) Work(context.Context, *river.Job[testArgs]) error { return nil }

// BenchmarkDrain measures how fast one runner drains no-op jobs from a
// 10-worker queue (the delivery queue's size) with River's default fetch
// settings and with this project's, in the same run, and with this
// project's at 50 workers (River fetches at most as many jobs as there
// are free workers). It reports jobs/s.
func BenchmarkDrain(b *testing.B) {
	settings := []struct {
		name     string
		workers  int
		jobs     int
		cooldown time.Duration
		poll     time.Duration
	}{
		{"river-default", 10, 500, river.FetchCooldownDefault, river.FetchPollIntervalDefault},
		{"tuned", 10, 5000, runner.DefaultFetchCooldown, runner.DefaultFetchPollInterval},
		{"tuned", 50, 10000, runner.DefaultFetchCooldown, runner.DefaultFetchPollInterval},
	}
	for _, s := range settings {
		b.Run(fmt.Sprintf("%s/workers=%d", s.name, s.workers), func(b *testing.B) {
			pool := dbtest.Pool(b)
			ws := river.NewWorkers()
			river.AddWorker(ws, noopWorker{})
			r, err := runner.New(pool, runner.Config{
				Queues:            []jobs.QueueSpec{{Name: testQueue, Workers: s.workers, RetryBase: time.Second, Timeout: time.Minute}},
				Workers:           ws,
				Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
				FetchCooldown:     s.cooldown,
				FetchPollInterval: s.poll,
			})
			require.NoError(b, err)
			completed, cancel := r.Client().Subscribe(river.EventKindJobCompleted)
			defer cancel()
			require.NoError(b, r.Start(context.Background()))
			defer r.Shutdown(context.Background()) //nolint:errcheck

			params := make([]river.InsertManyParams, s.jobs)
			for i := range params {
				params[i] = river.InsertManyParams{Args: testArgs{N: i}}
			}
			var elapsed time.Duration
			for b.Loop() {
				_, err := r.Client().InsertManyFast(context.Background(), params)
				require.NoError(b, err)
				start := time.Now()
				for range s.jobs {
					<-completed
				}
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(s.jobs*b.N)/elapsed.Seconds(), "jobs/s")
		})
	}
}
