package workers

import (
	"cmp"
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
)

// IndexMessageWorker maintains the full-text search index. Every operation
// (index, update, delete) syncs the message's entry with the message as it
// is now: written for a live plaintext message, removed for a deleted or
// encrypted one. So retries and out-of-order jobs converge, and encrypted
// messages are never indexed.
type IndexMessageWorker struct {
	Policy[jobs.IndexMessageArgs]
	deps Deps
}

// Work implements river.Worker.
func (w *IndexMessageWorker) Work(ctx context.Context, job *river.Job[jobs.IndexMessageArgs]) error {
	return db.SyncSearchEntry(ctx, w.deps.Pool, job.Args.MessageID, cmp.Or(w.deps.SearchLanguage, "simple"))
}

// IndexPendingWorker indexes new plaintext messages from the search
// backlog, BatchSize per statement (db.IndexBacklog), until the backlog is
// empty or half its timeout has passed; the runner schedules it every
// INDEX_SWEEP_INTERVAL. Each statement writes its entries and deletes its
// backlog rows together, so a failed run leaves its messages for the next.
type IndexPendingWorker struct {
	Policy[jobs.IndexPendingArgs]
	deps Deps
}

// Work implements river.Worker.
func (w *IndexPendingWorker) Work(ctx context.Context, job *river.Job[jobs.IndexPendingArgs]) error {
	budget := time.Now().Add(w.Queue.Timeout / 2)
	language := cmp.Or(w.deps.SearchLanguage, "simple")
	total := 0
	for time.Now().Before(budget) {
		taken, indexed, err := db.IndexBacklog(ctx, w.deps.Pool, language, job.Args.BatchSize)
		if err != nil {
			return err
		}
		total += indexed
		if taken < job.Args.BatchSize {
			break
		}
	}
	_ = river.RecordOutput(ctx, map[string]int{"indexed": total})
	return nil
}
