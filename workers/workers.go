// Package workers holds a River worker for every job kind in package jobs,
// each with the timeout and retry schedule of its queue.
package workers

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/msgrunner/msgrunner/internal/attachments"
	"github.com/msgrunner/msgrunner/internal/broadcast"
	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
)

// Deps are the services the runner's workers are built from. Register
// hands each worker only the few it uses (see each New...Worker); a nil
// service disables what needs it, as each constructor documents.
type Deps struct {
	Pool   *pgxpool.Pool
	Fanout *fanout.Fanout
	// Delivery publishes stored messages and marks them sent (send-message,
	// deliver-pending); built from Pool, Fanout and Logger when nil.
	Delivery *delivery.Deliverer
	// Outbox writes released scheduled messages.
	Outbox *outbox.Outbox
	// Attachments holds uploaded files, for expired_attachments cleanup.
	Attachments attachments.Store
	// Crypto configures encrypt-decrypt (its Pool, Fanout and Logger
	// default to the ones above).
	Crypto CryptoConfig
	// Notify holds the notification providers and templates.
	Notify notify.Providers
	// Broadcasts runs broadcasts a chunk at a time.
	Broadcasts *broadcast.Service
	// SearchLanguage is the text-search configuration of the index;
	// "simple" when empty.
	SearchLanguage string
	Logger         *slog.Logger
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
	s, err := newSet(deps, queues)
	if err != nil {
		return err
	}
	if err := errors.Join(
		river.AddWorkerSafely(ws, s.sendMessage),
		river.AddWorkerSafely(ws, s.deliveryConfirmation),
		river.AddWorkerSafely(ws, s.sendNotification),
		river.AddWorkerSafely(ws, s.indexMessage),
		river.AddWorkerSafely(ws, s.encryptDecrypt),
		river.AddWorkerSafely(ws, s.batchSend),
		river.AddWorkerSafely(ws, s.cleanupMessages),
		river.AddWorkerSafely(ws, s.releaseScheduled),
		river.AddWorkerSafely(ws, s.jobHistory),
		river.AddWorkerSafely(ws, s.deliverPending),
		river.AddWorkerSafely(ws, s.indexPending),
	); err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	return nil
}

// set is one worker per kind.
type set struct {
	sendMessage          *SendMessageWorker
	deliveryConfirmation *DeliveryConfirmationWorker
	sendNotification     *SendNotificationWorker
	indexMessage         *IndexMessageWorker
	encryptDecrypt       *EncryptDecryptWorker
	batchSend            *BatchSendWorker
	cleanupMessages      *CleanupMessagesWorker
	releaseScheduled     *ReleaseScheduledWorker
	jobHistory           *JobHistoryWorker
	deliverPending       *DeliverPendingWorker
	indexPending         *IndexPendingWorker
}

func newSet(deps Deps, queues []jobs.QueueSpec) (*set, error) {
	byName := make(map[string]jobs.QueueSpec, len(queues))
	for _, q := range queues {
		byName[q.Name] = q
	}
	spec := make(map[string]jobs.QueueSpec)
	for _, k := range jobs.Kinds() {
		q, ok := byName[k.Queue]
		if !ok {
			return nil, fmt.Errorf("workers: no settings for queue %q of kind %q", k.Queue, k.Kind)
		}
		spec[k.Kind] = q
	}
	logger := orDiscard(deps.Logger)
	d := deps.Delivery
	if d == nil {
		d = delivery.New(deps.Pool, deps.Fanout, delivery.Config{Logger: logger})
	}
	crypto := deps.Crypto
	crypto.Pool = cmp.Or(crypto.Pool, deps.Pool)
	crypto.Fanout = cmp.Or(crypto.Fanout, deps.Fanout)
	crypto.Logger = cmp.Or(crypto.Logger, logger)
	return &set{
		sendMessage:          NewSendMessageWorker(spec[jobs.KindSendMessage], d, logger),
		deliveryConfirmation: NewDeliveryConfirmationWorker(spec[jobs.KindDeliveryConfirmation], deps.Pool, deps.Fanout, logger),
		sendNotification:     NewSendNotificationWorker(spec[jobs.KindSendNotification], deps.Pool, deps.Fanout, deps.Notify, logger),
		indexMessage:         NewIndexMessageWorker(spec[jobs.KindIndexMessage], deps.Pool, deps.SearchLanguage),
		encryptDecrypt:       NewEncryptDecryptWorker(spec[jobs.KindEncryptDecrypt], crypto),
		batchSend:            NewBatchSendWorker(spec[jobs.KindBatchSend], deps.Broadcasts, deps.Pool, logger),
		cleanupMessages:      NewCleanupMessagesWorker(spec[jobs.KindCleanupMessages], deps.Pool, deps.Attachments, logger),
		releaseScheduled:     NewReleaseScheduledWorker(spec[jobs.KindReleaseScheduled], deps.Pool, deps.Outbox, logger),
		jobHistory:           NewJobHistoryWorker(spec[jobs.KindJobHistory], deps.Pool, logger),
		deliverPending:       NewDeliverPendingWorker(spec[jobs.KindDeliverPending], d, logger),
		indexPending:         NewIndexPendingWorker(spec[jobs.KindIndexPending], deps.Pool, deps.SearchLanguage),
	}, nil
}

// orDiscard returns logger, or one that discards when nil.
func orDiscard(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}

// maxRedisSnooze caps the wait between tries while Redis is unreachable.
const maxRedisSnooze = 30 * time.Second

// snoozeOnRedis turns a Redis outage into a snooze: the job waits with the
// queue's backoff (capped at maxRedisSnooze) without using up an attempt,
// so an outage of any length delays deliveries but never discards them.
// Other errors pass through unchanged.
func snoozeOnRedis(q jobs.QueueSpec, row *rivertype.JobRow, logger *slog.Logger, err error) error {
	if !errors.Is(err, fanout.ErrUnavailable) {
		return err
	}
	delay := min(q.RetryDelay(snoozes(row)+1), maxRedisSnooze)
	logger.Warn("redis unavailable; snoozing job", slog.Int64("job_id", row.ID), slog.String("kind", row.Kind),
		slog.Duration("delay", delay), slog.String("error", err.Error()))
	return river.JobSnooze(delay)
}

// snoozes returns how many times River has snoozed the job.
func snoozes(row *rivertype.JobRow) int {
	var meta struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(row.Metadata, &meta)
	return meta.Snoozes
}

// isRerun reports whether the job ran before, as a failed attempt or a
// snooze (which does not count as an attempt).
func isRerun(row *rivertype.JobRow) bool { return row.Attempt > 1 || snoozes(row) > 0 }
