package outbox_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/validation"
)

// sealingOutbox returns an outbox on b's database that seals with a test
// keyring.
func sealingOutbox(t *testing.T, b *testBundle) (*outbox.Outbox, *keyring.Sealer) {
	t.Helper()
	ring, err := keyring.Parse("k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, keyring.KeySize)), "k1")
	require.NoError(t, err)
	sealer := keyring.NewSealer(ring)
	client, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(client, outbox.Config{MaxContentBytes: 1024, Sealer: sealer})
	require.NoError(t, err)
	return ob, sealer
}

// Encrypt: only ciphertext is stored, and it opens to the content.
func TestSendSealsWhenAsked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ob, sealer := sealingOutbox(t, b)
	m := newMessage()
	m.Encrypt = true

	res, err := ob.Send(ctx, b.pool, m)
	require.NoError(t, err)
	require.True(t, res.Encrypted)
	stored, err := db.GetMessage(ctx, b.pool, res.ID)
	require.NoError(t, err)
	require.Nil(t, stored.Content, "no plaintext stored")
	require.NotEmpty(t, stored.Ciphertext)
	require.NotContains(t, string(stored.Ciphertext), "secret plans")
	plain, err := sealer.Open(ctx, b.pool, stored)
	require.NoError(t, err)
	require.Equal(t, m.Content, plain)
	for _, j := range jobRows(t, b.pool) {
		require.NotContains(t, string(j.Args), "secret plans", "job %s", j.Kind)
	}

	// Inside the caller's transaction too.
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	m = newMessage()
	m.Encrypt = true
	res, err = ob.SendTx(ctx, tx, m)
	require.NoError(t, err)
	require.True(t, res.Encrypted)
	require.NoError(t, tx.Commit(ctx))
}

// Asked to seal without keys, or given bad input to seal: refused
// before anything (not even a conversation key) is written.
func TestSealingRefusalsWriteNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	sealing, _ := sealingOutbox(t, b)

	m := newMessage()
	m.Encrypt = true
	_, err := b.outbox.Send(ctx, b.pool, m)
	require.ErrorIs(t, err, outbox.ErrNoSealer)

	bad := newMessage()
	bad.Encrypt = true
	bad.RecipientID = bad.SenderID
	_, err = sealing.Send(ctx, b.pool, bad)
	var ve *validation.Error
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "recipient_id", ve.Field)

	both := newMessage()
	both.Encrypt, both.Content, both.Ciphertext, both.KeyID = true, "", []byte("x"), "k1.1"
	_, err = sealing.Send(ctx, b.pool, both)
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "ciphertext", ve.Field)

	require.Zero(t, count(t, b.pool, "messages"))
	require.Zero(t, count(t, b.pool, "conversation_keys"))
	require.Zero(t, count(t, b.pool, "river_job"))
}

// A plaintext message to a conversation switched to encrypted is sealed
// by an outbox with keys, and refused by one without.
func TestPlaintextToAnEncryptedConversationIsSealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	sealing, _ := sealingOutbox(t, b)
	first, err := b.outbox.Send(ctx, b.pool, newMessage())
	require.NoError(t, err)
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = sealing.EncryptConversationTx(ctx, tx, first.ConversationID)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	m := newMessage()
	m.ConversationID = first.ConversationID
	stored, err := db.GetMessage(ctx, b.pool, first.ID)
	require.NoError(t, err)
	m.SenderID, m.RecipientID = stored.SenderID, stored.RecipientID

	_, err = b.outbox.Send(ctx, b.pool, m)
	require.ErrorIs(t, err, outbox.ErrNoSealer)
	require.ErrorIs(t, err, outbox.ErrEncryptedConversation)

	res, err := sealing.Send(ctx, b.pool, m)
	require.NoError(t, err)
	require.True(t, res.Encrypted)
	require.Equal(t, int64(2), res.Seq, "the refused try took no seq")
}
