package workers

import (
	"cmp"
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
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
	pool     *pgxpool.Pool
	language string
}

// NewIndexMessageWorker returns the index-message worker of queue q;
// language is the text-search configuration of the index ("simple" when
// empty).
func NewIndexMessageWorker(q jobs.QueueSpec, pool *pgxpool.Pool, language string) *IndexMessageWorker {
	return &IndexMessageWorker{Policy: Policy[jobs.IndexMessageArgs]{Queue: q}, pool: pool, language: cmp.Or(language, "simple")}
}

// Work implements river.Worker.
func (w *IndexMessageWorker) Work(ctx context.Context, job *river.Job[jobs.IndexMessageArgs]) error {
	return db.SyncSearchEntry(ctx, w.pool, job.Args.MessageID, w.language)
}
