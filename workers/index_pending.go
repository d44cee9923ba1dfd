package workers

import (
	"cmp"
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
)

// IndexPendingWorker indexes new plaintext messages from the search
// backlog, BatchSize per statement (db.IndexBacklog), until the backlog is
// empty or half its timeout has passed; the runner schedules it every
// INDEX_SWEEP_INTERVAL. Each statement writes its entries and deletes its
// backlog rows together, so a failed run leaves its messages for the next.
type IndexPendingWorker struct {
	Policy[jobs.IndexPendingArgs]
	pool     *pgxpool.Pool
	language string
}

// NewIndexPendingWorker returns the index-pending worker of queue q;
// language is the text-search configuration of the index ("simple" when
// empty).
func NewIndexPendingWorker(q jobs.QueueSpec, pool *pgxpool.Pool, language string) *IndexPendingWorker {
	return &IndexPendingWorker{Policy: Policy[jobs.IndexPendingArgs]{Queue: q}, pool: pool, language: cmp.Or(language, "simple")}
}

// Work implements river.Worker.
func (w *IndexPendingWorker) Work(ctx context.Context, job *river.Job[jobs.IndexPendingArgs]) error {
	budget := time.Now().Add(w.Queue.Timeout / 2)
	language := w.language
	total := 0
	for time.Now().Before(budget) {
		taken, indexed, err := db.IndexBacklog(ctx, w.pool, language, job.Args.BatchSize)
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
