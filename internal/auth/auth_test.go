package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

var secret = []byte(strings.Repeat("s", 32))

func TestMintAndVerify(t *testing.T) {
	t.Parallel()
	a, err := New(secret)
	require.NoError(t, err)
	user := uuid.New()
	tok, err := a.Mint(user, time.Hour)
	require.NoError(t, err)
	got, err := a.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, user, got)
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	a, err := New(secret)
	require.NoError(t, err)
	user := uuid.New()

	other, err := New([]byte(strings.Repeat("o", 32)))
	require.NoError(t, err)
	foreign, err := other.Mint(user, time.Hour)
	require.NoError(t, err)

	past := &Authority{secret: secret, now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}
	expired, err := past.Mint(user, time.Hour)
	require.NoError(t, err)

	sign := func(method jwt.SigningMethod, key any, claims jwt.Claims) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		require.NoError(t, err)
		return s
	}
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	noExpiry := sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: user.String()})
	badSubject := sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp})
	hs512 := sign(jwt.SigningMethodHS512, secret, jwt.RegisteredClaims{Subject: user.String(), ExpiresAt: exp})
	none := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.RegisteredClaims{Subject: user.String(), ExpiresAt: exp})

	cases := map[string]error{
		"":                              ErrMissing,
		"not.a.token":                   ErrInvalid,
		foreign:                         ErrInvalid,
		expired:                         ErrExpired,
		noExpiry:                        ErrInvalid,
		badSubject:                      ErrBadSubject,
		hs512:                           ErrInvalid,
		none:                            ErrInvalid,
		foreign[:len(foreign)-2] + "xx": ErrInvalid,
	}
	for tok, want := range cases {
		_, err := a.Verify(tok)
		require.ErrorIs(t, err, want, tok)
	}
}

func TestShortSecretRejected(t *testing.T) {
	t.Parallel()
	_, err := New([]byte("short"))
	require.ErrorIs(t, err, ErrShortSecret)
}
