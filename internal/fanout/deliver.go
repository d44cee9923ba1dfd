package fanout

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/db"
)

// ErrNotDeliverable is returned by Deliver for a message it cannot put in a
// frame: one stored encrypted, until the gateway can decrypt.
var ErrNotDeliverable = errors.New("fanout: message is stored encrypted and this build cannot decrypt it")

// FrameOf returns the message frame of a stored message. A message stored
// encrypted gets a frame marked Encrypted, without content, and
// ErrNotDeliverable.
func FrameOf(m db.Message) (MessageFrame, error) {
	fr := MessageFrame{
		Type: FrameMessage, ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq,
		SenderID: m.SenderID, RecipientID: m.RecipientID, CreatedAt: m.CreatedAt,
	}
	fr.Edited = m.EditedAt != nil
	if m.DeletedAt != nil {
		fr.Deleted = true
		return fr, nil
	}
	if m.Content == nil {
		fr.Encrypted = true
		return fr, ErrNotDeliverable
	}
	fr.Content = *m.Content
	return fr, nil
}

// Deliver publishes a pending message to its recipient and then marks it
// sent. It is what the send-message job does, and what a gateway does
// right after committing a message so the recipient need not wait for the
// job. A message already past pending is left alone (delivered=false): its
// frame went out before. If publishing fails the message stays pending and
// the error is returned, so the job retries; if marking fails after the
// publish, a retry publishes again, which clients absorb by deduping on id.
func (f *Fanout) Deliver(ctx context.Context, q db.Querier, m db.Message) (delivered bool, err error) {
	return f.deliver(ctx, m, func() error { _, err := db.MarkSent(ctx, q, m.ID); return err })
}

// DeliverFast is Deliver for the gateway's fast path: it marks the message
// sent without waiting for that commit to reach disk, which takes a disk
// flush off every message's path. If the mark is lost in a crash the
// message stays pending and its send-message job publishes it again.
func (f *Fanout) DeliverFast(ctx context.Context, pool *pgxpool.Pool, m db.Message) (delivered bool, err error) {
	return f.deliver(ctx, m, func() error { return db.MarkSentRelaxed(ctx, pool, m.ID) })
}

func (f *Fanout) deliver(ctx context.Context, m db.Message, mark func() error) (bool, error) {
	if m.Status != db.MessagePending {
		return false, nil
	}
	fr, err := FrameOf(m)
	if err != nil {
		return false, err
	}
	if err := f.PublishMessage(ctx, fr); err != nil {
		return false, err
	}
	if err := mark(); err != nil {
		return true, fmt.Errorf("fanout: published, but %w", err)
	}
	return true, nil
}
