package db

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// WrappedKey is one generation of a conversation's data key as stored:
// wrapped by KEKID.
type WrappedKey struct {
	ConversationID uuid.UUID
	// Generation numbers a conversation's data keys from 1; the newest
	// seals new messages.
	Generation int
	KEKID      string
	Wrapped    []byte
	CreatedAt  time.Time
}

// InsertConversationKey stores a generation of a conversation's wrapped
// data key unless that generation exists already.
func InsertConversationKey(ctx context.Context, q Querier, k WrappedKey) error {
	return translate("storing conversation key", dbsqlc.New(q).InsertConversationKey(ctx, dbsqlc.InsertConversationKeyParams{
		ConversationID: k.ConversationID, Generation: int32(k.Generation), KekID: k.KEKID, WrappedKey: k.Wrapped,
	}))
}

// GetConversationKey returns a conversation's newest wrapped data key, or
// ErrNotFound (never encrypted, or shredded).
func GetConversationKey(ctx context.Context, q Querier, conversation uuid.UUID) (WrappedKey, error) {
	r, err := dbsqlc.New(q).GetConversationKey(ctx, conversation)
	if err != nil {
		return WrappedKey{}, translate("getting conversation key", err)
	}
	return fromKeyRow(r), nil
}

// GetConversationKeyGeneration returns one generation of a conversation's
// wrapped data key, or ErrNotFound (retired, shredded or never made).
func GetConversationKeyGeneration(ctx context.Context, q Querier, conversation uuid.UUID, generation int) (WrappedKey, error) {
	r, err := dbsqlc.New(q).GetConversationKeyGeneration(ctx, dbsqlc.GetConversationKeyGenerationParams{
		ConversationID: conversation, Generation: int32(generation),
	})
	if err != nil {
		return WrappedKey{}, translate("getting conversation key", err)
	}
	return fromKeyRow(dbsqlc.GetConversationKeyRow(r)), nil
}

// ListConversationKeys returns every generation of a conversation's data
// key, oldest first.
func ListConversationKeys(ctx context.Context, q Querier, conversation uuid.UUID) ([]WrappedKey, error) {
	rows, err := dbsqlc.New(q).ListConversationKeys(ctx, conversation)
	if err != nil {
		return nil, translate("listing conversation keys", err)
	}
	out := make([]WrappedKey, len(rows))
	for i, r := range rows {
		out[i] = fromKeyRow(dbsqlc.GetConversationKeyRow(r))
	}
	return out, nil
}

// LockConversationKeyGeneration locks a key generation in tx (FOR SHARE)
// so it cannot be retired before tx commits, or returns ErrNotFound when
// it is already gone. A transaction storing a message sealed with that
// generation takes it first.
func LockConversationKeyGeneration(ctx context.Context, tx pgx.Tx, conversation uuid.UUID, generation int) error {
	_, err := dbsqlc.New(tx).LockConversationKeyGeneration(ctx, dbsqlc.LockConversationKeyGenerationParams{
		ConversationID: conversation, Generation: int32(generation),
	})
	return translate("locking conversation key", err)
}

// RewrapConversationKey replaces a key generation wrapped by oldKEK with
// k; it reports whether the row still had oldKEK (a concurrent rotation
// wins).
func RewrapConversationKey(ctx context.Context, q Querier, k WrappedKey, oldKEK string) (bool, error) {
	n, err := dbsqlc.New(q).RewrapConversationKey(ctx, dbsqlc.RewrapConversationKeyParams{
		ConversationID: k.ConversationID, Generation: int32(k.Generation), KekID: k.KEKID, WrappedKey: k.Wrapped, OldKekID: oldKEK,
	})
	return n == 1, translate("rewrapping conversation key", err)
}

// RetireOlderConversationKeys deletes a conversation's key generations
// older than generation, waiting for transactions that hold one of them
// (LockConversationKeyGeneration), and returns how many it deleted.
func RetireOlderConversationKeys(ctx context.Context, tx pgx.Tx, conversation uuid.UUID, generation int) (int64, error) {
	n, err := dbsqlc.New(tx).RetireOlderConversationKeys(ctx, dbsqlc.RetireOlderConversationKeysParams{
		ConversationID: conversation, Generation: int32(generation),
	})
	return n, translate("retiring conversation keys", err)
}

// ConversationsNotUnderKEK returns the conversations holding a data key
// not wrapped by kek.
func ConversationsNotUnderKEK(ctx context.Context, q Querier, kek string) ([]uuid.UUID, error) {
	ids, err := dbsqlc.New(q).ConversationsNotUnderKEK(ctx, kek)
	return ids, translate("listing conversations to rotate", err)
}

// ShredDeletedConversationKeys deletes the data keys of conversations every
// participant deleted and returns how many.
func ShredDeletedConversationKeys(ctx context.Context, q Querier) (int64, error) {
	n, err := dbsqlc.New(q).ShredDeletedConversationKeys(ctx)
	return n, translate("shredding conversation keys", err)
}

func fromKeyRow(r dbsqlc.GetConversationKeyRow) WrappedKey {
	return WrappedKey{ConversationID: r.ConversationID, Generation: int(r.Generation), KEKID: r.KekID, Wrapped: r.WrappedKey, CreatedAt: r.CreatedAt}
}
