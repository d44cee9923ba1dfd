// Package workers holds a River worker for every job kind in package jobs,
// each with the timeout and retry schedule of its queue.
package workers

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/jobs"
)

// ErrNotImplemented marks work this build cannot do yet. Jobs that hit it
// are cancelled (not retried, since a retry cannot succeed) with an error
// that says what is missing; once the worker exists they can be retried from
// River UI or the admin API.
var ErrNotImplemented = errors.New("not implemented in this build")

// Deps are what workers need from the outside world.
type Deps struct {
	Pool   *pgxpool.Pool
	Redis  redis.UniversalClient
	Logger *slog.Logger
}

// Policy gives a worker its queue's timeout and retry schedule. Embed it in
// a worker in place of river.WorkerDefaults.
type Policy[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	Queue jobs.QueueSpec
}

// Timeout implements river.Worker: the queue's timeout.
func (p Policy[T]) Timeout(*river.Job[T]) time.Duration { return p.Queue.Timeout }

// NextRetry implements river.Worker: the queue's backoff after the attempt
// that just failed.
func (p Policy[T]) NextRetry(job *river.Job[T]) time.Time {
	return time.Now().Add(p.Queue.RetryDelay(job.Attempt))
}

// Register adds a worker for every kind in jobs.Kinds to ws, each with the
// settings of its queue in queues. It fails when a kind's queue is missing
// from queues.
func Register(ws *river.Workers, deps Deps, queues []jobs.QueueSpec) error {
	byName := make(map[string]jobs.QueueSpec, len(queues))
	for _, q := range queues {
		byName[q.Name] = q
	}
	specs := make(map[string]jobs.QueueSpec)
	for _, k := range jobs.Kinds() {
		q, ok := byName[k.Queue]
		if !ok {
			return fmt.Errorf("workers: no settings for queue %q of kind %q", k.Queue, k.Kind)
		}
		specs[k.Kind] = q
	}
	regs := []error{
		river.AddWorkerSafely(ws, &SendMessageWorker{Policy: Policy[jobs.SendMessageArgs]{Queue: specs[jobs.KindSendMessage]}, deps: deps}),
		river.AddWorkerSafely(ws, &DeliveryConfirmationWorker{Policy: Policy[jobs.DeliveryConfirmationArgs]{Queue: specs[jobs.KindDeliveryConfirmation]}, deps: deps}),
		river.AddWorkerSafely(ws, &SendNotificationWorker{Policy: Policy[jobs.SendNotificationArgs]{Queue: specs[jobs.KindSendNotification]}, deps: deps}),
		river.AddWorkerSafely(ws, &IndexMessageWorker{Policy: Policy[jobs.IndexMessageArgs]{Queue: specs[jobs.KindIndexMessage]}, deps: deps}),
		river.AddWorkerSafely(ws, &EncryptDecryptWorker{Policy: Policy[jobs.EncryptDecryptArgs]{Queue: specs[jobs.KindEncryptDecrypt]}, deps: deps}),
		river.AddWorkerSafely(ws, &BatchSendWorker{Policy: Policy[jobs.BatchSendArgs]{Queue: specs[jobs.KindBatchSend]}, deps: deps}),
		river.AddWorkerSafely(ws, &CleanupMessagesWorker{Policy: Policy[jobs.CleanupMessagesArgs]{Queue: specs[jobs.KindCleanupMessages]}, deps: deps}),
	}
	if err := errors.Join(regs...); err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	return nil
}

// notImplemented cancels the job with an error naming what is missing.
func notImplemented(kind, missing string) error {
	return river.JobCancel(fmt.Errorf("%s: %w: %s", kind, ErrNotImplemented, missing))
}
