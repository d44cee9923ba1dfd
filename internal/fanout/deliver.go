package fanout

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/db"
)

// FrameOf returns the message frame of a stored message. A message stored
// encrypted gets a frame marked Encrypted without content: plaintext never
// travels through Redis, and the gateway holding the recipient decrypts it
// on the way to the socket.
func FrameOf(m db.Message) MessageFrame {
	fr := MessageFrame{
		Type: FrameMessage, ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq,
		SenderID: m.SenderID, RecipientID: m.RecipientID, CreatedAt: m.CreatedAt,
	}
	fr.Edited = m.EditedAt != nil
	if m.DeletedAt != nil {
		fr.Deleted = true
		return fr
	}
	if len(m.Attachments) > 0 {
		fr.Attachments = m.Attachments
	}
	if m.Content == nil {
		fr.Encrypted = true
		return fr
	}
	fr.Content = *m.Content
	return fr
}

// DeliverManyFast publishes many pending messages and marks them sent
// without waiting for the disk (MarkManySentRelaxed): one Redis round
// trip publishes them all, one statement marks sent those whose frame got
// through (a message Redis refused stays pending without holding back the
// others). It returns how many it published; err is set when none could
// be, or when marking failed.
func (f *Fanout) DeliverManyFast(ctx context.Context, pool *pgxpool.Pool, ms []db.Message) (int, error) {
	sent, err := f.DeliverEach(ctx, pool, ms)
	n := 0
	for _, ok := range sent {
		if ok {
			n++
		}
	}
	return n, err
}

// DeliverEach is DeliverManyFast telling message by message: sent[i]
// reports whether ms[i] was published by this call (false for a message
// already past pending, or one whose frame Redis refused). err is set when
// no frame got through (it wraps ErrUnavailable), or when marking failed
// after publishing (the published ones then stay pending, and the
// deliver-pending sweep or a retry publishes them again). sent is nil
// when a frame could not be encoded.
func (f *Fanout) DeliverEach(ctx context.Context, pool *pgxpool.Pool, ms []db.Message) (sent []bool, err error) {
	sent = make([]bool, len(ms))
	frs := make([]MessageFrame, 0, len(ms))
	at := make([]int, 0, len(ms)) // frs[k] is the frame of ms[at[k]]
	for i, m := range ms {
		if m.Status == db.MessagePending {
			frs = append(frs, FrameOf(m))
			at = append(at, i)
		}
	}
	if len(frs) == 0 {
		return sent, nil
	}
	ok, err := f.publishEach(ctx, frs)
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
		return sent, fmt.Errorf("publishing messages: %w: %w", ErrUnavailable, err)
	}
	if err := db.MarkManySentRelaxed(ctx, pool, ids); err != nil {
		return sent, fmt.Errorf("fanout: published, but %w", err)
	}
	return sent, nil
}
