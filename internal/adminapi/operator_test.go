package adminapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/workers"
)

type flakyArgs struct{}

func (flakyArgs) Kind() string { return "flaky" }

func (flakyArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMessageDelivery, MaxAttempts: 2}
}

type flakyWorker struct {
	workers.Policy[flakyArgs]
	fixed *atomic.Bool
}

func (w flakyWorker) Work(context.Context, *river.Job[flakyArgs]) error {
	if !w.fixed.Load() {
		return errors.New("smtp relay refused the connection")
	}
	return nil
}

// TestOperatorFindsAFailedJobRetriesItAndItCompletes walks the operator's
// path with a real runner: a job fails until discarded, the operator finds
// it with its error, the cause is fixed, the operator retries it, and it
// completes.
func TestOperatorFindsAFailedJobRetriesItAndItCompletes(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	queue := jobs.DefaultQueues()[0]
	queue.RetryBase = 50 * time.Millisecond
	fixed := &atomic.Bool{}
	ws := river.NewWorkers()
	river.AddWorker(ws, flakyWorker{Policy: workers.Policy[flakyArgs]{Queue: queue}, fixed: fixed})
	r, err := runner.New(b.pool, runner.Config{Queues: []jobs.QueueSpec{queue}, Workers: ws, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	res, err := r.Client().Insert(context.Background(), flakyArgs{}, nil)
	require.NoError(t, err)
	id := res.Job.ID
	require.Eventually(t, func() bool { return b.state(t, id) == "discarded" }, 20*time.Second, 20*time.Millisecond)

	code, body := b.do(t, http.MethodGet, "/queue/"+queue.Name+"/failed", viewerToken)
	require.Equal(t, http.StatusOK, code)
	found := body["jobs"].([]any)[0].(map[string]any)
	require.EqualValues(t, id, found["id"])
	errs := found["errors"].([]any)
	require.Len(t, errs, 2)
	require.Equal(t, "smtp relay refused the connection", errs[1].(map[string]any)["error"])

	code, _ = b.do(t, http.MethodGet, "/queue/health/"+queue.Name, viewerToken)
	require.Equal(t, http.StatusServiceUnavailable, code, "its only job failed")

	fixed.Store(true)
	code, _ = b.do(t, http.MethodPost, fmt.Sprintf("/jobs/%d/retry", id), operatorToken)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool { return b.state(t, id) == "completed" }, 20*time.Second, 20*time.Millisecond)
}
