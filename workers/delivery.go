package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
)

// SendMessageWorker delivers a stored message: it publishes the message
// frame on the recipient's Redis channel, updates the caches, and marks the
// message sent. A message already past pending (the deliver-pending sweep
// got there first, or this is a retry) is a no-op. While Redis is unreachable
// the job snoozes without using up attempts. The jobs running at the same
// moment are delivered together (one read, one Redis round trip, one
// mark for all of them), each job still succeeding or failing on its own
// message's outcome.
type SendMessageWorker struct {
	Policy[jobs.SendMessageArgs]
	deps  Deps
	batch *deliveryBatcher
}

// Work implements river.Worker.
func (w *SendMessageWorker) Work(ctx context.Context, job *river.Job[jobs.SendMessageArgs]) error {
	out := w.batch.deliver(ctx, job.Args.MessageID)
	switch {
	case !out.found:
		return river.JobCancel(fmt.Errorf("message %s no longer exists", job.Args.MessageID))
	case out.err != nil:
		return snoozeOnRedis(w.Queue, job.JobRow, w.deps.Logger, out.err)
	case out.delivered:
		w.deps.Logger.Debug("message delivered", slog.Int64("job_id", job.ID), slog.String("message_id", job.Args.MessageID.String()))
	}
	return nil
}

// DeliverPendingWorker is the delivery backstop of messages written
// without a send-message job (outbox.Message.CallerPublishes: the
// gateway's fast path, broadcast chunks): it publishes the messages still
// pending OlderThanMS after they were written and marks them sent, oldest
// first, one Redis round trip per batch, until none is left or half its
// timeout has passed. A message Redis refuses stays pending without
// holding back the ones after it; while Redis is unreachable the run ends
// and leaves everything for the next one. The runner schedules it every
// DELIVERY_SWEEP_INTERVAL. It publishes any message still pending that
// long, including one whose send-message job is running late; clients
// dedupe by id.
type DeliverPendingWorker struct {
	Policy[jobs.DeliverPendingArgs]
	deps Deps
}

// Work implements river.Worker.
func (w *DeliverPendingWorker) Work(ctx context.Context, job *river.Job[jobs.DeliverPendingArgs]) error {
	// A fixed cutoff, by Postgres's clock (it stamped created_at):
	// messages written while this runs wait for the next run, so a busy
	// writer cannot keep it going.
	now, err := db.DatabaseNow(ctx, w.deps.Pool)
	if err != nil {
		return err
	}
	cutoff := now.Add(-time.Duration(job.Args.OlderThanMS) * time.Millisecond)
	// Leave the rest to the next run well before the job's timeout.
	budget := time.Now().Add(w.Queue.Timeout / 2)
	total := 0
	var after db.Message
	for time.Now().Before(budget) {
		ms, err := db.PendingMessagesBefore(ctx, w.deps.Pool, cutoff, after, job.Args.BatchSize)
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			break
		}
		n, err := w.deps.Fanout.DeliverManyFast(ctx, w.deps.Pool, ms)
		total += n
		switch {
		case errors.Is(err, fanout.ErrUnavailable) && n == 0 && !w.deps.Fanout.Reachable(ctx):
			w.deps.Logger.Warn("redis unavailable; pending messages wait for the next deliver-pending run",
				slog.Int("published", total), slog.String("error", err.Error()))
			return nil
		case errors.Is(err, fanout.ErrUnavailable) && n == 0:
			// Redis answers but refused every frame of this page: they
			// stay pending; go on with the next page.
			w.deps.Logger.Warn("redis refused every frame of a page of pending messages; they wait for the next run",
				slog.Int("messages", len(ms)), slog.String("error", err.Error()))
		case err != nil:
			return err
		}
		if len(ms) < job.Args.BatchSize {
			break
		}
		after = ms[len(ms)-1]
	}
	if total > 0 {
		w.deps.Logger.Info("pending messages delivered by the backstop", slog.Int("messages", total))
	}
	return nil
}

// DeliveryConfirmationWorker records a recipient's delivered or read
// receipt (state only moves forward; duplicates change nothing) and
// publishes a receipt frame to the sender.
type DeliveryConfirmationWorker struct {
	Policy[jobs.DeliveryConfirmationArgs]
	deps Deps
}

// Work implements river.Worker.
func (w *DeliveryConfirmationWorker) Work(ctx context.Context, job *river.Job[jobs.DeliveryConfirmationArgs]) error {
	a := job.Args
	status := db.MessageDelivered
	if a.Status == jobs.ReceiptRead {
		status = db.MessageRead
	}
	r, changed, err := db.ApplyReceipt(ctx, w.deps.Pool, a.MessageID, a.UserID, status, a.At)
	if err != nil {
		return err
	}
	if !changed {
		sender, err := db.RecipientOf(ctx, w.deps.Pool, a.MessageID, a.UserID)
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
		m, err := db.GetMessage(ctx, w.deps.Pool, a.MessageID)
		if err != nil {
			return err
		}
		r = db.Receipt{SenderID: sender, ConversationID: m.ConversationID}
	}
	err = w.deps.Fanout.PublishReceipt(ctx, r.SenderID, fanout.ReceiptFrame{
		MessageID: a.MessageID, ConversationID: r.ConversationID, Status: a.Status, At: a.At,
	})
	if err == nil && status == db.MessageRead {
		err = w.deps.Fanout.InvalidateUnread(ctx, a.UserID)
	}
	if err != nil {
		return snoozeOnRedis(w.Queue, job.JobRow, w.deps.Logger, err)
	}
	return nil
}

// ReleaseScheduledWorker turns a due scheduled message into a real one: in
// one transaction it writes the message with its seq and jobs, marks the
// scheduled message released, and completes this job, so a retry can
// never release it twice. A cancelled or already released message is a
// no-op.
type ReleaseScheduledWorker struct {
	Policy[jobs.ReleaseScheduledArgs]
	deps Deps
}

// Work implements river.Worker.
func (w *ReleaseScheduledWorker) Work(ctx context.Context, job *river.Job[jobs.ReleaseScheduledArgs]) error {
	if w.deps.Outbox == nil {
		return errors.New("release-scheduled-message: workers.Deps.Outbox is not set")
	}
	id := job.Args.ScheduledID
	tx, err := w.deps.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	res, released, err := w.deps.Outbox.ReleaseTx(ctx, tx, id)
	if errors.Is(err, outbox.ErrNotParticipant) || errors.Is(err, outbox.ErrEncryptedConversation) {
		_ = tx.Rollback(ctx)
		reason := "sender or recipient is no longer a participant of the conversation"
		if errors.Is(err, outbox.ErrEncryptedConversation) {
			reason = "the conversation was switched to encrypted after this plaintext message was scheduled"
		}
		if ferr := w.deps.Outbox.FailScheduled(ctx, w.deps.Pool, id, reason); ferr != nil {
			return ferr
		}
		return river.JobCancel(fmt.Errorf("scheduled message %s: %s", id, reason))
	}
	if err != nil {
		return err
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if released {
		w.deps.Logger.Info("scheduled message released", slog.String("message_id", res.ID.String()), slog.Int64("seq", res.Seq))
	}
	return nil
}
