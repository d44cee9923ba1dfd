package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/gateway"
	"github.com/msgrunner/msgrunner/internal/keyring"
)

func TestEncryptedMessagesNeverLeavePlaintextBehind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok, bobTok := b.token(t, alice), b.token(t, bob)
	secret := "the launch code is 0000"

	// Listen on Bob's raw channel to see exactly what crosses Redis.
	raw := b.rdb.Subscribe(ctx, b.keys.UserChannel(bob))
	defer raw.Close()
	_, err := raw.Receive(ctx)
	require.NoError(t, err)
	bobWS := b.dial(t, 1, bobTok)

	code, res := b.post(t, 0, aliceTok, map[string]any{"conversation_id": conv, "recipient_id": bob, "content": secret, "requires_encryption": true})
	require.Equal(t, http.StatusCreated, code, res)
	id := uuid.MustParse(res["id"].(string))

	f := bobWS.expect("message", nil)
	require.Equal(t, secret, f["content"], "the recipient's gateway decrypts")
	require.Equal(t, true, f["encrypted"])
	wire := <-raw.Channel()
	require.NotContains(t, wire.Payload, "launch", "Redis carries no plaintext")

	m, err := db.GetMessage(ctx, b.pool, id)
	require.NoError(t, err)
	require.Nil(t, m.Content)
	require.False(t, bytes.Contains(m.Ciphertext, []byte("launch")))
	require.Zero(t, b.count(t, `SELECT count(*) FROM river_job WHERE args::text LIKE '%launch%'`), "job args carry no plaintext")
	require.Zero(t, b.count(t, `SELECT count(*) FROM search_backlog`), "an encrypted message never waits for indexing")
	require.Zero(t, b.count(t, `SELECT count(*) FROM message_search`), "encrypted messages are not indexed")
	keys, err := b.rdb.Keys(ctx, b.keys.Prefix+"*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		dump, _ := b.rdb.Dump(ctx, k).Result()
		require.NotContains(t, dump, "launch", "Redis key %s holds plaintext", k)
	}

	history := func() map[string]any {
		code, res := do(t, http.MethodGet, b.nodes[0].base+"/v1/conversations/"+conv.String()+"/messages", bobTok, nil)
		require.Equal(t, http.StatusOK, code, res)
		return res["messages"].([]any)[0].(map[string]any)
	}
	require.Equal(t, secret, history()["content"])
	bobWS.write(map[string]any{"type": "resume", "after": map[string]int64{}})
	require.Equal(t, secret, bobWS.expect("message", nil)["content"])

	// Rotation to k2 keeps it readable (the data key is re-wrapped, not changed).
	k := func(c byte) string {
		return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{c}, keyring.KeySize))
	}
	next, err := keyring.Parse("k1:"+k(1)+",k2:"+k(2), "k2")
	require.NoError(t, err)
	changed, err := keyring.NewSealer(next).Rotate(ctx, b.pool, conv)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM conversation_keys WHERE kek_id = 'k2'`))
	require.Equal(t, secret, history()["content"])

	// Tampering is detected, not served.
	_, err = b.pool.Exec(ctx, `UPDATE messages SET ciphertext = set_byte(ciphertext, 20, get_byte(ciphertext, 20) # 1) WHERE id = $1`, id)
	require.NoError(t, err)
	h := history()
	require.Empty(t, h["content"])
	require.Contains(t, h["unreadable"], "tampered")

	// Crypto-shredding: with the key gone nothing can be read.
	_, err = b.pool.Exec(ctx, `DELETE FROM conversation_keys WHERE conversation_id = $1`, conv)
	require.NoError(t, err)
	require.Contains(t, history()["unreadable"], "destroyed")

	// Nothing read back through history or resume was cached in plaintext.
	keys, err = b.rdb.Keys(ctx, b.keys.Prefix+"*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		dump, _ := b.rdb.Dump(ctx, k).Result()
		require.NotContains(t, dump, "launch", "Redis key %s holds plaintext", k)
	}

	// A scheduled message is held sealed, never in plaintext.
	code, res = b.post(t, 0, aliceTok, map[string]any{"conversation_id": conv, "recipient_id": bob, "content": "launch later", "requires_encryption": true, "delay_ms": 3600000})
	require.Equal(t, http.StatusAccepted, code, res)
	require.Zero(t, b.count(t, `SELECT count(*) FROM scheduled_messages WHERE content IS NOT NULL OR position('launch'::bytea in ciphertext) > 0`))
}
