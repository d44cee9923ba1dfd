package workers

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
)

// JobHistoryWorker keeps the job history that outlives River's retention:
// it recomputes job_stats for the last hours (idempotent: each hour's rows
// are replaced), archives discarded jobs into failed_jobs, and prunes the
// archive. Its counts are recorded as job output, visible in River UI.
type JobHistoryWorker struct {
	Policy[jobs.JobHistoryArgs]
	pool   *pgxpool.Pool
	logger *slog.Logger
}

// NewJobHistoryWorker returns the job-history worker of queue q.
func NewJobHistoryWorker(q jobs.QueueSpec, pool *pgxpool.Pool, logger *slog.Logger) *JobHistoryWorker {
	return &JobHistoryWorker{Policy: Policy[jobs.JobHistoryArgs]{Queue: q}, pool: pool, logger: orDiscard(logger)}
}

// JobHistoryOutput is the job's recorded output.
type JobHistoryOutput struct {
	StatsRows int64 `json:"stats_rows"`
	Archived  int64 `json:"archived"`
	Pruned    int64 `json:"pruned"`
}

// Work implements river.Worker.
func (w *JobHistoryWorker) Work(ctx context.Context, job *river.Job[jobs.JobHistoryArgs]) error {
	now := time.Now().UTC()
	from := now.Add(-time.Duration(job.Args.Hours-1) * time.Hour)
	rows, err := db.RollupJobStats(ctx, w.pool, from, now)
	if err != nil {
		return err
	}
	// Every discarded job River still holds: one missed by earlier runs
	// (say, while no runner ran) is archived too; unchanged copies are not
	// rewritten.
	archived, err := db.ArchiveDiscardedJobs(ctx, w.pool, time.Time{})
	if err != nil {
		return err
	}
	pruned, err := db.PruneFailedJobs(ctx, w.pool, now.AddDate(0, 0, -job.Args.ArchiveRetentionDays))
	if err != nil {
		return err
	}
	out := JobHistoryOutput{StatsRows: rows, Archived: archived, Pruned: pruned}
	if err := river.RecordOutput(ctx, out); err != nil {
		w.logger.Warn("recording job output", slog.String("error", err.Error()))
	}
	w.logger.Debug("job history updated", slog.Int64("stats_rows", rows), slog.Int64("archived", archived), slog.Int64("pruned", pruned))
	return nil
}
