package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/riverqueue/river"
)

// DeliveryConfirmationWorker records a recipient's delivered or read
// receipt (state only moves forward; duplicates change nothing) and
// publishes a receipt frame to the sender.
type DeliveryConfirmationWorker struct {
	Policy[jobs.DeliveryConfirmationArgs]
	pool   *pgxpool.Pool
	fanout *fanout.Fanout
	logger *slog.Logger
}

// NewDeliveryConfirmationWorker returns the delivery-confirmation worker
// of queue q, publishing receipts through fo.
func NewDeliveryConfirmationWorker(q jobs.QueueSpec, pool *pgxpool.Pool, fo *fanout.Fanout, logger *slog.Logger) *DeliveryConfirmationWorker {
	return &DeliveryConfirmationWorker{Policy: Policy[jobs.DeliveryConfirmationArgs]{Queue: q}, pool: pool, fanout: fo, logger: orDiscard(logger)}
}

// Work implements river.Worker.
func (w *DeliveryConfirmationWorker) Work(ctx context.Context, job *river.Job[jobs.DeliveryConfirmationArgs]) error {
	a := job.Args
	status := db.MessageDelivered
	if a.Status == jobs.ReceiptRead {
		status = db.MessageRead
	}
	r, changed, err := db.ApplyReceipt(ctx, w.pool, a.MessageID, a.UserID, status, a.At)
	if err != nil {
		return err
	}
	if !changed {
		sender, err := db.RecipientOf(ctx, w.pool, a.MessageID, a.UserID)
		if errors.Is(err, db.ErrNotFound) {
			return river.JobCancel(fmt.Errorf("message %s does not exist or is not addressed to user %s", a.MessageID, a.UserID))
		}
		if err != nil {
			return err
		}
		if !isRerun(job.JobRow) {
			return nil // a duplicate or backwards receipt: nothing changes
		}
		// A rerun: the state may have changed on an earlier try whose
		// publish failed, so publish again.
		m, err := db.GetMessage(ctx, w.pool, a.MessageID)
		if err != nil {
			return err
		}
		r = db.Receipt{SenderID: sender, ConversationID: m.ConversationID}
	}
	err = w.fanout.PublishReceipt(ctx, r.SenderID, fanout.ReceiptFrame{
		MessageID: a.MessageID, ConversationID: r.ConversationID, Status: a.Status, At: a.At,
	})
	if err == nil && status == db.MessageRead {
		err = w.fanout.InvalidateUnread(ctx, a.UserID)
	}
	if err != nil {
		return snoozeOnRedis(w.Queue, job.JobRow, w.logger, err)
	}
	return nil
}
