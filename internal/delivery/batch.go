package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

// MaxBatch caps the messages one delivery batch reads, publishes and
// marks.
const MaxBatch = 500

// maxBatches is how many batches may run at once: two, so that a batch
// waiting on a round trip does not leave the other jobs idle, and no
// more, so that they stay batches. Every batch costs two Postgres round
// trips and one Redis round trip whatever its size; at 50 workers, four
// batches at once split each fetch into batches of about five messages
// and drained 8–10 % fewer jobs/s than two (1 was 3 % above 2).
const maxBatches = 2

// DefaultBatchTimeout bounds one batch when NewBatcher is given none.
const DefaultBatchTimeout = 10 * time.Second

// ErrFrameRefused is a batch's answer for a message whose frame or cache
// update Redis refused while it answered and took others: not an outage
// to wait out, but a failure to retry.
var ErrFrameRefused = errors.New("redis refused the message's frame or cache update")

// Batcher delivers together the messages of the send-message jobs running
// at the same moment: one statement reads them, one Redis round trip
// publishes them, one statement marks them sent, whatever the number of
// jobs. A job hands its message id over and waits for its own outcome.
// Batches form by themselves: while two run, the ids handed over
// meanwhile wait for the next, so an idle runner delivers a lone message
// at once and a busy one in batches as large as its workers allow. It is
// safe for concurrent use.
type Batcher struct {
	d       *Deliverer
	timeout time.Duration

	mu      sync.Mutex
	queue   []*request
	running int // goroutines draining queue
}

type request struct {
	id   uuid.UUID
	done chan Outcome // buffered: the batch never waits on a job
}

// Outcome is one message's part of a batch.
type Outcome struct {
	// Found says the message exists.
	Found bool
	// Delivered says this batch published the message and marked it sent.
	Delivered bool
	// Err says why the message could not be delivered: it wraps
	// fanout.ErrUnavailable for an outage (or a batch that ran out of
	// time), ErrFrameRefused when Redis refused its frame while
	// answering, or is a database error.
	Err error
}

// NewBatcher returns a Batcher delivering through d; timeout bounds one
// batch (DefaultBatchTimeout when zero).
func (d *Deliverer) NewBatcher(timeout time.Duration) *Batcher {
	return &Batcher{d: d, timeout: cmp.Or(timeout, DefaultBatchTimeout)}
}

// Deliver hands id to the next batch and waits for its outcome, or for
// ctx (the batch then still delivers it; a retry finds it sent). A
// message already past pending is found and not delivered again.
func (b *Batcher) Deliver(ctx context.Context, id uuid.UUID) Outcome {
	req := &request{id: id, done: make(chan Outcome, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, req)
	if b.running < maxBatches {
		b.running++
		go b.drain()
	}
	b.mu.Unlock()
	select {
	case out := <-req.done:
		return out
	case <-ctx.Done():
		err := ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			// The batches were slow (Redis or Postgres hanging): an
			// outage to wait out rather than an attempt used up.
			err = fmt.Errorf("waiting for the delivery batch: %w: %w", fanout.ErrUnavailable, err)
		}
		return Outcome{Found: true, Err: err}
	}
}

// drain runs batches until no id waits.
func (b *Batcher) drain() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), MaxBatch)
		if n == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		batch := make([]*request, n)
		copy(batch, b.queue)
		b.queue = append(b.queue[:0], b.queue[n:]...)
		b.mu.Unlock()
		b.run(batch)
	}
}

// run delivers one batch and answers each of its requests.
func (b *Batcher) run(batch []*request) {
	defer func() {
		// A panic fails this batch's jobs, not the process (River
		// recovers a panic in Work; this runs outside it).
		if p := recover(); p != nil {
			err := fmt.Errorf("delivery batch panicked: %v", p)
			b.d.logger.Error("delivery batch panicked", slog.String("panic", fmt.Sprint(p)))
			for _, r := range batch {
				select {
				case r.done <- Outcome{Found: true, Err: err}:
				default: // answered before the panic
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	ids := make([]uuid.UUID, len(batch))
	for i, r := range batch {
		ids[i] = r.id
	}
	found, err := db.GetMessages(ctx, b.d.pool, ids)
	if err != nil {
		for _, r := range batch {
			r.done <- Outcome{Found: true, Err: err}
		}
		return
	}
	// One entry per distinct message found (two jobs may carry the same
	// message: they share its outcome).
	ms := make([]db.Message, 0, len(found))
	index := make(map[uuid.UUID]int, len(found))
	for _, id := range ids {
		m, ok := found[id]
		if _, seen := index[id]; ok && !seen {
			index[id] = len(ms)
			ms = append(ms, m)
		}
	}
	sent, err := b.d.Deliver(ctx, ms)
	// A pending message Redis did not take gets the same answer whatever
	// else shared its batch: an outage when Redis does not answer (the
	// job snoozes), a refusal when it does (the job fails and retries).
	refused := ErrFrameRefused
	if errors.Is(err, fanout.ErrUnavailable) {
		if b.d.Reachable(ctx) {
			refused = fmt.Errorf("%w: %v", ErrFrameRefused, err)
		} else {
			refused = err
		}
	}
	for _, r := range batch {
		i, ok := index[r.id]
		switch {
		case !ok:
			r.done <- Outcome{}
		case sent == nil:
			r.done <- Outcome{Found: true, Err: err}
		case sent[i] && err == nil:
			r.done <- Outcome{Found: true, Delivered: true}
		case sent[i]:
			// Published but not marked: the retry (or the sweep)
			// publishes it again, which clients absorb.
			r.done <- Outcome{Found: true, Err: err}
		case ms[i].Status != db.MessagePending:
			r.done <- Outcome{Found: true} // delivered before: nothing to do
		default:
			r.done <- Outcome{Found: true, Err: refused}
		}
	}
}
