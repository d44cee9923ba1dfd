package delivery

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/db"
)

// Defaults of MarkConfig.
const (
	DefaultMarkLinger   = 5 * time.Millisecond
	DefaultMarkMaxBatch = 500
	DefaultMarkQueue    = 8192
	DefaultMarkTimeout  = 5 * time.Second
)

// MarkConfig tunes deferred marks (Config.DeferMarks).
type MarkConfig struct {
	// Linger is how long a batch waits after its first id for more to
	// join it. Default 5 ms: at 500 msg/s a statement marks a few
	// messages instead of one, and no one waits on it.
	Linger time.Duration
	// MaxBatch caps the ids one statement marks. Default 500.
	MaxBatch int
	// Queue is how many ids may wait; when it is full, the caller marks
	// in its own statement, so a burst slows its senders instead of
	// growing without bound. Default 8192.
	Queue int
	// Timeout bounds one statement. Default 5 s.
	Timeout time.Duration
}

// marker marks published messages sent in batches, off the path of the
// request that published them: one statement marks everything published
// in the last few milliseconds.
type marker struct {
	pool   *pgxpool.Pool
	cfg    MarkConfig
	logger *slog.Logger
	ids    chan uuid.UUID
	done   chan struct{}

	mu     sync.RWMutex // held for reading while queueing, for writing by close
	closed bool
}

func newMarker(pool *pgxpool.Pool, cfg MarkConfig, logger *slog.Logger) *marker {
	cfg.Linger = cmp.Or(max(cfg.Linger, 0), DefaultMarkLinger)
	cfg.MaxBatch = cmp.Or(max(cfg.MaxBatch, 0), DefaultMarkMaxBatch)
	cfg.Queue = cmp.Or(max(cfg.Queue, 0), DefaultMarkQueue)
	cfg.Timeout = cmp.Or(max(cfg.Timeout, 0), DefaultMarkTimeout)
	m := &marker{pool: pool, cfg: cfg, logger: logger, ids: make(chan uuid.UUID, cfg.Queue), done: make(chan struct{})}
	go m.run()
	return m
}

// mark queues ids to be marked sent. What does not fit in the queue, or
// arrives after close, is marked in a statement of the caller's before
// mark returns; only that statement's error is returned.
func (m *marker) mark(ctx context.Context, ids []uuid.UUID) error {
	m.mu.RLock()
	rest := ids
	if !m.closed {
	queue:
		for len(rest) > 0 {
			select {
			case m.ids <- rest[0]:
				rest = rest[1:]
			default:
				break queue
			}
		}
	}
	m.mu.RUnlock()
	if len(rest) == 0 {
		return nil
	}
	return db.MarkManySentRelaxed(ctx, m.pool, rest)
}

// close marks what is queued and stops the marker, waiting until ctx is
// done at most.
func (m *marker) close(ctx context.Context) error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.ids)
	}
	m.mu.Unlock()
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *marker) run() {
	defer close(m.done)
	batch := make([]uuid.UUID, 0, m.cfg.MaxBatch)
	for id := range m.ids {
		batch = append(batch[:0], id)
		open := m.collect(&batch)
		m.flush(batch)
		if !open {
			return
		}
	}
}

// collect adds ids to batch until Linger has passed since the first, the
// batch is full or the queue is closed (then it reports false).
func (m *marker) collect(batch *[]uuid.UUID) bool {
	linger := time.NewTimer(m.cfg.Linger)
	defer linger.Stop()
	for len(*batch) < m.cfg.MaxBatch {
		select {
		case id, ok := <-m.ids:
			if !ok {
				return false
			}
			*batch = append(*batch, id)
		case <-linger.C:
			return true
		}
	}
	return true
}

func (m *marker) flush(ids []uuid.UUID) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout)
	defer cancel()
	if err := db.MarkManySentRelaxed(ctx, m.pool, ids); err != nil {
		m.logger.Warn("marking published messages sent failed; the deliver-pending sweep will publish them again",
			slog.Int("messages", len(ids)), slog.String("error", err.Error()))
	}
}
