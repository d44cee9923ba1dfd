package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

// Config configures a Deliverer. Zero fields take the documented defaults.
type Config struct {
	// DeferMarks makes AfterCommit mark sent in batches after it returns
	// (the gateway's fast path: the client's answer does not wait for the
	// mark). Such a Deliverer runs one goroutine until Close. Without it,
	// AfterCommit marks before returning.
	DeferMarks bool
	// Marks tunes the deferred marks; used only with DeferMarks.
	Marks MarkConfig
	// Logger gets a warning when deferred marks are lost. Default: discard.
	Logger *slog.Logger
}

// Deliverer publishes stored messages on their recipients' Redis
// channels and marks them sent. It is safe for concurrent use.
type Deliverer struct {
	pool    *pgxpool.Pool
	fanout  *fanout.Fanout
	logger  *slog.Logger
	marks   *marker // nil unless Config.DeferMarks
	members memberships
}

// New returns a Deliverer that reads and marks messages in pool and
// publishes them through fo.
func New(pool *pgxpool.Pool, fo *fanout.Fanout, cfg Config) *Deliverer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Deliverer{pool: pool, fanout: fo, logger: cfg.Logger}
	if cfg.DeferMarks {
		d.marks = newMarker(pool, cfg.Marks, cfg.Logger)
	}
	return d
}

// Close writes the deferred marks still queued and stops marking, waiting
// until ctx is done at most; marks still queued then are lost, which
// leaves their messages pending for the sweep. Close does nothing on a
// Deliverer without DeferMarks. AfterCommit after Close marks in the
// caller's own statement.
func (d *Deliverer) Close(ctx context.Context) error {
	if d.marks == nil {
		return nil
	}
	return d.marks.close(ctx)
}

// Reachable reports whether Redis answers a PING: it tells an outage
// (snooze, retry later) from a frame Redis refused while answering.
func (d *Deliverer) Reachable(ctx context.Context) bool { return d.fanout.Reachable(ctx) }

// markMode says when deliver marks what it published.
type markMode int

const (
	markNow      markMode = iota // one statement before deliver returns
	markDeferred                 // queued to the marker
)

// deliver is the one implementation of "publish these, mark those": it
// publishes the pending messages of ms in one Redis round trip and marks
// sent those whose frame (and cache updates) Redis took, now or through
// the marker. sent[i] reports whether ms[i] was published by this call
// (false for a message already past pending, or one Redis refused). err
// wraps fanout.ErrUnavailable when no frame got through; it is set too
// when marking failed after publishing (the messages then stay pending,
// and the sweep or a retry publishes them again). sent is nil when a
// frame could not be encoded.
//
// A group message's frame goes to its members at its seq (apart from the
// sender), their membership read once per group per call, or taken from
// the cache when versions gives the membership version its send saw.
func (d *Deliverer) deliver(ctx context.Context, ms []db.Message, mode markMode, versions map[uuid.UUID]int64) (sent []bool, err error) {
	groups, err := d.audiences(ctx, ms, versions)
	if err != nil {
		return make([]bool, len(ms)), fmt.Errorf("delivery: %w", err)
	}
	sent = make([]bool, len(ms))
	frs := make([]fanout.MessageFrame, 0, len(ms))
	at := make([]int, 0, len(ms)) // frs[k] is the frame of ms[at[k]]
	for i, m := range ms {
		if m.Status == db.MessagePending {
			fr := Frame(m)
			if m.IsGroup() {
				fr.Audience = groups[m.ConversationID].Audience(m.Seq, m.SenderID)
			}
			frs = append(frs, fr)
			at = append(at, i)
		}
	}
	if len(frs) == 0 {
		return sent, nil
	}
	ok, err := d.fanout.PublishEach(ctx, frs)
	if ok == nil {
		return nil, err
	}
	ids := make([]uuid.UUID, 0, len(frs))
	for k, i := range at {
		if ok[k] {
			sent[i] = true
			ids = append(ids, ms[i].ID)
		}
	}
	if len(ids) == 0 {
		return sent, fmt.Errorf("publishing messages: %w: %w", fanout.ErrUnavailable, err)
	}
	if mode == markDeferred && d.marks != nil {
		err = d.marks.mark(ctx, ids)
	} else {
		err = db.MarkManySentRelaxed(ctx, d.pool, ids)
	}
	if err != nil {
		return sent, fmt.Errorf("delivery: published, but %w", err)
	}
	return sent, nil
}

// Deliver publishes the pending messages of ms in one Redis round trip
// and marks sent, in one statement before it returns, those Redis took;
// a message Redis refused stays pending without holding back the others.
// sent[i] reports whether ms[i] was published by this call. err wraps
// fanout.ErrUnavailable when no frame got through, and is set when
// marking failed after publishing; sent is nil when a frame could not be
// encoded.
func (d *Deliverer) Deliver(ctx context.Context, ms []db.Message) (sent []bool, err error) {
	return d.deliver(ctx, ms, markNow, nil)
}

// DeliverMany is Deliver counting: it returns how many of ms it published
// (a broadcast chunk's delivery).
func (d *Deliverer) DeliverMany(ctx context.Context, ms []db.Message) (int, error) {
	sent, err := d.deliver(ctx, ms, markNow, nil)
	n := 0
	for _, ok := range sent {
		if ok {
			n++
		}
	}
	return n, err
}

// ErrNotPublished is AfterCommit's answer when Redis did not take the
// message's frame; it wraps the cause (fanout.ErrUnavailable for an
// outage). The message stays pending, for the deliver-pending sweep.
var ErrNotPublished = errors.New("delivery: message not published")

// AfterCommit is the fast path of a writer that publishes its own
// messages (outbox.Message.CallerPublishes): right after m's transaction
// commits, it publishes m, and marks it sent after returning when the
// Deliverer defers marks (else before). membershipVersion is what the
// send returned for a group message (outbox.Result.MembershipVersion; 0
// for a direct one): a cached membership at that version or later is
// used without a read. On an error wrapping ErrNotPublished the message
// stays pending and the runner's deliver-pending sweep delivers it. A
// lost deferred mark costs a duplicate frame later, never the message.
func (d *Deliverer) AfterCommit(ctx context.Context, m db.Message, membershipVersion int64) error {
	var versions map[uuid.UUID]int64
	if m.IsGroup() {
		versions = map[uuid.UUID]int64{m.ConversationID: membershipVersion}
	}
	sent, err := d.deliver(ctx, []db.Message{m}, markDeferred, versions)
	if len(sent) == 1 && sent[0] {
		return err // nil, or a failed synchronous mark
	}
	if err == nil {
		err = fmt.Errorf("message %s is not pending", m.ID)
	}
	return fmt.Errorf("%w: %w", ErrNotPublished, err)
}
