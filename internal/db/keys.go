package db

import (
	"context"

	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/db/internal/dbsqlc"
)

// WrappedKey is a conversation's data key as stored: wrapped by KEKID.
type WrappedKey struct {
	ConversationID uuid.UUID
	KEKID          string
	Wrapped        []byte
}

// InsertConversationKey stores a conversation's wrapped data key unless it
// has one already.
func InsertConversationKey(ctx context.Context, q Querier, k WrappedKey) error {
	return translate("storing conversation key", dbsqlc.New(q).InsertConversationKey(ctx, dbsqlc.InsertConversationKeyParams{
		ConversationID: k.ConversationID, KekID: k.KEKID, WrappedKey: k.Wrapped,
	}))
}

// GetConversationKey returns a conversation's wrapped data key, or
// ErrNotFound (never encrypted, or shredded).
func GetConversationKey(ctx context.Context, q Querier, conversation uuid.UUID) (WrappedKey, error) {
	r, err := dbsqlc.New(q).GetConversationKey(ctx, conversation)
	if err != nil {
		return WrappedKey{}, translate("getting conversation key", err)
	}
	return WrappedKey{ConversationID: r.ConversationID, KEKID: r.KekID, Wrapped: r.WrappedKey}, nil
}

// RewrapConversationKey replaces a key wrapped by oldKEK with k; it
// reports whether the row still had oldKEK (a concurrent rotation wins).
func RewrapConversationKey(ctx context.Context, q Querier, k WrappedKey, oldKEK string) (bool, error) {
	n, err := dbsqlc.New(q).RewrapConversationKey(ctx, dbsqlc.RewrapConversationKeyParams{
		ConversationID: k.ConversationID, KekID: k.KEKID, WrappedKey: k.Wrapped, OldKekID: oldKEK,
	})
	return n == 1, translate("rewrapping conversation key", err)
}

// ShredDeletedConversationKeys deletes the data keys of conversations every
// participant deleted and returns how many.
func ShredDeletedConversationKeys(ctx context.Context, q Querier) (int64, error) {
	n, err := dbsqlc.New(q).ShredDeletedConversationKeys(ctx)
	return n, translate("shredding conversation keys", err)
}
