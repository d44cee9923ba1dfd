package db

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// MarkSentRelaxed moves a pending message to sent (a message already past
// pending is left alone, so retries are no-ops) without waiting for the
// commit to reach disk (synchronous_commit off for this one transaction),
// in one round trip. Use it only where losing the update in a crash is harmless: the
// gateway's fast path and broadcast chunks, whose messages the
// deliver-pending sweep re-publishes while still pending, which clients
// dedupe.
func MarkSentRelaxed(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) error {
	return MarkManySentRelaxed(ctx, pool, []uuid.UUID{id})
}

// MarkManySentRelaxed is MarkSentRelaxed for many messages in one
// statement (a broadcast chunk's fast path).
func MarkManySentRelaxed(ctx context.Context, pool *pgxpool.Pool, ids []uuid.UUID) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit TO OFF")
	b.Queue("UPDATE messages SET status = 'sent', sent_at = now() WHERE id = ANY($1) AND status = 'pending'", ids)
	b.Queue("COMMIT")
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return translate("marking messages sent", err)
	}
	return nil
}

// Receipt is the result of ApplyReceipt.
type Receipt struct {
	SenderID       uuid.UUID
	ConversationID uuid.UUID
	Status         MessageStatus
	DeliveredAt    *time.Time
	ReadAt         *time.Time
}

// ApplyReceipt records that recipient has received ("delivered") or read
// ("read") message id at at. State only moves forward and read implies
// delivered; a receipt that would not advance the state (a duplicate, or
// delivered after read) changes nothing and returns changed=false. An
// unknown message, or one addressed to someone else, also returns
// changed=false.
func ApplyReceipt(ctx context.Context, q Querier, id, recipient uuid.UUID, status MessageStatus, at time.Time) (r Receipt, changed bool, err error) {
	row, err := dbsqlc.New(q).ApplyReceipt(ctx, dbsqlc.ApplyReceiptParams{
		Status: string(status), At: at, ID: id, RecipientID: &recipient,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Receipt{}, false, nil
	}
	if err != nil {
		return Receipt{}, false, translate("applying receipt", err)
	}
	return Receipt{
		SenderID: row.SenderID, ConversationID: row.ConversationID, Status: MessageStatus(row.Status),
		DeliveredAt: row.DeliveredAt, ReadAt: row.ReadAt,
	}, true, nil
}

// RecipientOf returns the sender of message id if recipient is its
// recipient, or ErrNotFound.
func RecipientOf(ctx context.Context, q Querier, id, recipient uuid.UUID) (sender uuid.UUID, err error) {
	row, err := dbsqlc.New(q).GetMessageForRecipient(ctx, dbsqlc.GetMessageForRecipientParams{ID: id, RecipientID: &recipient})
	if err != nil {
		return uuid.Nil, translate("getting message", err)
	}
	return row.SenderID, nil
}

// ListConversationMessages returns up to limit messages of a conversation
// with seq greater than after, in seq order.
func ListConversationMessages(ctx context.Context, q Querier, conversationID uuid.UUID, after int64, limit int) ([]Message, error) {
	rows, err := dbsqlc.New(q).ListConversationMessages(ctx, dbsqlc.ListConversationMessagesParams{
		ConversationID: conversationID, AfterSeq: after, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, translate("listing messages", err)
	}
	return messagesFromRows(rows), nil
}

// ResumeCursor is a position in a resume listing: the last (conversation,
// seq) returned. The zero value starts from the beginning.
type ResumeCursor struct {
	ConversationID uuid.UUID
	Seq            int64
}

// ResumeMessages returns up to limit messages of the user's conversations
// with seq greater than after[conversation] (0 for conversations not in
// after), ordered by conversation and then seq, starting past cursor. Pass
// the last returned message's position as the next cursor to page on.
func ResumeMessages(ctx context.Context, q Querier, user uuid.UUID, after map[uuid.UUID]int64, cursor ResumeCursor, limit int) ([]Message, error) {
	ids := make([]uuid.UUID, 0, len(after))
	seqs := make([]int64, 0, len(after))
	for id, s := range after {
		ids = append(ids, id)
		seqs = append(seqs, s)
	}
	rows, err := dbsqlc.New(q).ResumeMessages(ctx, dbsqlc.ResumeMessagesParams{
		UserID: user, CursorConversation: cursor.ConversationID, CursorSeq: cursor.Seq,
		MaxRows: int32(limit), ConversationIds: ids, AfterSeqs: seqs,
	})
	if err != nil {
		return nil, translate("listing messages to resume", err)
	}
	return messagesFromRows(rows), nil
}

// UnreadCounts returns the number of unread messages addressed to user per
// conversation; conversations with none are absent.
func UnreadCounts(ctx context.Context, q Querier, user uuid.UUID) (map[uuid.UUID]int64, error) {
	rows, err := dbsqlc.New(q).UnreadCounts(ctx, &user)
	if err != nil {
		return nil, translate("counting unread messages", err)
	}
	out := make(map[uuid.UUID]int64, len(rows))
	for _, r := range rows {
		out[r.ConversationID] = r.Unread
	}
	return out, nil
}

// DatabaseNow returns Postgres's clock: cutoffs compared with columns it
// stamped (created_at) come from it, not from this host's clock.
func DatabaseNow(ctx context.Context, q Querier) (time.Time, error) {
	now, err := dbsqlc.New(q).DatabaseNow(ctx)
	return now, translate("reading the database clock", err)
}

// PendingMessagesBefore returns up to limit of the oldest messages still
// pending that were written before before and come after after in
// (created_at, id) order (the zero Message: from the start): what the
// deliver-pending sweep publishes, a page at a time.
func PendingMessagesBefore(ctx context.Context, q Querier, before time.Time, after Message, limit int) ([]Message, error) {
	rows, err := dbsqlc.New(q).PendingMessagesBefore(ctx, dbsqlc.PendingMessagesBeforeParams{
		Before: before, AfterCreatedAt: after.CreatedAt, AfterID: after.ID, MaxRows: int32(min(limit, 1<<20)),
	})
	if err != nil {
		return nil, translate("listing pending messages", err)
	}
	out := make([]Message, len(rows))
	for i, r := range rows {
		out[i] = messageFromRow(r)
	}
	return out, nil
}
