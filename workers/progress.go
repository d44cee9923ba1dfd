package workers

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/db"
)

// Progress is a long job's progress record, in the earlier design's shape:
// how far it is (percentage), which step it is on and of how many, and
// figures of its own. Long jobs (batch-send, encrypt-decrypt, cleanup)
// keep it in the job's metadata while they run ("progress"), where River
// UI, GET /jobs/:id and `admin jobs show` show it.
type Progress struct {
	Percentage  float64 `json:"percentage"`
	Step        string  `json:"step"`
	TotalSteps  int     `json:"totalSteps"`
	CurrentStep int     `json:"currentStep"`
	Data        any     `json:"data,omitempty"`
}

// progressEvery is the least time between two progress writes of one job.
const progressEvery = 250 * time.Millisecond

// progressWriter writes one job's progress record, at most every
// progressEvery (a final record always), so a fast loop costs a few
// writes a second at most. Writing is best effort: a failure is logged
// and the job goes on.
type progressWriter struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	job    int64
	last   time.Time
}

func newProgressWriter(pool *pgxpool.Pool, logger *slog.Logger, job int64) *progressWriter {
	return &progressWriter{pool: pool, logger: logger, job: job}
}

// record writes p unless one was written less than progressEvery ago and
// final is false.
func (w *progressWriter) record(ctx context.Context, p Progress, final bool) {
	if w == nil || w.pool == nil || (!final && time.Since(w.last) < progressEvery) {
		return
	}
	w.last = time.Now()
	p.Percentage = min(max(p.Percentage, 0), 100)
	b, err := json.Marshal(p)
	if err == nil {
		err = db.RecordJobProgress(ctx, w.pool, w.job, b)
	}
	if err != nil {
		w.logger.Debug("recording job progress", slog.Int64("job_id", w.job), slog.String("error", err.Error()))
	}
}

// percent is done of total as a percentage (100 when total is 0).
func percent(done, total int64) float64 {
	if total <= 0 {
		return 100
	}
	return float64(done) * 100 / float64(total)
}
