package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/clocktest"
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

	past, err := New(secret, WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) }))
	require.NoError(t, err)
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

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrMissing},
		{"not a token", "not.a.token", ErrInvalid},
		{"signed with another secret", foreign, ErrInvalid},
		{"expired", expired, ErrExpired},
		{"no expiry", noExpiry, ErrInvalid},
		{"subject not a uuid", badSubject, ErrBadSubject},
		{"HS512", hs512, ErrInvalid},
		{"alg none", none, ErrInvalid},
		{"signature altered", foreign[:len(foreign)-2] + "xx", ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := a.Verify(tc.token)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

// TestExpiryFollowsTheClock moves an injected clock across a token's expiry
// and the Leeway after it.
func TestExpiryFollowsTheClock(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	a, err := New(secret, WithClock(clock.Now))
	require.NoError(t, err)
	user := uuid.New()
	tok, err := a.Mint(user, time.Minute)
	require.NoError(t, err)

	got, err := a.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, user, got)

	clock.Advance(time.Minute + Leeway - time.Second)
	_, err = a.Verify(tok)
	require.NoError(t, err, "expired, but within the leeway")

	clock.Advance(2 * time.Second)
	_, err = a.Verify(tok)
	require.ErrorIs(t, err, ErrExpired, "past expiry and leeway")

	// A token minted by an Authority on another clock is judged by the
	// verifier's clock.
	plain, err := New(secret)
	require.NoError(t, err)
	_, err = plain.Verify(tok)
	require.ErrorIs(t, err, ErrExpired, "minted in March 2026 for a minute")
}

func TestNilClockKeepsTheRealOne(t *testing.T) {
	t.Parallel()
	a, err := New(secret, WithClock(nil))
	require.NoError(t, err)
	tok, err := a.Mint(uuid.New(), time.Hour)
	require.NoError(t, err)
	_, err = a.Verify(tok)
	require.NoError(t, err)
}

func TestShortSecretRejected(t *testing.T) {
	t.Parallel()
	_, err := New([]byte("short"))
	require.ErrorIs(t, err, ErrShortSecret)
}
