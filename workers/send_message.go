package workers

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/riverqueue/river"
)

// SendMessageWorker delivers a stored message: it publishes the message
// frame on the recipient's Redis channel, updates the caches, and marks the
// message sent. A message already past pending (the deliver-pending sweep
// got there first, or this is a retry) is a no-op. While Redis is unreachable
// the job snoozes without using up attempts. The jobs running at the same
// moment are delivered together (one read, one Redis round trip, one
// mark for all of them: delivery.Batcher), each job still succeeding or
// failing on its own message's outcome.
type SendMessageWorker struct {
	Policy[jobs.SendMessageArgs]
	batch  *delivery.Batcher
	logger *slog.Logger
}

// NewSendMessageWorker returns the send-message worker of queue q,
// delivering through d. A batch runs at most a third of the queue's
// timeout, so a job that waits out one batch and runs in the next still
// ends before its own timeout.
func NewSendMessageWorker(q jobs.QueueSpec, d *delivery.Deliverer, logger *slog.Logger) *SendMessageWorker {
	return &SendMessageWorker{Policy: Policy[jobs.SendMessageArgs]{Queue: q}, batch: d.NewBatcher(q.Timeout / 3), logger: orDiscard(logger)}
}

// Work implements river.Worker.
func (w *SendMessageWorker) Work(ctx context.Context, job *river.Job[jobs.SendMessageArgs]) error {
	out := w.batch.Deliver(ctx, job.Args.MessageID)
	switch {
	case !out.Found:
		return river.JobCancel(fmt.Errorf("message %s no longer exists", job.Args.MessageID))
	case out.Err != nil:
		return snoozeOnRedis(w.Queue, job.JobRow, w.logger, out.Err)
	case out.Delivered:
		w.logger.Debug("message delivered", slog.Int64("job_id", job.ID), slog.String("message_id", job.Args.MessageID.String()))
	}
	return nil
}
