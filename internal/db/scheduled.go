package db

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// Scheduled is a message held until SendAt.
type Scheduled struct {
	ID             uuid.UUID
	ConversationID uuid.UUID
	SenderID       uuid.UUID
	RecipientID    uuid.UUID
	// Content is the text of a plaintext scheduled message; a sealed one
	// has Ciphertext and KeyID instead.
	Content    *string
	Ciphertext []byte
	KeyID      *string
	Priority   int
	SendAt     time.Time
	Status     string // pending, released, cancelled, failed
	MessageID  *uuid.UUID
	CreatedAt  time.Time
}

func scheduledFromRow(r dbsqlc.ScheduledMessage) Scheduled {
	return Scheduled{
		ID: r.ID, ConversationID: r.ConversationID, SenderID: r.SenderID, RecipientID: r.RecipientID,
		Content: r.Content, Ciphertext: r.Ciphertext, KeyID: r.KeyID, Priority: int(r.Priority), SendAt: r.SendAt, Status: string(r.Status),
		MessageID: r.MessageID, CreatedAt: r.CreatedAt,
	}
}

// InsertScheduled stores a scheduled message (Status and CreatedAt are
// filled in by the database).
func InsertScheduled(ctx context.Context, q Querier, s Scheduled) (Scheduled, error) {
	r, err := dbsqlc.New(q).InsertScheduled(ctx, dbsqlc.InsertScheduledParams{
		ID: s.ID, ConversationID: s.ConversationID, SenderID: s.SenderID, RecipientID: s.RecipientID,
		Content: s.Content, Ciphertext: s.Ciphertext, KeyID: s.KeyID, Priority: int16(s.Priority), SendAt: s.SendAt,
	})
	if err != nil {
		return Scheduled{}, translate("inserting scheduled message", err)
	}
	return scheduledFromRow(r), nil
}

// GetScheduled returns the scheduled message id, whatever its status;
// ErrNotFound when there is none.
func GetScheduled(ctx context.Context, q Querier, id uuid.UUID) (Scheduled, error) {
	r, err := dbsqlc.New(q).GetScheduled(ctx, id)
	if err != nil {
		return Scheduled{}, translate("reading scheduled message", err)
	}
	return scheduledFromRow(r), nil
}

// ConversationAdmits reports whether sender may write to recipient in the
// conversation: it does not exist yet, or both are its participants.
func ConversationAdmits(ctx context.Context, q Querier, conversationID, sender, recipient uuid.UUID) (bool, error) {
	ok, err := dbsqlc.New(q).ConversationAdmits(ctx, dbsqlc.ConversationAdmitsParams{
		ConversationID: conversationID, SenderID: sender, RecipientID: recipient,
	})
	if err != nil {
		return false, translate("checking conversation", err)
	}
	return ok != nil && *ok, nil
}

// ClaimScheduled locks a pending scheduled message for release until the
// transaction ends, or returns ErrNotFound when it is not pending (already
// released, cancelled or failed).
func ClaimScheduled(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Scheduled, error) {
	r, err := dbsqlc.New(tx).ClaimScheduled(ctx, id)
	if err != nil {
		return Scheduled{}, translate("claiming scheduled message", err)
	}
	return scheduledFromRow(r), nil
}

// MarkScheduledReleased records that scheduled message id became messageID.
func MarkScheduledReleased(ctx context.Context, q Querier, id, messageID uuid.UUID) error {
	return translate("marking scheduled message released", dbsqlc.New(q).MarkScheduledReleased(ctx, dbsqlc.MarkScheduledReleasedParams{ID: id, MessageID: &messageID}))
}

// MarkScheduledFailed records why a pending scheduled message could not be
// released.
func MarkScheduledFailed(ctx context.Context, q Querier, id uuid.UUID, reason string) error {
	return translate("marking scheduled message failed", dbsqlc.New(q).MarkScheduledFailed(ctx, dbsqlc.MarkScheduledFailedParams{ID: id, Reason: &reason}))
}

// CancelScheduled cancels sender's pending scheduled message id, or returns
// ErrNotFound when there is none (unknown, someone else's, or no longer
// pending).
func CancelScheduled(ctx context.Context, q Querier, sender, id uuid.UUID) error {
	_, err := dbsqlc.New(q).CancelScheduled(ctx, dbsqlc.CancelScheduledParams{ID: id, SenderID: sender})
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return translate("cancelling scheduled message", err)
}

// ListScheduled returns up to limit of sender's pending scheduled messages,
// soonest first.
func ListScheduled(ctx context.Context, q Querier, sender uuid.UUID, limit int) ([]Scheduled, error) {
	rows, err := dbsqlc.New(q).ListScheduled(ctx, dbsqlc.ListScheduledParams{SenderID: sender, MaxRows: int32(limit)})
	if err != nil {
		return nil, translate("listing scheduled messages", err)
	}
	out := make([]Scheduled, len(rows))
	for i, r := range rows {
		out[i] = scheduledFromRow(r)
	}
	return out, nil
}
