package delivery

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

// Sweep is the delivery backstop: it publishes the messages still pending
// olderThan after they were written (by Postgres's clock, which stamped
// them) and marks them sent, oldest first, batchSize per Redis round
// trip, until none is left or budget has passed. It returns how many it
// published.
//
// The cutoff is fixed when Sweep starts, so a busy writer cannot keep it
// going: messages written meanwhile wait for the next sweep. A message
// Redis refuses stays pending without holding back the ones after it.
// While Redis is unreachable the sweep stops early with a nil error and
// leaves everything for the next one. It publishes any message still
// pending that long, including one whose send-message job runs late;
// clients dedupe by id.
func (d *Deliverer) Sweep(ctx context.Context, olderThan time.Duration, batchSize int, budget time.Duration) (int, error) {
	now, err := db.DatabaseNow(ctx, d.pool)
	if err != nil {
		return 0, err
	}
	cutoff := now.Add(-olderThan)
	deadline := time.Now().Add(budget)
	total := 0
	var after db.Message
	for time.Now().Before(deadline) {
		ms, err := db.PendingMessagesBefore(ctx, d.pool, cutoff, after, batchSize)
		if err != nil {
			return total, err
		}
		if len(ms) == 0 {
			break
		}
		n, err := d.DeliverMany(ctx, ms)
		total += n
		switch {
		case errors.Is(err, fanout.ErrUnavailable) && n == 0 && !d.Reachable(ctx):
			d.logger.Warn("redis unavailable; pending messages wait for the next deliver-pending run",
				slog.Int("published", total), slog.String("error", err.Error()))
			return total, nil
		case errors.Is(err, fanout.ErrUnavailable) && n == 0:
			// Redis answers but refused every frame of this page: they
			// stay pending; go on with the next page.
			d.logger.Warn("redis refused every frame of a page of pending messages; they wait for the next run",
				slog.Int("messages", len(ms)), slog.String("error", err.Error()))
		case err != nil:
			return total, err
		}
		if len(ms) < batchSize {
			break
		}
		after = ms[len(ms)-1]
	}
	return total, nil
}
