package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// ReleaseScheduledWorker turns a due scheduled message into a real one: in
// one transaction it writes the message with its seq and jobs, marks the
// scheduled message released, and completes this job, so a retry can
// never release it twice. A cancelled or already released message is a
// no-op.
type ReleaseScheduledWorker struct {
	Policy[jobs.ReleaseScheduledArgs]
	pool   *pgxpool.Pool
	outbox *outbox.Outbox
	logger *slog.Logger
}

// NewReleaseScheduledWorker returns the release-scheduled-message worker
// of queue q, writing released messages through ob.
func NewReleaseScheduledWorker(q jobs.QueueSpec, pool *pgxpool.Pool, ob *outbox.Outbox, logger *slog.Logger) *ReleaseScheduledWorker {
	return &ReleaseScheduledWorker{Policy: Policy[jobs.ReleaseScheduledArgs]{Queue: q}, pool: pool, outbox: ob, logger: orDiscard(logger)}
}

// Work implements river.Worker.
func (w *ReleaseScheduledWorker) Work(ctx context.Context, job *river.Job[jobs.ReleaseScheduledArgs]) error {
	if w.outbox == nil {
		return errors.New("release-scheduled-message: the worker has no outbox")
	}
	id := job.Args.ScheduledID
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	res, released, err := w.outbox.ReleaseTx(ctx, tx, id)
	if errors.Is(err, outbox.ErrNotParticipant) || errors.Is(err, outbox.ErrEncryptedConversation) {
		_ = tx.Rollback(ctx)
		reason := "sender or recipient is no longer a participant of the conversation"
		if errors.Is(err, outbox.ErrEncryptedConversation) {
			reason = "the conversation was switched to encrypted after this plaintext message was scheduled"
		}
		if ferr := w.outbox.FailScheduled(ctx, w.pool, id, reason); ferr != nil {
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
		w.logger.Info("scheduled message released", slog.String("message_id", res.ID.String()), slog.Int64("seq", res.Seq))
	}
	return nil
}
