package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestVerifyRefusesEveryKindOfBadToken is the table of the issue's
// security list: wrong algorithm, signature, issuer, audience, expiry and
// validity start, each refused with the error that says so.
func TestVerifyRefusesEveryKindOfBadToken(t *testing.T) {
	t.Parallel()
	const issuer, audience = "msgrunner-test", "msgrunner-api"
	a, err := New(secret, WithIssuer(issuer), WithAudience(audience))
	require.NoError(t, err)
	user := uuid.New()
	now := time.Now()
	exp := jwt.NewNumericDate(now.Add(time.Hour))
	good := func() jwt.RegisteredClaims {
		return jwt.RegisteredClaims{Issuer: issuer, Audience: jwt.ClaimStrings{audience}, Subject: user.String(),
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: exp}
	}
	with := func(edit func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := good()
		edit(&c)
		return c
	}
	sign := func(method jwt.SigningMethod, key any, claims jwt.Claims) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		require.NoError(t, err)
		return s
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	minted, err := a.Mint(user, time.Hour)
	require.NoError(t, err)
	got, err := a.Verify(minted)
	require.NoError(t, err, "Mint sets the issuer and audience Verify requires")
	require.Equal(t, user, got)
	handmade := sign(jwt.SigningMethodHS256, secret, good())
	_, err = a.Verify(handmade)
	require.NoError(t, err)

	parts := strings.Split(handmade, ".")
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good()), ErrInvalid},
		{"alg none, empty signature on a real header", parts[0] + "." + parts[1] + ".", ErrInvalid},
		{"RS256", sign(jwt.SigningMethodRS256, rsaKey, good()), ErrInvalid},
		{"HS512 with the right secret", sign(jwt.SigningMethodHS512, secret, good()), ErrInvalid},
		{"HS384 with the right secret", sign(jwt.SigningMethodHS384, secret, good()), ErrInvalid},
		{"wrong secret", sign(jwt.SigningMethodHS256, []byte(strings.Repeat("w", 32)), good()), ErrInvalid},
		{"signature altered", parts[0] + "." + parts[1] + "." + flip(parts[2]), ErrInvalid},
		{"claims altered", parts[0] + "." + flip(parts[1]) + "." + parts[2], ErrInvalid},
		{"no issuer", sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) { c.Issuer = "" })), ErrWrongIssuer},
		{"other issuer", sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) { c.Issuer = "someone-else" })), ErrWrongIssuer},
		{"no audience", sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) { c.Audience = nil })), ErrWrongIssuer},
		{"other audience", sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"admin"} })), ErrWrongIssuer},
		{"expired", sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-Leeway - time.Second))
		})), ErrExpired},
		{"no expiry", sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })), ErrInvalid},
		{"not valid before a minute from now", sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute))
		})), ErrNotYetValid},
		{"issued in the future", sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute))
		})), ErrNotYetValid},
		{"subject not a uuid", sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) { c.Subject = "root" })), ErrBadSubject},
		{"nil subject", sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) { c.Subject = uuid.Nil.String() })), ErrBadSubject},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := a.Verify(tc.token)
			require.ErrorIs(t, err, tc.want)
			require.NotContains(t, err.Error(), tc.token, "errors never echo the token")
		})
	}

	// Within the leeway, exp and nbf are still accepted.
	skewed := sign(jwt.SigningMethodHS256, secret, with(func(c *jwt.RegisteredClaims) {
		c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second))
		c.NotBefore = jwt.NewNumericDate(now.Add(time.Second))
	}))
	_, err = a.Verify(skewed)
	require.NoError(t, err)
}

// TestIssuerIsOptional: an Authority without an issuer accepts tokens with
// or without one (tokens minted before AUTH_ISSUER was set keep working
// until it is).
func TestIssuerIsOptional(t *testing.T) {
	t.Parallel()
	plain, err := New(secret)
	require.NoError(t, err)
	withIss, err := New(secret, WithIssuer("msgrunner"))
	require.NoError(t, err)
	user := uuid.New()
	tok, err := withIss.Mint(user, time.Hour)
	require.NoError(t, err)
	_, err = plain.Verify(tok)
	require.NoError(t, err)
	old, err := plain.Mint(user, time.Hour)
	require.NoError(t, err)
	_, err = withIss.Verify(old)
	require.ErrorIs(t, err, ErrWrongIssuer, "once set, the issuer is required")
	require.ErrorIs(t, err, ErrInvalid)
}

// flip changes the first character of a base64url segment.
func flip(seg string) string {
	if seg[0] == 'A' {
		return "B" + seg[1:]
	}
	return "A" + seg[1:]
}
