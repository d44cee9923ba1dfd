package db

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// ErrNotParticipant is returned by InsertMessage when the conversation exists
// and the sender or the recipient is not one of its participants.
var ErrNotParticipant = errors.New("sender or recipient is not a participant of the conversation")

// MessageStatus is a message's delivery state.
type MessageStatus string

// Message delivery states, in the order a message moves through them
// (failed may follow pending or sent).
const (
	MessagePending   MessageStatus = "pending"
	MessageSent      MessageStatus = "sent"
	MessageDelivered MessageStatus = "delivered"
	MessageRead      MessageStatus = "read"
	MessageFailed    MessageStatus = "failed"
)

// NewMessage is a message to insert. Exactly one of Content or Ciphertext
// (with KeyID) is set; the caller validates.
type NewMessage struct {
	ID             uuid.UUID
	ConversationID uuid.UUID
	SenderID       uuid.UUID
	RecipientID    uuid.UUID
	Priority       int
	Content        *string
	Ciphertext     []byte
	KeyID          *string
}

// InsertedMessage is what InsertMessage wrote.
type InsertedMessage struct {
	ID             uuid.UUID
	ConversationID uuid.UUID
	Seq            int64
	Status         MessageStatus
	CreatedAt      time.Time
}

// Message is a stored message row.
type Message struct {
	ID             uuid.UUID
	ConversationID uuid.UUID
	SenderID       uuid.UUID
	RecipientID    uuid.UUID
	Seq            int64
	Priority       int
	Content        *string
	Ciphertext     []byte
	KeyID          *string
	Status         MessageStatus
	FailureReason  *string
	CreatedAt      time.Time
	SentAt         *time.Time
	DeliveredAt    *time.Time
	ReadAt         *time.Time
	FailedAt       *time.Time
	EditedAt       *time.Time
	DeletedAt      *time.Time
}

// InsertMessage writes m with the conversation's next seq, creating the
// conversation (with sender and recipient as its participants) on first use.
// It must run inside a transaction: it takes the conversation's row lock
// until commit, and on ErrNotParticipant it has already advanced the seq
// counter, which the caller's rollback undoes.
func InsertMessage(ctx context.Context, tx pgx.Tx, m NewMessage) (InsertedMessage, error) {
	q := dbsqlc.New(tx)
	seq, err := q.AllocateSeq(ctx, m.ConversationID)
	if err != nil {
		return InsertedMessage{}, translate("allocating seq", err)
	}
	row, err := q.InsertMessage(ctx, dbsqlc.InsertMessageParams{
		ID:             m.ID,
		ConversationID: m.ConversationID,
		SenderID:       m.SenderID,
		RecipientID:    m.RecipientID,
		Seq:            seq,
		Priority:       int16(m.Priority),
		Content:        m.Content,
		Ciphertext:     m.Ciphertext,
		KeyID:          m.KeyID,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return InsertedMessage{}, ErrNotParticipant
	}
	if err != nil {
		return InsertedMessage{}, translate("inserting message", err)
	}
	return InsertedMessage{
		ID:             row.ID,
		ConversationID: row.ConversationID,
		Seq:            row.Seq,
		Status:         MessageStatus(row.Status),
		CreatedAt:      row.CreatedAt,
	}, nil
}

// GetMessage returns the message with id, or ErrNotFound.
func GetMessage(ctx context.Context, q Querier, id uuid.UUID) (Message, error) {
	r, err := dbsqlc.New(q).GetMessage(ctx, id)
	if err != nil {
		return Message{}, translate("getting message", err)
	}
	return messageFromRow(r), nil
}

func messageFromRow(r dbsqlc.Message) Message {
	return Message{
		ID:             r.ID,
		ConversationID: r.ConversationID,
		SenderID:       r.SenderID,
		RecipientID:    r.RecipientID,
		Seq:            r.Seq,
		Priority:       int(r.Priority),
		Content:        r.Content,
		Ciphertext:     r.Ciphertext,
		KeyID:          r.KeyID,
		Status:         MessageStatus(r.Status),
		FailureReason:  r.FailureReason,
		CreatedAt:      r.CreatedAt,
		SentAt:         r.SentAt,
		DeliveredAt:    r.DeliveredAt,
		ReadAt:         r.ReadAt,
		FailedAt:       r.FailedAt,
		EditedAt:       r.EditedAt,
		DeletedAt:      r.DeletedAt,
	}
}

func messagesFromRows(rows []dbsqlc.Message) []Message {
	out := make([]Message, len(rows))
	for i, r := range rows {
		out[i] = messageFromRow(r)
	}
	return out
}

// ListParticipants returns the user ids of a conversation's participants in
// id order; none for an unknown conversation.
func ListParticipants(ctx context.Context, q Querier, conversationID uuid.UUID) ([]uuid.UUID, error) {
	ids, err := dbsqlc.New(q).ListParticipants(ctx, conversationID)
	if err != nil {
		return nil, translate("listing participants", err)
	}
	return ids, nil
}
