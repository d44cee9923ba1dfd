package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/validation"
)

// MaxScheduleAhead bounds how far ahead a message may be scheduled.
const MaxScheduleAhead = 366 * 24 * time.Hour

// Scheduled is a message held until it is due.
type Scheduled struct {
	// ID is also the id the message will have once released.
	ID             uuid.UUID
	ConversationID uuid.UUID
	RecipientID    uuid.UUID
	// Content is a plaintext message's text; a sealed one has Ciphertext
	// and KeyID instead (opened as a message with this ID would be).
	Content    string
	Ciphertext []byte
	KeyID      string
	Priority   string
	SendAt     time.Time
	// Status is pending, released, cancelled or failed.
	Status    string
	CreatedAt time.Time
}

func scheduledOf(s db.Scheduled) Scheduled {
	out := Scheduled{
		ID: s.ID, ConversationID: s.ConversationID, RecipientID: s.RecipientID, Ciphertext: s.Ciphertext,
		Priority: jobs.Priority(s.Priority).String(), SendAt: s.SendAt, Status: s.Status, CreatedAt: s.CreatedAt,
	}
	if s.Content != nil {
		out.Content = *s.Content
	}
	if s.KeyID != nil {
		out.KeyID = *s.KeyID
	}
	return out
}

// ScheduleTx holds m until sendAt, inside the caller's transaction: it
// stores the held message and a release-scheduled-message job that River
// runs when it is due (River promotes scheduled jobs every 5s, so release
// can be up to ~5s late). Until then the message has no seq and is in
// neither history nor resume. A message with Encrypt is sealed in tx for
// the id it will have, and one sealed before it reached the outbox
// (Ciphertext and KeyID, sealed for its ID) is held as it is; either
// holds its key generation until commit as a send does (ErrKeyRetired
// when a re-encryption retired it: schedule it again); re-encryption
// moves held messages to new generations with the conversation's others.
// Messages with attachments cannot be scheduled. Errors are as for SendTx
// (an id already used by a stored message is db.ErrConflict);
// additionally send_at must be in the future and at most MaxScheduleAhead
// away.
func (o *Outbox) ScheduleTx(ctx context.Context, tx pgx.Tx, m Message, sendAt time.Time) (*Scheduled, error) {
	now := time.Now()
	switch {
	case len(m.AttachmentIDs) > 0:
		return nil, validation.Errorf("attachment_ids", "cannot be scheduled yet: send the message now, or without attachments")
	case !sendAt.After(now):
		return nil, validation.Errorf("send_at", "must be in the future")
	case sendAt.Sub(now) > MaxScheduleAhead:
		return nil, validation.Errorf("send_at", "must be at most %s ahead", MaxScheduleAhead)
	}
	// Held sealed for the id it will have once sent.
	v, err := o.prepare(ctx, tx, m)
	if err != nil {
		return nil, err
	}
	ok, err := db.ConversationAdmits(ctx, tx, v.row.ConversationID, v.row.SenderID, v.row.RecipientID)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if !ok {
		return nil, ErrNotParticipant
	}
	// The id becomes the message's id at release: one already taken by a
	// stored message is refused now, not when the release fails later.
	if _, err := db.GetMessage(ctx, tx, v.row.ID); err == nil {
		return nil, fmt.Errorf("outbox: message id %s is already used by a sent message: %w", v.row.ID, db.ErrConflict)
	} else if !errors.Is(err, db.ErrNotFound) {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if err := holdKeyGeneration(ctx, tx, v); err != nil {
		return nil, err
	}
	s, err := db.InsertScheduled(ctx, tx, db.Scheduled{
		ID: v.row.ID, ConversationID: v.row.ConversationID, SenderID: v.row.SenderID, RecipientID: v.row.RecipientID,
		Content: v.row.Content, Ciphertext: v.row.Ciphertext, KeyID: v.row.KeyID, Priority: int(v.priority), SendAt: sendAt,
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if _, err := o.river.InsertTx(ctx, tx, jobs.ReleaseScheduledArgs{ScheduledID: s.ID},
		&river.InsertOpts{ScheduledAt: sendAt, Priority: int(v.priority)}); err != nil {
		return nil, fmt.Errorf("outbox: inserting release job: %w", err)
	}
	out := scheduledOf(s)
	return &out, nil
}

// Schedule runs ScheduleTx in a transaction of its own; a message with
// Encrypt whose key generation a re-encryption retired between sealing
// and storing is sealed again and scheduled in a new transaction.
func (o *Outbox) Schedule(ctx context.Context, b Beginner, m Message, sendAt time.Time) (*Scheduled, error) {
	for attempt := 1; ; attempt++ {
		s, err := o.scheduleOnce(ctx, b, m, sendAt)
		if !errors.Is(err, ErrKeyRetired) || !m.Encrypt || attempt >= maxSealAttempts {
			return s, err
		}
	}
}

// scheduleOnce is one try of Schedule.
func (o *Outbox) scheduleOnce(ctx context.Context, b Beginner, m Message, sendAt time.Time) (*Scheduled, error) {
	tx, err := b.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("outbox: beginning transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	s, err := o.ScheduleTx(ctx, tx, m, sendAt)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("outbox: committing: %w", err)
	}
	return s, nil
}

// ReleaseTx turns the scheduled message id into a real message, with its
// seq and jobs (as SendTx), and marks it released, all in tx. It returns
// released=false when the message is no longer pending (released before,
// or cancelled), so running it again is a no-op. ErrNotParticipant means
// the conversation changed hands since scheduling; tx must be rolled back.
func (o *Outbox) ReleaseTx(ctx context.Context, tx pgx.Tx, id uuid.UUID) (res *Result, released bool, err error) {
	s, err := db.ClaimScheduled(ctx, tx, id)
	if errors.Is(err, db.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("outbox: %w", err)
	}
	m := Message{
		ID: s.ID, ConversationID: s.ConversationID, SenderID: s.SenderID, RecipientID: s.RecipientID,
		Ciphertext: s.Ciphertext, Priority: jobs.Priority(s.Priority).String(),
	}
	if s.Content != nil {
		m.Content = *s.Content
	}
	if s.KeyID != nil {
		m.KeyID = *s.KeyID
	}
	res, err = o.SendTx(ctx, tx, m)
	if err != nil {
		return nil, false, err
	}
	if err := db.MarkScheduledReleased(ctx, tx, id, res.ID); err != nil {
		return nil, false, fmt.Errorf("outbox: %w", err)
	}
	return res, true, nil
}

// FailScheduled marks a pending scheduled message failed with reason.
func (o *Outbox) FailScheduled(ctx context.Context, q Querier, id uuid.UUID, reason string) error {
	return db.MarkScheduledFailed(ctx, q, id, reason)
}

// CancelScheduled cancels sender's pending scheduled message id. It
// returns ErrScheduledNotFound when there is none to cancel: unknown,
// someone else's, already released or cancelled.
func (o *Outbox) CancelScheduled(ctx context.Context, q Querier, sender, id uuid.UUID) error {
	err := db.CancelScheduled(ctx, q, sender, id)
	if errors.Is(err, db.ErrNotFound) {
		return ErrScheduledNotFound
	}
	return err
}

// ErrScheduledNotFound is returned by CancelScheduled and GetScheduled.
var ErrScheduledNotFound = errors.New("outbox: no pending scheduled message with this id")

// GetScheduled returns sender's scheduled message id, whatever its status,
// so a retried schedule (same id) can be answered from what was stored.
// ErrScheduledNotFound when there is none, or it is someone else's.
func (o *Outbox) GetScheduled(ctx context.Context, q Querier, sender, id uuid.UUID) (*Scheduled, error) {
	s, err := db.GetScheduled(ctx, q, id)
	if errors.Is(err, db.ErrNotFound) || (err == nil && s.SenderID != sender) {
		return nil, ErrScheduledNotFound
	}
	if err != nil {
		return nil, err
	}
	out := scheduledOf(s)
	return &out, nil
}

// ListScheduled returns up to limit of sender's pending scheduled messages,
// soonest first.
func (o *Outbox) ListScheduled(ctx context.Context, q Querier, sender uuid.UUID, limit int) ([]Scheduled, error) {
	rows, err := db.ListScheduled(ctx, q, sender, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Scheduled, len(rows))
	for i, r := range rows {
		out[i] = scheduledOf(r)
	}
	return out, nil
}
