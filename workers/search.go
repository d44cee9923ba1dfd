package workers

import (
	"cmp"
	"context"

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
