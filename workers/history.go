package workers

import (
	"context"
	"log/slog"
	"time"

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
	deps Deps
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
	rows, err := db.RollupJobStats(ctx, w.deps.Pool, from, now)
	if err != nil {
		return err
	}
	// Every discarded job River still holds: one missed by earlier runs
	// (say, while no runner ran) is archived too; unchanged copies are not
	// rewritten.
	archived, err := db.ArchiveDiscardedJobs(ctx, w.deps.Pool, time.Time{})
	if err != nil {
		return err
	}
	pruned, err := db.PruneFailedJobs(ctx, w.deps.Pool, now.AddDate(0, 0, -job.Args.ArchiveRetentionDays))
	if err != nil {
		return err
	}
	out := JobHistoryOutput{StatsRows: rows, Archived: archived, Pruned: pruned}
	if err := river.RecordOutput(ctx, out); err != nil {
		w.deps.Logger.Warn("recording job output", slog.String("error", err.Error()))
	}
	w.deps.Logger.Debug("job history updated", slog.Int64("stats_rows", rows), slog.Int64("archived", archived), slog.Int64("pruned", pruned))
	return nil
}
