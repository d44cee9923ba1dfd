package fanout

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/db"
)

// Defaults of MarkerConfig.
const (
	DefaultMarkerLinger   = 5 * time.Millisecond
	DefaultMarkerMaxBatch = 500
	DefaultMarkerQueue    = 8192
)

// ErrNoMarker is Mark's answer on a nil *SentMarker.
var ErrNoMarker = errors.New("fanout: no sent marker")

// MarkerConfig configures a SentMarker.
type MarkerConfig struct {
	// Linger is how long the marker waits after the first id of a batch
	// for more to join it. Default 5 ms: at 500 msg/s a statement marks a
	// few messages instead of one, and no one waits on it.
	Linger time.Duration
	// MaxBatch caps the ids one statement marks. Default 500.
	MaxBatch int
	// Queue is how many ids may wait; Mark marks in the caller's own
	// statement when it is full. Default 8192.
	Queue int
	// Timeout bounds one statement. Default 5 s.
	Timeout time.Duration
	// Logger gets a warning when a batch could not be marked.
	Logger *slog.Logger
}

// SentMarker marks published messages sent in batches, off the path of
// the request that published them: the gateway's fast path answers as
// soon as Redis has the frame, and one statement (committed without
// waiting for the disk, as MarkManySentRelaxed) marks everything
// published in the last few milliseconds. A mark that is lost (a failed
// statement, a crash, Close running out of time) leaves the message
// pending, and the runner's deliver-pending sweep publishes it again,
// which clients absorb by deduping on id; so a lost mark costs a
// duplicate frame, never a message.
type SentMarker struct {
	pool *pgxpool.Pool
	cfg  MarkerConfig
	ids  chan uuid.UUID
	done chan struct{}

	mu     sync.RWMutex // held for reading while queueing, for writing by Close
	closed bool
}

// NewSentMarker starts a marker on pool; Close stops it.
func NewSentMarker(pool *pgxpool.Pool, cfg MarkerConfig) *SentMarker {
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultMarkerLinger
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMarkerMaxBatch
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultMarkerQueue
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &SentMarker{pool: pool, cfg: cfg, ids: make(chan uuid.UUID, cfg.Queue), done: make(chan struct{})}
	go m.run()
	return m
}

// Mark queues id to be marked sent. When the queue is full, or the
// marker is closed, it marks id in a statement of its own before
// returning, so a burst slows its senders instead of growing without
// bound. A nil marker marks nothing and returns ErrNoMarker.
func (m *SentMarker) Mark(ctx context.Context, id uuid.UUID) error {
	if m == nil {
		return ErrNoMarker
	}
	m.mu.RLock()
	if !m.closed {
		select {
		case m.ids <- id:
			m.mu.RUnlock()
			return nil
		default:
		}
	}
	m.mu.RUnlock()
	return db.MarkSentRelaxed(ctx, m.pool, id)
}

// Close marks what is queued and stops the marker, waiting until ctx is
// done at most; what is still queued then stays pending, for the sweep.
// Closing a nil marker does nothing.
func (m *SentMarker) Close(ctx context.Context) error {
	if m == nil {
		return nil
	}
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

func (m *SentMarker) run() {
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
func (m *SentMarker) collect(batch *[]uuid.UUID) bool {
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

func (m *SentMarker) flush(ids []uuid.UUID) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout)
	defer cancel()
	if err := db.MarkManySentRelaxed(ctx, m.pool, ids); err != nil {
		m.cfg.Logger.Warn("marking published messages sent failed; the deliver-pending sweep will publish them again",
			slog.Int("messages", len(ids)), slog.String("error", err.Error()))
	}
}
