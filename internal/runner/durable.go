package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/msgrunner/msgrunner/internal/db"
)

// errServerChanged is durable's error for a job that ran while the
// database server restarted or failed over.
var errServerChanged = errors.New("the database server restarted or failed over while the job ran, so its writes may be lost: it runs again")

// durable is a River worker middleware for a runner whose connections
// commit asynchronously (Config.AsyncCommit). After a job's worker returns
// it waits until what the job committed is durable (db.WaitDurable)
// before River records the outcome, and checks that the server it waited
// on is the one the job ran against. Without it a database crash or
// failover could lose a job's writes, which had not reached the disk or
// the standby, while River, retrying its completion, recorded the job as
// completed on the restarted or promoted server: the effect gone and the
// job never run again. With it, River records an outcome only after
// durable writes; otherwise the job returns an error and runs again.
//
// Jobs finishing at the same time share one synchronous commit: while one
// is in flight the next batch gathers.
type durable struct {
	river.MiddlewareDefaults
	pool *pgxpool.Pool
	skip map[string]bool // kinds that do not wait

	mu       sync.Mutex
	server   time.Time // start time of the server the last wait reached
	waiting  []chan durableResult
	flushing bool
}

type durableResult struct {
	server time.Time
	err    error
}

func newDurable(pool *pgxpool.Pool, skip []string) *durable {
	d := &durable{pool: pool, skip: map[string]bool{}}
	for _, kind := range skip {
		d.skip[kind] = true
	}
	return d
}

// Work implements rivertype.WorkerMiddleware.
func (d *durable) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	if d.skip[job.Kind] {
		return doInner(ctx)
	}
	d.mu.Lock()
	before := d.server
	d.mu.Unlock()
	if before.IsZero() {
		// The first jobs learn which server this is before they write.
		res := d.wait(ctx)
		if res.err != nil {
			return fmt.Errorf("reaching the database before the job: %w", res.err)
		}
		before = res.server
	}
	err := doInner(ctx)
	if ctx.Err() != nil {
		return err // cancelled or timed out: River records that, and the job runs again
	}
	res := d.wait(ctx)
	switch {
	case res.err != nil:
		return fmt.Errorf("the job's writes could not be made durable, so it runs again: %w", res.err)
	case !res.server.Equal(before):
		return errServerChanged
	}
	return err
}

// wait joins the next shared synchronous commit and returns its result.
func (d *durable) wait(ctx context.Context) durableResult {
	done := make(chan durableResult, 1)
	d.mu.Lock()
	d.waiting = append(d.waiting, done)
	if !d.flushing {
		d.flushing = true
		go d.flush()
	}
	d.mu.Unlock()
	select {
	case res := <-done:
		return res
	case <-ctx.Done():
		return durableResult{err: ctx.Err()}
	}
}

// flush commits for each batch of waiters until none is left.
func (d *durable) flush() {
	for {
		d.mu.Lock()
		batch := d.waiting
		d.waiting = nil
		if len(batch) == 0 {
			d.flushing = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		server, err := db.WaitDurable(ctx, d.pool)
		cancel()
		if err == nil {
			d.mu.Lock()
			d.server = server
			d.mu.Unlock()
		}
		for _, done := range batch {
			done <- durableResult{server: server, err: err}
		}
	}
}
