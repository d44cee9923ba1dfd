package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/broadcast"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
)

// BatchSendWorker sends a broadcast a chunk at a time (each chunk one
// transaction that also advances the cursor), honours the chunk delay,
// stops at a chunk boundary when cancelled, and records its progress as
// job output. Before its timeout runs out it snoozes and continues in a
// fresh run, so long broadcasts never fail for time and never use up
// attempts doing so.
type BatchSendWorker struct {
	Policy[jobs.BatchSendArgs]
	broadcasts *broadcast.Service
	pool       *pgxpool.Pool // for the progress record; none when nil
	logger     *slog.Logger
}

// NewBatchSendWorker returns the batch-send worker of queue q, running
// broadcasts through broadcasts and keeping its job's progress record in
// pool (none when pool is nil).
func NewBatchSendWorker(q jobs.QueueSpec, broadcasts *broadcast.Service, pool *pgxpool.Pool, logger *slog.Logger) *BatchSendWorker {
	return &BatchSendWorker{Policy: Policy[jobs.BatchSendArgs]{Queue: q}, broadcasts: broadcasts, pool: pool, logger: orDiscard(logger)}
}

// BatchProgress is the job's recorded output.
type BatchProgress struct {
	Status       string  `json:"status"`
	Total        int     `json:"total"`
	Processed    int     `json:"processed"`
	Failed       int     `json:"failed"`
	Percentage   float64 `json:"percentage"`
	CurrentChunk int     `json:"current_chunk"`
}

// ProgressOf summarises a broadcast.
func ProgressOf(b db.Batch) BatchProgress {
	return BatchProgress{Status: b.Status, Total: b.Total, Processed: b.Processed, Failed: b.Failed,
		Percentage: b.Percentage(), CurrentChunk: b.CurrentChunk}
}

// Work implements river.Worker.
func (w *BatchSendWorker) Work(ctx context.Context, job *river.Job[jobs.BatchSendArgs]) error {
	if w.broadcasts == nil {
		return errors.New("batch-send: the worker has no broadcast service")
	}
	// Leave a tenth of the timeout (at least 5s) to hand over cleanly.
	budget := w.Queue.Timeout - max(w.Queue.Timeout/10, 5*time.Second)
	handover := time.Now().Add(budget)
	progress := newProgressWriter(w.pool, w.logger, job.ID)
	record := func(b db.Batch) {
		p := ProgressOf(b)
		_ = river.RecordOutput(ctx, p)
		steps := 1
		if b.ChunkSize > 0 {
			steps = max((b.Total+b.ChunkSize-1)/b.ChunkSize, 1)
		}
		progress.record(ctx, Progress{Percentage: p.Percentage, Step: "chunk", TotalSteps: steps, CurrentStep: b.CurrentChunk, Data: p},
			b.Status != "running")
	}
	for {
		step, err := w.broadcasts.ProcessChunk(ctx, job.Args.BatchID)
		if errors.Is(err, db.ErrNotFound) {
			return river.JobCancel(fmt.Errorf("broadcast %s does not exist", job.Args.BatchID))
		}
		if err != nil {
			return err
		}
		record(step.Batch)
		if step.PublishErr != nil {
			// The chunk is stored; the deliver-pending sweep delivers it.
			w.logger.Warn("broadcast chunk not delivered at once; the deliver-pending sweep will", slog.String("batch_id", step.Batch.ID.String()),
				slog.Int("published", step.Published), slog.String("error", step.PublishErr.Error()))
		}
		if step.Done {
			w.logger.Info("broadcast finished", slog.String("batch_id", step.Batch.ID.String()),
				slog.String("status", step.Batch.Status), slog.Int("processed", step.Batch.Processed), slog.Int("failed", step.Batch.Failed))
			return nil
		}
		d := step.Batch.ChunkDelay
		if time.Now().Add(d).After(handover) {
			// Continue in a fresh run from the cursor, after the delay: a
			// snooze uses no attempt, so long broadcasts never fail for time.
			return river.JobSnooze(d)
		}
		if d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err() // shutdown: River puts the job back; the cursor holds
			}
		}
	}
}
