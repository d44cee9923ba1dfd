package workers

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/attachments"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
)

// CleanupMessagesWorker deletes old messages, the messages of
// conversations every participant deleted, and expired attachments (files
// and rows), batch_size rows per short transaction, looping until done. It
// never deletes a message that is still on its way (pending or sent, not
// yet delivered) or that a live job still refers to; delivered, read,
// failed (final) and sender-deleted messages may go. Near its timeout it
// snoozes and continues in a fresh run. A dry run only counts. Counts are
// recorded as the job's output; while it deletes, its progress record
// (Progress: batches done against the rows counted when it started) is
// kept in the job's metadata, a few writes a second at most.
type CleanupMessagesWorker struct {
	Policy[jobs.CleanupMessagesArgs]
	pool        *pgxpool.Pool
	attachments attachments.Store
	logger      *slog.Logger
}

// NewCleanupMessagesWorker returns the cleanup-messages worker of queue
// q. store holds uploaded files, for expired_attachments cleanup; that
// cleanup type is cancelled with the reason when store is nil.
func NewCleanupMessagesWorker(q jobs.QueueSpec, pool *pgxpool.Pool, store attachments.Store, logger *slog.Logger) *CleanupMessagesWorker {
	return &CleanupMessagesWorker{Policy: Policy[jobs.CleanupMessagesArgs]{Queue: q}, pool: pool, attachments: store, logger: orDiscard(logger)}
}

// CleanupOutput is the job's recorded output (the counts of this run).
type CleanupOutput struct {
	Type          string `json:"type"`
	DryRun        bool   `json:"dry_run"`
	Messages      int64  `json:"messages"`
	Conversations int64  `json:"conversations,omitempty"`
	Attachments   int64  `json:"attachments,omitempty"`
	KeysShredded  int64  `json:"keys_shredded,omitempty"`
	Batches       int    `json:"batches"`
}

// errHandover stops a cleanup loop that ran out of its time budget.
var errHandover = errors.New("handover")

// Work implements river.Worker.
func (w *CleanupMessagesWorker) Work(ctx context.Context, job *river.Job[jobs.CleanupMessagesArgs]) error {
	a := job.Args
	batch := cmp.Or(a.BatchSize, jobs.DefaultCleanupBatchSize)
	handover := time.Now().Add(w.Queue.Timeout - max(w.Queue.Timeout/10, 5*time.Second))
	out := CleanupOutput{Type: a.Type, DryRun: a.DryRun}
	now := time.Now()
	progress := newProgressWriter(w.pool, w.logger, job.ID)

	// loop runs step until it deletes less than a batch, keeping the
	// job's progress record against total, the rows counted up front.
	loop := func(total int64, step func() (int64, error)) error {
		var done int64
		steps := int((total + int64(batch) - 1) / int64(batch))
		for {
			n, err := step()
			if err != nil {
				return err
			}
			out.Batches++
			done += n
			last := n < int64(batch)
			progress.record(ctx, Progress{Percentage: percent(min(done, total), total), Step: a.Type,
				TotalSteps: max(steps, out.Batches), CurrentStep: out.Batches, Data: out}, last)
			if last {
				return nil
			}
			if time.Now().After(handover) {
				return errHandover
			}
		}
	}
	var err error
	switch a.Type {
	case jobs.CleanupOldMessages:
		before := now.AddDate(0, 0, -a.RetentionDays)
		var total int64
		if total, err = db.CountOldMessages(ctx, w.pool, before); err != nil || a.DryRun {
			out.Messages = total
			break
		}
		err = loop(total, func() (int64, error) {
			n, err := db.DeleteOldMessages(ctx, w.pool, before, batch)
			out.Messages += n
			return n, err
		})
	case jobs.CleanupDeletedConversations:
		var total int64
		if total, err = db.CountDeletedConversationMessages(ctx, w.pool); err != nil || a.DryRun {
			out.Messages = total
			break
		}
		// Crypto-shred first: once the keys are gone the ciphertext is
		// unreadable, even in backups, whatever the deletes below leave.
		if out.KeysShredded, err = db.ShredDeletedConversationKeys(ctx, w.pool); err != nil {
			break
		}
		err = loop(total, func() (int64, error) {
			m, c, err := db.DeleteDeletedConversations(ctx, w.pool, batch)
			out.Messages += m
			out.Conversations += c
			return max(m, c), err
		})
	case jobs.CleanupExpiredAttachments:
		if w.attachments == nil {
			return river.JobCancel(errors.New("expired_attachments: no attachment store is configured on this runner (ATTACHMENTS_DIR)"))
		}
		var total int64
		if total, err = db.CountExpiredAttachments(ctx, w.pool, now); err != nil || a.DryRun {
			out.Attachments = total
			break
		}
		err = loop(total, func() (int64, error) {
			expired, err := db.ExpiredAttachments(ctx, w.pool, now, batch)
			if err != nil {
				return 0, err
			}
			ids := make([]uuid.UUID, 0, len(expired))
			for _, at := range expired {
				// Files first: a row left without its file is retried on
				// the next run; a file without a row would be orphaned.
				if err := w.attachments.Delete(ctx, at.StorageKey); err != nil {
					return 0, err
				}
				ids = append(ids, at.ID)
			}
			n, err := db.DeleteAttachments(ctx, w.pool, ids)
			out.Attachments += n
			return int64(len(expired)), err
		})
	}
	_ = river.RecordOutput(ctx, out)
	if errors.Is(err, errHandover) {
		return river.JobSnooze(0)
	}
	if err != nil {
		return err
	}
	w.logger.Info("cleanup done", slog.String("type", a.Type), slog.Bool("dry_run", a.DryRun),
		slog.Int64("messages", out.Messages), slog.Int64("conversations", out.Conversations), slog.Int64("attachments", out.Attachments))
	return nil
}
