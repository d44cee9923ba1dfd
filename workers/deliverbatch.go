package workers

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

// maxDeliveryBatch caps the messages one delivery batch reads, publishes
// and marks.
const maxDeliveryBatch = 500

// maxDeliveryBatches is how many batches may run at once: two, so that a
// batch waiting on a round trip does not leave the other jobs idle, and
// no more, so that they stay batches. Every batch costs two Postgres round
// trips and one Redis round trip whatever its size; at 50 workers, four
// batches at once split each fetch into batches of about five messages
// and drained 8–10 % fewer jobs/s than two (1 was 3 % above 2).
const maxDeliveryBatches = 2

// deliveryBatcher delivers together the messages of the send-message jobs
// running at the same moment: one statement reads them, one Redis round
// trip publishes them, one statement marks them sent, whatever the
// number of jobs. A job hands its message id over and waits for its own
// outcome. Batches form by themselves: while maxDeliveryBatches run, the
// ids handed over meanwhile wait for the next, so an idle runner delivers
// a lone message at once and a busy one in batches as large as its
// workers allow.
type deliveryBatcher struct {
	deps    Deps
	timeout time.Duration // bounds one batch; 10 s when zero

	mu      sync.Mutex
	queue   []*deliveryRequest
	running int // goroutines draining queue
}

type deliveryRequest struct {
	id   uuid.UUID
	done chan deliveryOutcome // buffered: the batch never waits on a job
}

// deliveryOutcome is one message's part of a batch.
type deliveryOutcome struct {
	found     bool // the message exists
	delivered bool // this batch published it and marked it sent
	err       error
}

// deliver hands id to the next batch and waits for its outcome, or for
// ctx (the batch then still delivers it; a retry finds it sent).
func (b *deliveryBatcher) deliver(ctx context.Context, id uuid.UUID) deliveryOutcome {
	req := &deliveryRequest{id: id, done: make(chan deliveryOutcome, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, req)
	if b.running < maxDeliveryBatches {
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
			// The batches were slow (Redis or Postgres hanging): snooze
			// like an outage rather than use up an attempt.
			err = fmt.Errorf("waiting for the delivery batch: %w: %w", fanout.ErrUnavailable, err)
		}
		return deliveryOutcome{found: true, err: err}
	}
}

// drain runs batches until no id waits.
func (b *deliveryBatcher) drain() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxDeliveryBatch)
		if n == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		batch := make([]*deliveryRequest, n)
		copy(batch, b.queue)
		b.queue = append(b.queue[:0], b.queue[n:]...)
		b.mu.Unlock()
		b.run(batch)
	}
}

// run delivers one batch and answers each of its requests.
func (b *deliveryBatcher) run(batch []*deliveryRequest) {
	defer func() {
		// A panic fails this batch's jobs, not the runner (River recovers
		// a panic in Work; this runs outside it).
		if p := recover(); p != nil {
			err := fmt.Errorf("delivery batch panicked: %v", p)
			if b.deps.Logger != nil {
				b.deps.Logger.Error("delivery batch panicked", slog.String("panic", fmt.Sprint(p)))
			}
			for _, r := range batch {
				select {
				case r.done <- deliveryOutcome{found: true, err: err}:
				default: // answered before the panic
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(b.timeout, 10*time.Second))
	defer cancel()
	answerAll := func(out deliveryOutcome) {
		for _, r := range batch {
			r.done <- out
		}
	}
	ids := make([]uuid.UUID, len(batch))
	for i, r := range batch {
		ids[i] = r.id
	}
	found, err := db.GetMessages(ctx, b.deps.Pool, ids)
	if err != nil {
		answerAll(deliveryOutcome{found: true, err: err})
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
	sent, err := b.deps.Fanout.DeliverEach(ctx, b.deps.Pool, ms)
	// A pending message Redis did not take gets the same answer whatever
	// else shared its batch: an outage when Redis does not answer (the
	// job snoozes), a refusal when it does (the job fails and retries).
	refused := errFrameRefused
	if errors.Is(err, fanout.ErrUnavailable) {
		if b.deps.Fanout.Reachable(ctx) {
			refused = fmt.Errorf("%w: %v", errFrameRefused, err)
		} else {
			refused = err
		}
	}
	for _, r := range batch {
		i, ok := index[r.id]
		switch {
		case !ok:
			r.done <- deliveryOutcome{}
		case sent == nil:
			r.done <- deliveryOutcome{found: true, err: err}
		case sent[i] && err == nil:
			r.done <- deliveryOutcome{found: true, delivered: true}
		case sent[i]:
			// Published but not marked: the retry (or the sweep)
			// publishes it again, which clients absorb.
			r.done <- deliveryOutcome{found: true, err: err}
		case ms[i].Status != db.MessagePending:
			r.done <- deliveryOutcome{found: true} // delivered before: nothing to do
		default:
			r.done <- deliveryOutcome{found: true, err: refused}
		}
	}
}

// errFrameRefused is a batch's answer for a message whose frame or cache
// update Redis refused while it took the others.
var errFrameRefused = errors.New("redis refused the message's frame or cache update")
