package db

import (
	"context"
	"time"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// RollupJobStats recomputes job_stats for the whole UTC hours in
// [from, to) from the jobs River holds, replacing existing rows, and
// returns how many (kind, queue, hour) rows it wrote. Only hours whose jobs
// River has not pruned yet give complete figures.
func RollupJobStats(ctx context.Context, q Querier, from, to time.Time) (int64, error) {
	n, err := dbsqlc.New(q).RollupJobStats(ctx, dbsqlc.RollupJobStatsParams{
		FromHour: from.UTC().Truncate(time.Hour), ToHour: to.UTC().Truncate(time.Hour).Add(time.Hour),
	})
	return n, translate("rolling up job stats", err)
}

// ArchiveDiscardedJobs copies jobs discarded since since into failed_jobs
// and returns how many rows it wrote or refreshed.
func ArchiveDiscardedJobs(ctx context.Context, q Querier, since time.Time) (int64, error) {
	n, err := dbsqlc.New(q).ArchiveDiscardedJobs(ctx, since)
	return n, translate("archiving discarded jobs", err)
}

// PruneFailedJobs deletes archived failures finalized before before.
func PruneFailedJobs(ctx context.Context, q Querier, before time.Time) (int64, error) {
	n, err := dbsqlc.New(q).PruneFailedJobs(ctx, before)
	return n, translate("pruning the failed-jobs archive", err)
}
