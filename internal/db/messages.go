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
	// RecipientID is the other user of a direct conversation; uuid.Nil
	// for a message to a group, whose audience is its members.
	RecipientID uuid.UUID
	Priority    int
	Content     *string
	Ciphertext  []byte
	KeyID       *string
	// Attachments is the JSON array of the attachments the message
	// carries ({id, content_type, size}); nil when none.
	Attachments []byte
}

// InsertedMessage is what InsertMessage wrote.
type InsertedMessage struct {
	ID             uuid.UUID
	ConversationID uuid.UUID
	Seq            int64
	Status         MessageStatus
	CreatedAt      time.Time
	// MembershipVersion is the group's membership version under the lock
	// that gave the seq (0 for a direct message): the message's audience
	// is the membership at that version.
	MembershipVersion int64
}

// Message is a stored message row.
type Message struct {
	ID             uuid.UUID
	ConversationID uuid.UUID
	SenderID       uuid.UUID
	// RecipientID is uuid.Nil for a group message (IsGroup).
	RecipientID   uuid.UUID
	Seq           int64
	Priority      int
	Content       *string
	Ciphertext    []byte
	KeyID         *string
	Status        MessageStatus
	FailureReason *string
	CreatedAt     time.Time
	SentAt        *time.Time
	DeliveredAt   *time.Time
	ReadAt        *time.Time
	FailedAt      *time.Time
	EditedAt      *time.Time
	DeletedAt     *time.Time
	// Attachments is the JSON array of the message's attachments
	// ({id, content_type, size}); nil when none.
	Attachments []byte
	// Event is a group's system message ({"type": ..., ...}: a
	// membership or title change), which has no content; nil otherwise.
	Event []byte
}

// IsGroup reports whether m was sent to a group (it has no recipient).
func (m Message) IsGroup() bool { return m.RecipientID == uuid.Nil }

// InsertMessage writes m with the conversation's next seq, creating the
// conversation (with sender and recipient as its participants) on first use,
// in one round trip (two statements, pipelined). It must run inside a
// transaction: it takes the conversation's row lock until commit, and on
// ErrNotParticipant it has already advanced the seq counter, which the
// caller's rollback undoes.
func InsertMessage(ctx context.Context, tx pgx.Tx, m NewMessage) (InsertedMessage, error) {
	b := &pgx.Batch{}
	queueInsertMessage(b, m)
	return readInsertMessage(tx.SendBatch(ctx, b), m.RecipientID == uuid.Nil)
}

// queueInsertMessage queues the two statements that store m: AllocateSeq,
// then InsertMessage, which reads the seq AllocateSeq took. They stay two
// statements so the second's snapshot is taken after the first has waited
// for the conversation's row lock (see InsertMessage in messages.sql).
func queueInsertMessage(b *pgx.Batch, m NewMessage) {
	if m.RecipientID == uuid.Nil {
		b.Queue(dbsqlc.AllocateGroupSeq, m.ConversationID)
		// In the order of dbsqlc.InsertGroupMessageParams.
		b.Queue(dbsqlc.InsertGroupMessage, m.ID, int16(m.Priority), m.Content, m.Ciphertext, m.KeyID, m.Attachments,
			m.SenderID, m.ConversationID)
		return
	}
	b.Queue(dbsqlc.AllocateSeq, m.ConversationID)
	// The arguments in the order of dbsqlc.InsertMessageParams ($1…$9),
	// which follows their first use in the statement's text; the db,
	// outbox and gateway tests fail if it changes and this does not.
	b.Queue(dbsqlc.InsertMessage, m.SenderID, m.RecipientID, m.ConversationID, m.ID,
		int16(m.Priority), m.Content, m.Ciphertext, m.KeyID, m.Attachments)
}

// readInsertMessage reads the results of queueInsertMessage's statements,
// the next ones in br, and closes br.
func readInsertMessage(br pgx.BatchResults, group bool) (InsertedMessage, error) {
	defer br.Close()
	var version int64
	if group {
		var seq int64
		err := br.QueryRow().Scan(&seq, &version)
		if errors.Is(err, pgx.ErrNoRows) {
			// No such group: the insert after it writes nothing either.
			_ = br.Close()
			return InsertedMessage{}, ErrNotParticipant
		}
		if err != nil {
			return InsertedMessage{}, translate("allocating seq", err)
		}
	} else if _, err := br.Exec(); err != nil {
		return InsertedMessage{}, translate("allocating seq", err)
	}
	var row dbsqlc.InsertMessageRow
	err := br.QueryRow().Scan(&row.ID, &row.ConversationID, &row.Seq, &row.Status, &row.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return InsertedMessage{}, ErrNotParticipant
	}
	if err != nil {
		return InsertedMessage{}, translate("inserting message", err)
	}
	if err := br.Close(); err != nil {
		return InsertedMessage{}, translate("inserting message", err)
	}
	return InsertedMessage{
		ID:                row.ID,
		ConversationID:    row.ConversationID,
		Seq:               row.Seq,
		Status:            MessageStatus(row.Status),
		CreatedAt:         row.CreatedAt,
		MembershipVersion: version,
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

// GetMessages returns the messages with these ids, by id; an id without a
// message is missing from the map. One statement.
func GetMessages(ctx context.Context, q Querier, ids []uuid.UUID) (map[uuid.UUID]Message, error) {
	rows, err := dbsqlc.New(q).GetMessages(ctx, ids)
	if err != nil {
		return nil, translate("getting messages", err)
	}
	out := make(map[uuid.UUID]Message, len(rows))
	for _, r := range rows {
		out[r.ID] = messageFromRow(r)
	}
	return out, nil
}

func messageFromRow(r dbsqlc.Message) Message {
	return Message{
		ID:             r.ID,
		ConversationID: r.ConversationID,
		SenderID:       r.SenderID,
		RecipientID:    recipientOf(r.RecipientID),
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
		Attachments:    r.Attachments,
		Event:          r.Event,
	}
}

// recipientOf is a stored recipient id, uuid.Nil for a group message.
func recipientOf(id *uuid.UUID) uuid.UUID {
	if id == nil {
		return uuid.Nil
	}
	return *id
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
