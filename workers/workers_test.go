package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/workers"
)

// startRunner runs every worker on a fresh database with the given queues.
func startRunner(t *testing.T, queues []jobs.QueueSpec) (*pgxpool.Pool, *runner.Runner) {
	t.Helper()
	pool := dbtest.Pool(t)
	rdb, prefix := dbtest.Redis(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ws := river.NewWorkers()
	fo := fanout.New(rdb, fanout.Config{Keys: fanout.Keys{Prefix: prefix}})
	require.NoError(t, workers.Register(ws, workers.Deps{Pool: pool, Fanout: fo, Logger: logger}, queues))
	r, err := runner.New(pool, runner.Config{Queues: queues, Workers: ws, Logger: logger, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return pool, r
}

type attemptError struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
}

type jobState struct {
	State    string
	Attempt  int
	Errors   []attemptError
	Finished bool
}

func job(t *testing.T, pool *pgxpool.Pool, id int64) jobState {
	t.Helper()
	var s jobState
	var errs [][]byte
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT state, attempt, coalesce(errors, '{}'), finalized_at IS NOT NULL FROM river_job WHERE id = $1`, id).
		Scan(&s.State, &s.Attempt, &errs, &s.Finished))
	for _, e := range errs {
		var ae attemptError
		require.NoError(t, json.Unmarshal(e, &ae))
		s.Errors = append(s.Errors, ae)
	}
	return s
}

func TestEveryKindIsWorkedByItsWorker(t *testing.T) {
	t.Parallel()
	pool, r := startRunner(t, jobs.DefaultQueues())
	id := uuid.New()
	all := []jobs.Args{
		jobs.SendMessageArgs{MessageID: id},
		jobs.DeliveryConfirmationArgs{MessageID: id, UserID: id, Status: jobs.ReceiptRead, At: time.Now()},
		jobs.SendNotificationArgs{MessageID: id, RecipientID: id},
		jobs.IndexMessageArgs{MessageID: id, Operation: jobs.IndexOpIndex},
		jobs.EncryptDecryptArgs{Operation: jobs.CryptoOpEncrypt, ConversationID: id},
		jobs.BatchSendArgs{BatchID: id},
		jobs.CleanupMessagesArgs{Type: jobs.CleanupOldMessages, RetentionDays: 30, DryRun: true},
		jobs.ReleaseScheduledArgs{ScheduledID: id},
		jobs.JobHistoryArgs{Hours: 1, ArchiveRetentionDays: 30},
		jobs.DeliverPendingArgs{OlderThanMS: 1000, BatchSize: 10},
		jobs.IndexPendingArgs{BatchSize: 10},
	}
	require.Len(t, all, len(jobs.Kinds()), "one job per kind")
	ids := map[string]int64{}
	for _, a := range all {
		res, err := r.Client().Insert(context.Background(), a, nil)
		require.NoError(t, err, a.Kind())
		ids[a.Kind()] = res.Job.ID
	}
	for kind, jobID := range ids {
		require.Eventually(t, func() bool {
			s := job(t, pool, jobID)
			return len(s.Errors) >= 1 || s.Finished
		},
			20*time.Second, 20*time.Millisecond, "%s was never worked", kind)
		for _, e := range job(t, pool, jobID).Errors {
			require.NotContains(t, e.Error, "not registered", "%s has no worker", kind)
			require.NotContains(t, e.Error, "UnknownJobKind", "%s has no worker", kind)
		}
	}
}

// alwaysFails is a kind whose worker fails every attempt, with the
// retry schedule of the queue it is given.
type alwaysFailsArgs struct{}

func (alwaysFailsArgs) Kind() string { return "always-fails" }

func (alwaysFailsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMessageNotification, MaxAttempts: 3}
}

type alwaysFailsWorker struct {
	workers.Policy[alwaysFailsArgs]
}

func (alwaysFailsWorker) Work(context.Context, *river.Job[alwaysFailsArgs]) error {
	return errors.New("provider unavailable")
}

func TestFailingJobIsRetriedOnScheduleThenDiscarded(t *testing.T) {
	t.Parallel()
	queues := jobs.DefaultQueues()
	const base = 150 * time.Millisecond
	queues[1].RetryBase = base // message-notification
	require.Equal(t, jobs.QueueMessageNotification, queues[1].Name)

	pool := dbtest.Pool(t)
	ws := river.NewWorkers()
	river.AddWorker(ws, alwaysFailsWorker{Policy: workers.Policy[alwaysFailsArgs]{Queue: queues[1]}})
	r, err := runner.New(pool, runner.Config{Queues: queues, Workers: ws, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })

	res, err := r.Client().Insert(context.Background(), alwaysFailsArgs{}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return job(t, pool, res.Job.ID).State == "discarded" },
		20*time.Second, 20*time.Millisecond)

	s := job(t, pool, res.Job.ID)
	require.Equal(t, 3, s.Attempt)
	require.Len(t, s.Errors, 3)
	for i, e := range s.Errors {
		require.Equal(t, i+1, e.Attempt)
		require.Contains(t, e.Error, "provider unavailable")
	}
	// Each retry waited at least its backoff: base·2^(attempt−1).
	for i := 1; i < len(s.Errors); i++ {
		gap := s.Errors[i].At.Sub(s.Errors[i-1].At)
		require.GreaterOrEqual(t, gap, base<<(i-1), "gap before attempt %d", i+1)
	}
}
