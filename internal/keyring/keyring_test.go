package keyring

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func key(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, KeySize)) }

func TestParseRejectsBadConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, keys, active string
		want               string // in the error
	}{
		{"short key", "k1:" + base64.StdEncoding.EncodeToString([]byte("short")), "k1", "32 bytes"},
		{"id twice", "k1:" + key(1) + ",k1:" + key(2), "k1", "appears twice"},
		{"active key missing", "k1:" + key(1), "k2", "not in the keyring"},
		{"no active key", "k1:" + key(1), "", "no active key"},
		{"key not base64", "k1:@@@", "k1", "not valid base64"},
		{"no id", "justakey", "k1", "is not id:<base64 key>"},
		{"no keys", " , ", "k1", "no keys given"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.keys, tc.active)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), key(1), "key material never appears in errors")
		})
	}
	r, err := Parse("k1:"+key(1)+", k2:"+key(2), "k2")
	require.NoError(t, err)
	require.Equal(t, []string{"k1", "k2"}, r.IDs())
	require.Equal(t, "k2", r.Active())
}

func TestSealOpenRotateAndTamper(t *testing.T) {
	t.Parallel()
	old, err := Parse("k1:"+key(1), "k1")
	require.NoError(t, err)
	conv := []byte("conversation-1")
	wrapped, kek, err := old.NewDataKey(conv)
	require.NoError(t, err)
	dk, err := old.Unwrap(wrapped, kek, conv)
	require.NoError(t, err)
	sealed, err := dk.Seal([]byte("the secret plan"), []byte("msg-1"))
	require.NoError(t, err)
	require.False(t, bytes.Contains(sealed, []byte("secret")))

	// Rotation: the new active key re-wraps; old messages stay readable.
	rotated, err := Parse("k1:"+key(1)+",k2:"+key(2), "k2")
	require.NoError(t, err)
	rewrapped, kek2, err := rotated.Rewrap(wrapped, kek, conv)
	require.NoError(t, err)
	require.Equal(t, "k2", kek2)
	dk2, err := rotated.Unwrap(rewrapped, kek2, conv)
	require.NoError(t, err)
	plain, err := dk2.Open(sealed, []byte("msg-1"))
	require.NoError(t, err)
	require.Equal(t, "the secret plan", string(plain))

	// Tampering, a different message id, another conversation's context,
	// an unknown key: all refused.
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	_, err = dk2.Open(tampered, []byte("msg-1"))
	require.ErrorIs(t, err, ErrOpen)
	_, err = dk2.Open(sealed, []byte("msg-2"))
	require.ErrorIs(t, err, ErrOpen)
	_, err = rotated.Unwrap(rewrapped, kek2, []byte("conversation-2"))
	require.ErrorIs(t, err, ErrOpen)
	only1, _ := Parse("k1:"+key(1), "k1")
	_, err = only1.Unwrap(rewrapped, "k2", conv)
	require.ErrorIs(t, err, ErrUnknownKey)
	require.True(t, strings.Contains(err.Error(), "k2"))
}
