package db

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// Lease identifies a runner process in runner_leases.
type Lease struct {
	// RunnerID is River's client id, as recorded in river_job.attempted_by.
	RunnerID string
	Hostname string
	PID      int
	// TTL is how long the lease lasts after each renewal.
	TTL time.Duration
}

// RenewLease creates or renews l by Postgres's clock and reports whether
// it still holds. A lease that already expired or was stopped is not
// revived (ok false): its jobs may belong to other runners by now.
func RenewLease(ctx context.Context, q Querier, l Lease) (ok bool, err error) {
	_, err = dbsqlc.New(q).RenewLease(ctx, dbsqlc.RenewLeaseParams{
		RunnerID: l.RunnerID, Hostname: l.Hostname, Pid: int32(l.PID), TtlMs: float64(l.TTL.Milliseconds()),
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, translate("renewing the runner lease", err)
	}
	return true, nil
}

// StopLease ends the lease of runnerID at once, so jobs still shown as
// running under it are handed back without waiting for it to expire.
func StopLease(ctx context.Context, q Querier, runnerID string) error {
	return translate("stopping the runner lease", dbsqlc.New(q).StopLease(ctx, runnerID))
}

// RescuedJob is a job handed back by RescueOrphanedJobs or RescueLostJobs.
type RescuedJob struct {
	ID   int64
	Kind string
	// State is the job's new state: available, or discarded when it had
	// no attempts left.
	State string
}

// RescueOrphanedJobs hands back up to max jobs shown as running under a
// runner whose lease ended at least grace ago: available at once when
// attempts remain, discarded otherwise. Jobs of runners with a live lease
// or with no lease row are never touched.
func RescueOrphanedJobs(ctx context.Context, q Querier, grace time.Duration, max int) ([]RescuedJob, error) {
	rows, err := dbsqlc.New(q).RescueOrphanedJobs(ctx, dbsqlc.RescueOrphanedJobsParams{
		GraceMs: float64(grace.Milliseconds()), MaxJobs: int32(max),
	})
	if err != nil {
		return nil, translate("rescuing jobs of dead runners", err)
	}
	out := make([]RescuedJob, len(rows))
	for i, r := range rows {
		out[i] = RescuedJob{ID: r.ID, Kind: r.Kind, State: r.NewState}
	}
	return out, nil
}

// RescueLostJobs hands back up to max jobs shown as running under the
// live runner runnerID, attempted more than grace ago, whose ids are not in
// working (the jobs it works or has just finished): jobs it lost track of
// when a fetch's answer or a completion's commit was lost with a database
// connection. They are available at once when attempts remain, discarded
// otherwise.
func RescueLostJobs(ctx context.Context, q Querier, runnerID string, working []int64, grace time.Duration, max int) ([]RescuedJob, error) {
	if working == nil {
		working = []int64{}
	}
	rows, err := dbsqlc.New(q).RescueLostJobs(ctx, dbsqlc.RescueLostJobsParams{
		RunnerID: runnerID, Working: working, GraceMs: float64(grace.Milliseconds()), MaxJobs: int32(max),
	})
	if err != nil {
		return nil, translate("rescuing jobs the runner lost", err)
	}
	out := make([]RescuedJob, len(rows))
	for i, r := range rows {
		out[i] = RescuedJob{ID: r.ID, Kind: r.Kind, State: r.NewState}
	}
	return out, nil
}

// PruneLeases deletes leases that ended more than olderThan ago and hold
// no running job, and returns how many it deleted.
func PruneLeases(ctx context.Context, q Querier, olderThan time.Duration) (int64, error) {
	n, err := dbsqlc.New(q).PruneLeases(ctx, float64(olderThan.Milliseconds()))
	return n, translate("pruning runner leases", err)
}
