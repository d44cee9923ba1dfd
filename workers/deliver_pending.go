package workers

import (
	"context"
	"log/slog"
	"time"

	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/riverqueue/river"
)

// DeliverPendingWorker is the delivery backstop of messages written
// without a send-message job (outbox.Message.CallerPublishes: the
// gateway's fast path, broadcast chunks): it runs delivery.Deliverer's
// Sweep over the messages still pending OlderThanMS after they were
// written, BatchSize per Redis round trip, for at most half its timeout.
// While Redis is unreachable the run ends and leaves everything for the
// next one. The runner schedules it every DELIVERY_SWEEP_INTERVAL.
type DeliverPendingWorker struct {
	Policy[jobs.DeliverPendingArgs]
	deliverer *delivery.Deliverer
	logger    *slog.Logger
}

// NewDeliverPendingWorker returns the deliver-pending worker of queue q,
// delivering through d.
func NewDeliverPendingWorker(q jobs.QueueSpec, d *delivery.Deliverer, logger *slog.Logger) *DeliverPendingWorker {
	return &DeliverPendingWorker{Policy: Policy[jobs.DeliverPendingArgs]{Queue: q}, deliverer: d, logger: orDiscard(logger)}
}

// Work implements river.Worker.
func (w *DeliverPendingWorker) Work(ctx context.Context, job *river.Job[jobs.DeliverPendingArgs]) error {
	// Leave the rest to the next run well before the job's timeout.
	n, err := w.deliverer.Sweep(ctx, time.Duration(job.Args.OlderThanMS)*time.Millisecond, job.Args.BatchSize, w.Queue.Timeout/2)
	if n > 0 {
		w.logger.Info("pending messages delivered by the backstop", slog.Int("messages", n))
	}
	return err
}
