package runner

import (
	"context"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// working is a River worker middleware that records the jobs this
// process's workers are running and when each finished, so the lost-job
// rescuer can tell a job the runner works (or whose completion River is
// still writing) from one it lost with a database connection.
type working struct {
	river.MiddlewareDefaults
	mu   sync.Mutex
	jobs map[int64]time.Time // zero while running; when the worker returned
}

func newWorking() *working { return &working{jobs: map[int64]time.Time{}} }

// Work implements rivertype.WorkerMiddleware.
func (w *working) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	w.mu.Lock()
	w.jobs[job.ID] = time.Time{}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.jobs[job.ID] = time.Now()
		w.mu.Unlock()
	}()
	return doInner(ctx)
}

// ids returns the jobs running now or finished less than keep ago, and
// forgets those that finished earlier.
func (w *working) ids(keep time.Duration) []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	cutoff := time.Now().Add(-keep)
	out := make([]int64, 0, len(w.jobs))
	for id, done := range w.jobs {
		if !done.IsZero() && done.Before(cutoff) {
			delete(w.jobs, id)
			continue
		}
		out = append(out, id)
	}
	return out
}
