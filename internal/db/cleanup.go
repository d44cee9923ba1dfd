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

// DeleteOldMessages deletes up to limit delivered or read messages created
// before before that no live job refers to, and returns how many.
func DeleteOldMessages(ctx context.Context, q Querier, before time.Time, limit int) (int64, error) {
	n, err := dbsqlc.New(q).DeleteOldMessages(ctx, dbsqlc.DeleteOldMessagesParams{Before: before, MaxRows: int32(limit)})
	return n, translate("deleting old messages", err)
}

// CountOldMessages counts what DeleteOldMessages would delete in all.
func CountOldMessages(ctx context.Context, q Querier, before time.Time) (int64, error) {
	n, err := dbsqlc.New(q).CountOldMessages(ctx, before)
	return n, translate("counting old messages", err)
}

// MarkConversationDeleted marks conversation deleted for user (and for all
// once every participant has). It returns ErrNotFound when user is not a
// participant, and whether the conversation is now deleted for everyone.
// The conversation's row is locked first, so two participants deleting at
// once cannot both miss that the other has.
func MarkConversationDeleted(ctx context.Context, pool *pgxpool.Pool, conversation, user uuid.UUID) (forAll bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", conversation); err != nil {
			return err
		}
		r, err := dbsqlc.New(tx).MarkConversationDeletedFor(ctx, dbsqlc.MarkConversationDeletedForParams{ConversationID: conversation, UserID: user})
		if err != nil {
			return err
		}
		if r.Marked == 0 {
			return ErrNotFound
		}
		forAll = r.DeletedForAll > 0
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return false, ErrNotFound
	}
	return forAll, translate("deleting conversation", err)
}

// DeleteDeletedConversations deletes up to limit messages of conversations
// every participant deleted (except ones not yet delivered or with live
// jobs), then up to limit such conversations left empty; it returns both
// counts.
func DeleteDeletedConversations(ctx context.Context, q Querier, limit int) (messages, conversations int64, err error) {
	s := dbsqlc.New(q)
	messages, err = s.DeleteDeletedConversationMessages(ctx, int32(limit))
	if err != nil {
		return 0, 0, translate("deleting messages of deleted conversations", err)
	}
	conversations, err = s.DeleteEmptyDeletedConversations(ctx, int32(limit))
	return messages, conversations, translate("deleting deleted conversations", err)
}

// CountDeletedConversationMessages counts the messages
// DeleteDeletedConversations would delete in all.
func CountDeletedConversationMessages(ctx context.Context, q Querier) (int64, error) {
	n, err := dbsqlc.New(q).CountDeletedConversationMessages(ctx)
	return n, translate("counting messages of deleted conversations", err)
}

// Attachment is a stored file's record.
type Attachment struct {
	ID          uuid.UUID
	OwnerID     uuid.UUID
	ContentType string
	SizeBytes   int64
	StorageKey  string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	// MessageID is the message that carries the attachment; nil until it
	// is sent with one.
	MessageID *uuid.UUID
}

// InsertAttachment records a stored file.
func InsertAttachment(ctx context.Context, q Querier, a Attachment) (Attachment, error) {
	r, err := dbsqlc.New(q).InsertAttachment(ctx, dbsqlc.InsertAttachmentParams{
		ID: a.ID, OwnerID: a.OwnerID, ContentType: a.ContentType, SizeBytes: a.SizeBytes, StorageKey: a.StorageKey, ExpiresAt: a.ExpiresAt,
	})
	if err != nil {
		return Attachment{}, translate("recording attachment", err)
	}
	return Attachment{ID: r.ID, OwnerID: r.OwnerID, ContentType: r.ContentType, SizeBytes: r.SizeBytes, StorageKey: r.StorageKey, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}, nil
}

// GetAttachment returns attachment id, or ErrNotFound.
func GetAttachment(ctx context.Context, q Querier, id uuid.UUID) (Attachment, error) {
	r, err := dbsqlc.New(q).GetAttachment(ctx, id)
	if err != nil {
		return Attachment{}, translate("getting attachment", err)
	}
	return Attachment{ID: r.ID, OwnerID: r.OwnerID, ContentType: r.ContentType, SizeBytes: r.SizeBytes, StorageKey: r.StorageKey,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, MessageID: r.MessageID}, nil
}

// ExpiredAttachments returns up to limit attachments expired at now.
func ExpiredAttachments(ctx context.Context, q Querier, now time.Time, limit int) ([]Attachment, error) {
	rows, err := dbsqlc.New(q).ExpiredAttachments(ctx, dbsqlc.ExpiredAttachmentsParams{Now: now, MaxRows: int32(limit)})
	if err != nil {
		return nil, translate("listing expired attachments", err)
	}
	out := make([]Attachment, len(rows))
	for i, r := range rows {
		out[i] = Attachment{ID: r.ID, StorageKey: r.StorageKey}
	}
	return out, nil
}

// CountExpiredAttachments counts attachments expired at now.
func CountExpiredAttachments(ctx context.Context, q Querier, now time.Time) (int64, error) {
	n, err := dbsqlc.New(q).CountExpiredAttachments(ctx, now)
	return n, translate("counting expired attachments", err)
}

// DeleteAttachments deletes attachment records.
func DeleteAttachments(ctx context.Context, q Querier, ids []uuid.UUID) (int64, error) {
	n, err := dbsqlc.New(q).DeleteAttachments(ctx, ids)
	return n, translate("deleting attachments", err)
}
