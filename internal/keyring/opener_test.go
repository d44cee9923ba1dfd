package keyring_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/keyring"
)

// An Opener reads a conversation's key once: after the key row is gone it
// still opens more messages of that conversation, while a fresh Opener
// (and Sealer.Open) reports the key destroyed.
func TestOpenerReadsEachKeyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	ring, err := keyring.Parse("k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, keyring.KeySize)), "k1")
	require.NoError(t, err)
	s := keyring.NewSealer(ring)
	conv := uuid.New()
	msg := func(text string) db.Message {
		id := uuid.New()
		ct, label, err := s.Seal(ctx, pool, conv, id, text)
		require.NoError(t, err)
		return db.Message{ID: id, ConversationID: conv, Ciphertext: ct, KeyID: &label}
	}
	first, second := msg("first"), msg("second")

	op := s.NewOpener()
	plain, err := op.Open(ctx, pool, first)
	require.NoError(t, err)
	require.Equal(t, "first", plain)
	_, err = pool.Exec(ctx, `DELETE FROM conversation_keys WHERE conversation_id = $1`, conv)
	require.NoError(t, err)
	plain, err = op.Open(ctx, pool, second)
	require.NoError(t, err, "the key came from the Opener's cache")
	require.Equal(t, "second", plain)

	_, err = s.NewOpener().Open(ctx, pool, second)
	require.ErrorIs(t, err, keyring.ErrShredded)
	_, err = s.Open(ctx, pool, second)
	require.ErrorIs(t, err, keyring.ErrShredded)
}
