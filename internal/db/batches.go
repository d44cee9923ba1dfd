package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// ErrDuplicateConversation is returned by InsertMessages when two messages
// share a conversation (their seqs would have to be allocated in order).
var ErrDuplicateConversation = errors.New("messages of one bulk insert must be in distinct conversations")

// InsertMessages is InsertMessage for many plaintext messages in distinct
// conversations, in two statements. If any sender or recipient is not a
// participant it returns ErrNotParticipant, and tx must be rolled back.
func InsertMessages(ctx context.Context, tx pgx.Tx, ms []NewMessage) ([]InsertedMessage, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	convs := make([]uuid.UUID, len(ms))
	seen := make(map[uuid.UUID]bool, len(ms))
	for i, m := range ms {
		if seen[m.ConversationID] {
			return nil, ErrDuplicateConversation
		}
		if m.Content == nil {
			return nil, errors.New("bulk inserts take plaintext messages only")
		}
		seen[m.ConversationID] = true
		convs[i] = m.ConversationID
	}
	q := dbsqlc.New(tx)
	seqRows, err := q.AllocateSeqs(ctx, convs)
	if err != nil {
		return nil, translate("allocating seqs", err)
	}
	seqs := make(map[uuid.UUID]int64, len(seqRows))
	for _, r := range seqRows {
		seqs[r.ID] = r.LastSeq
	}
	p := dbsqlc.InsertMessagesParams{}
	for _, m := range ms {
		p.Ids = append(p.Ids, m.ID)
		p.ConversationIds = append(p.ConversationIds, m.ConversationID)
		p.SenderIds = append(p.SenderIds, m.SenderID)
		p.RecipientIds = append(p.RecipientIds, m.RecipientID)
		p.Seqs = append(p.Seqs, seqs[m.ConversationID])
		p.Priorities = append(p.Priorities, int16(m.Priority))
		p.Contents = append(p.Contents, *m.Content)
	}
	rows, err := q.InsertMessages(ctx, p)
	if err != nil {
		return nil, translate("inserting messages", err)
	}
	if len(rows) != len(ms) {
		return nil, ErrNotParticipant
	}
	created := make(map[uuid.UUID]time.Time, len(rows))
	for _, r := range rows {
		created[r.ID] = r.CreatedAt
	}
	out := make([]InsertedMessage, len(ms))
	for i, m := range ms {
		out[i] = InsertedMessage{ID: m.ID, ConversationID: m.ConversationID, Seq: seqs[m.ConversationID], Status: MessagePending, CreatedAt: created[m.ID]}
	}
	return out, nil
}

// Batch is a broadcast.
type Batch struct {
	ID           uuid.UUID
	SenderID     uuid.UUID
	Content      *string
	Template     *string
	Priority     int
	ChunkSize    int
	ChunkDelay   time.Duration
	Status       string // pending, running, completed, cancelled, failed
	Total        int
	Processed    int
	Failed       int
	Cursor       int
	CurrentChunk int
	CreatedAt    time.Time
	StartedAt    *time.Time
	FinishedAt   *time.Time
	CancelAsked  bool
}

// Percentage is the share of recipients handled (sent or failed), 0–100.
func (b Batch) Percentage() float64 {
	if b.Total == 0 {
		return 0
	}
	return 100 * float64(b.Processed+b.Failed) / float64(b.Total)
}

func batchFromRow(r dbsqlc.Batch) Batch {
	return Batch{
		ID: r.ID, SenderID: r.SenderID, Content: r.Content, Template: r.Template, Priority: int(r.Priority),
		ChunkSize: int(r.ChunkSize), ChunkDelay: time.Duration(r.ChunkDelayMs) * time.Millisecond, Status: string(r.Status),
		Total: int(r.Total), Processed: int(r.Processed), Failed: int(r.Failed), Cursor: int(r.Cursor),
		CurrentChunk: int(r.CurrentChunk), CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		CancelAsked: r.CancelRequestedAt != nil,
	}
}

// BatchRecipient is one recipient of a broadcast, at a 1-based position.
type BatchRecipient struct {
	Position    int
	RecipientID uuid.UUID
	// Variables is a JSON object of template variables.
	Variables []byte
}

// CreateBatch stores a broadcast and its recipients (with COPY).
func CreateBatch(ctx context.Context, tx pgx.Tx, b Batch, recipients []BatchRecipient) (Batch, error) {
	q := dbsqlc.New(tx)
	row, err := q.InsertBatch(ctx, dbsqlc.InsertBatchParams{
		ID: b.ID, SenderID: b.SenderID, Content: b.Content, Template: b.Template, Priority: int16(b.Priority),
		ChunkSize: int32(b.ChunkSize), ChunkDelayMs: int32(b.ChunkDelay.Milliseconds()), Total: int32(len(recipients)),
	})
	if err != nil {
		return Batch{}, translate("creating broadcast", err)
	}
	params := make([]dbsqlc.InsertBatchRecipientsParams, len(recipients))
	for i, r := range recipients {
		params[i] = dbsqlc.InsertBatchRecipientsParams{BatchID: b.ID, Position: int32(r.Position), RecipientID: r.RecipientID, Variables: r.Variables}
	}
	n, err := q.InsertBatchRecipients(ctx, params)
	if err != nil {
		return Batch{}, translate("storing broadcast recipients", err)
	}
	if int(n) != len(recipients) {
		return Batch{}, fmt.Errorf("storing broadcast recipients: wrote %d of %d", n, len(recipients))
	}
	return batchFromRow(row), nil
}

// GetBatch returns broadcast id, or ErrNotFound.
func GetBatch(ctx context.Context, q Querier, id uuid.UUID) (Batch, error) {
	r, err := dbsqlc.New(q).GetBatch(ctx, id)
	if err != nil {
		return Batch{}, translate("getting broadcast", err)
	}
	return batchFromRow(r), nil
}

// LockBatch returns broadcast id locked until tx ends, or ErrNotFound.
func LockBatch(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Batch, error) {
	r, err := dbsqlc.New(tx).GetBatchForUpdate(ctx, id)
	if err != nil {
		return Batch{}, translate("locking broadcast", err)
	}
	return batchFromRow(r), nil
}

// NextBatchChunk returns up to limit recipients after position after.
func NextBatchChunk(ctx context.Context, q Querier, id uuid.UUID, after, limit int) ([]BatchRecipient, error) {
	rows, err := dbsqlc.New(q).BatchChunk(ctx, dbsqlc.BatchChunkParams{BatchID: id, AfterPosition: int32(after), MaxRows: int32(limit)})
	if err != nil {
		return nil, translate("reading broadcast chunk", err)
	}
	out := make([]BatchRecipient, len(rows))
	for i, r := range rows {
		out[i] = BatchRecipient{Position: int(r.Position), RecipientID: r.RecipientID, Variables: r.Variables}
	}
	return out, nil
}

// RecipientOutcome records what happened to one recipient: a message, or
// an error.
type RecipientOutcome struct {
	Position  int
	MessageID uuid.UUID // uuid.Nil on error
	Error     string
}

// FinishChunk records the chunk's outcomes and moves the broadcast's
// cursor past it, in tx.
func FinishChunk(ctx context.Context, tx pgx.Tx, id uuid.UUID, cursor int, outcomes []RecipientOutcome) error {
	p := dbsqlc.MarkBatchRecipientsParams{BatchID: id}
	failed := 0
	for _, o := range outcomes {
		p.Positions = append(p.Positions, int32(o.Position))
		p.MessageIds = append(p.MessageIds, o.MessageID)
		p.Errors = append(p.Errors, o.Error)
		if o.Error != "" {
			failed++
		}
	}
	q := dbsqlc.New(tx)
	if err := q.MarkBatchRecipients(ctx, p); err != nil {
		return translate("recording broadcast recipients", err)
	}
	err := q.AdvanceBatch(ctx, dbsqlc.AdvanceBatchParams{ID: id, Cursor: int32(cursor), Processed: int32(len(outcomes) - failed), Failed: int32(failed)})
	return translate("advancing broadcast", err)
}

// FinishBatch sets a running or pending broadcast's final status.
func FinishBatch(ctx context.Context, q Querier, id uuid.UUID, status string) error {
	return translate("finishing broadcast", dbsqlc.New(q).FinishBatch(ctx, dbsqlc.FinishBatchParams{ID: id, Status: dbsqlc.BatchStatus(status)}))
}

// RequestBatchCancel asks for sender's broadcast id to stop at its next
// chunk boundary and returns its status, or ErrNotFound.
func RequestBatchCancel(ctx context.Context, q Querier, id, sender uuid.UUID) (string, error) {
	s, err := dbsqlc.New(q).RequestBatchCancel(ctx, dbsqlc.RequestBatchCancelParams{ID: id, SenderID: sender})
	return s, translate("cancelling broadcast", err)
}
