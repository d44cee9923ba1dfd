package db

import (
	"context"
	"time"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// QueueCounts holds the number of jobs per River state in one queue.
type QueueCounts map[string]int64

// JobCounts returns job counts per queue and River state, in one query.
func JobCounts(ctx context.Context, q Querier) (map[string]QueueCounts, error) {
	rows, err := dbsqlc.New(q).JobCountsByQueueAndState(ctx)
	if err != nil {
		return nil, translate("counting jobs", err)
	}
	out := map[string]QueueCounts{}
	for _, r := range rows {
		if out[r.Queue] == nil {
			out[r.Queue] = QueueCounts{}
		}
		out[r.Queue][r.State] = r.Jobs
	}
	return out, nil
}

// KnownQueues returns the queues River has recorded (any queue a runner
// has worked), each with whether it is paused.
func KnownQueues(ctx context.Context, q Querier) (paused map[string]bool, err error) {
	rows, err := dbsqlc.New(q).KnownQueues(ctx)
	if err != nil {
		return nil, translate("listing queues", err)
	}
	out := make(map[string]bool, len(rows))
	for _, r := range rows {
		out[r.Name] = r.Paused
	}
	return out, nil
}

// QueueHasJobs reports whether queue holds any job, in any state (a queue
// River has not recorded yet, say because no runner works it, can).
func QueueHasJobs(ctx context.Context, q Querier, queue string) (bool, error) {
	ok, err := dbsqlc.New(q).QueueHasJobs(ctx, queue)
	return ok, translate("checking queue", err)
}

// KindHealth is the raw material of a queue's health, for one job kind
// in it.
type KindHealth struct {
	Queue string
	// Kind is empty for a queue that holds no job.
	Kind string
	// Completed and Discarded count jobs finalized in the window.
	Completed, Discarded int64
	// Waiting counts available jobs; OldestWaiting is how long the oldest
	// of them has been due.
	Waiting       int64
	OldestWaiting time.Duration
	// LastCompleted is how long ago a job of the kind last completed;
	// negative when none is recorded (River prunes completed jobs).
	LastCompleted time.Duration
}

// QueueKindHealthSince returns health figures for each kind in each of
// queues over the window since since, ordered by queue and kind; a queue
// without jobs has one entry with an empty Kind.
func QueueKindHealthSince(ctx context.Context, q Querier, queues []string, since time.Time) ([]KindHealth, error) {
	rows, err := dbsqlc.New(q).QueueKindHealthStats(ctx, dbsqlc.QueueKindHealthStatsParams{Since: since, Queues: queues})
	if err != nil {
		return nil, translate("computing queue health", err)
	}
	seconds := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	out := make([]KindHealth, len(rows))
	for i, r := range rows {
		out[i] = KindHealth{
			Queue: r.Queue, Kind: r.Kind, Completed: r.Completed, Discarded: r.Discarded, Waiting: r.Waiting,
			OldestWaiting: seconds(r.OldestWaitingSeconds), LastCompleted: seconds(r.LastCompletedSeconds),
		}
	}
	return out, nil
}

// OldestWaiting returns, per queue holding available jobs, how long the
// oldest of them has been due.
func OldestWaiting(ctx context.Context, q Querier) (map[string]time.Duration, error) {
	rows, err := dbsqlc.New(q).OldestWaitingByQueue(ctx)
	if err != nil {
		return nil, translate("reading the oldest waiting jobs", err)
	}
	out := make(map[string]time.Duration, len(rows))
	for _, r := range rows {
		out[r.Queue] = time.Duration(r.Seconds * float64(time.Second))
	}
	return out, nil
}

// RecordJobProgress sets running job id's progress record (JSON) in its
// metadata; it does nothing once the job has stopped running.
func RecordJobProgress(ctx context.Context, q Querier, id int64, progress []byte) error {
	_, err := dbsqlc.New(q).RecordJobProgress(ctx, dbsqlc.RecordJobProgressParams{ID: id, Progress: progress})
	return translate("recording job progress", err)
}

// MinuteCounts are the jobs of a queue that finished in one minute.
type MinuteCounts struct {
	Minute               time.Time
	Completed, Discarded int64
}

// QueueActivity returns, per queue, the jobs finished per minute since
// since (minutes with none are missing), leaving out the kinds in skip.
func QueueActivity(ctx context.Context, q Querier, since time.Time, skip []string) (map[string][]MinuteCounts, error) {
	rows, err := dbsqlc.New(q).QueueActivity(ctx, dbsqlc.QueueActivityParams{Since: since, SkipKinds: skip})
	if err != nil {
		return nil, translate("reading queue activity", err)
	}
	out := map[string][]MinuteCounts{}
	for _, r := range rows {
		out[r.Queue] = append(out[r.Queue], MinuteCounts{Minute: r.Minute, Completed: r.Completed, Discarded: r.Discarded})
	}
	return out, nil
}

// RunningJob is a running job with its progress record (JSON).
type RunningJob struct {
	ID          int64
	Kind, Queue string
	AttemptedAt *time.Time
	Progress    []byte
}

// RunningJobsWithProgress returns up to limit running jobs that keep a
// progress record, longest running first.
func RunningJobsWithProgress(ctx context.Context, q Querier, limit int) ([]RunningJob, error) {
	rows, err := dbsqlc.New(q).RunningJobsWithProgress(ctx, int32(limit))
	if err != nil {
		return nil, translate("listing running jobs", err)
	}
	out := make([]RunningJob, len(rows))
	for i, r := range rows {
		out[i] = RunningJob{ID: r.ID, Kind: r.Kind, Queue: r.Queue, AttemptedAt: r.AttemptedAt, Progress: r.Progress}
	}
	return out, nil
}
