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
// publishes a receipt frame to the sender. A group message's receipt moves
// the member's cursors instead, and the sender's frame counts the members
// who have it delivered and read.
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
			return w.groupReceipt(ctx, job)
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

// groupReceipt records the receipt of a group message by a member: it
// moves the member's delivered (and read) cursor forward to the message's
// seq, and publishes to the sender a receipt frame with the counts of
// members who have it delivered and read.
func (w *DeliveryConfirmationWorker) groupReceipt(ctx context.Context, job *river.Job[jobs.DeliveryConfirmationArgs]) error {
	a := job.Args
	ref, err := db.GroupMessageForMember(ctx, w.pool, a.MessageID, a.UserID)
	if errors.Is(err, db.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("message %s does not exist or is not addressed to user %s", a.MessageID, a.UserID))
	}
	if err != nil {
		return err
	}
	read := a.Status == jobs.ReceiptRead
	moved, err := db.AdvanceMemberCursor(ctx, w.pool, ref.ConversationID, a.UserID, ref.Seq, read)
	if err != nil {
		return err
	}
	if !moved && !isRerun(job.JobRow) {
		return nil // a duplicate or backwards receipt: nothing changes
	}
	counts, err := db.GroupReceiptCounts(ctx, w.pool, ref.ConversationID, ref.SenderID, ref.Seq)
	if err != nil {
		return err
	}
	err = w.fanout.PublishReceipt(ctx, ref.SenderID, fanout.ReceiptFrame{
		MessageID: a.MessageID, ConversationID: ref.ConversationID, Status: a.Status, At: a.At,
		Members: &counts.Members, DeliveredCount: &counts.Delivered, ReadCount: &counts.Read,
	})
	if err == nil && read {
		err = w.fanout.InvalidateUnread(ctx, a.UserID)
	}
	if err != nil {
		return snoozeOnRedis(w.Queue, job.JobRow, w.logger, err)
	}
	return nil
}
