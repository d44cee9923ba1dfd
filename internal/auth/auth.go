// Package auth mints and verifies the bearer tokens of the public API: HS256
// JWTs whose subject is the user id, optionally bound to an issuer and an
// audience.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// MinSecretBytes is the shortest accepted signing secret: HS256 keys
// shorter than the hash output weaken it.
const MinSecretBytes = 32

// Errors returned by Verify. Each says what is wrong without echoing the
// token.
var (
	ErrMissing     = errors.New("missing bearer token")
	ErrInvalid     = errors.New("invalid token")
	ErrExpired     = errors.New("token expired")
	ErrBadSubject  = errors.New("token subject is not a user id")
	ErrShortSecret = fmt.Errorf("signing secret must be at least %d bytes", MinSecretBytes)
	// ErrWrongIssuer is an ErrInvalid: the token's issuer or audience is
	// not the one this Authority accepts.
	ErrWrongIssuer = fmt.Errorf("%w: issuer or audience not accepted", ErrInvalid)
	// ErrNotYetValid is an ErrInvalid: the token's nbf or iat lies in the
	// future (beyond the leeway).
	ErrNotYetValid = fmt.Errorf("%w: not valid yet", ErrInvalid)
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 5 * time.Second

// Option configures an Authority.
type Option func(*Authority)

// WithIssuer makes Mint set iss and Verify require it to equal issuer.
// An empty issuer changes nothing.
func WithIssuer(issuer string) Option { return func(a *Authority) { a.issuer = issuer } }

// WithAudience makes Mint set aud and Verify require it to contain
// audience. An empty audience changes nothing.
func WithAudience(audience string) Option { return func(a *Authority) { a.audience = audience } }

// WithClock makes the Authority read the time from now instead of
// time.Now, both when minting (iat, exp) and when verifying (exp, nbf, iat,
// with Leeway). A nil now changes nothing. It lets tests move a token past
// its expiry without waiting for it; now must be safe for concurrent use.
func WithClock(now func() time.Time) Option {
	return func(a *Authority) {
		if now != nil {
			a.now = now
		}
	}
}

// Authority signs and verifies tokens with one secret. It is safe for
// concurrent use.
type Authority struct {
	secret   []byte
	issuer   string
	audience string
	now      func() time.Time
}

// New returns an Authority for secret, which must be at least
// MinSecretBytes long.
func New(secret []byte, opts ...Option) (*Authority, error) {
	if len(secret) < MinSecretBytes {
		return nil, ErrShortSecret
	}
	a := &Authority{secret: secret, now: time.Now}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Mint returns a token for user valid for ttl.
func (a *Authority) Mint(user uuid.UUID, ttl time.Duration) (string, error) {
	if user == uuid.Nil {
		return "", errors.New("auth: user id is required")
	}
	if ttl <= 0 {
		return "", errors.New("auth: ttl must be positive")
	}
	now := a.now()
	claims := jwt.RegisteredClaims{
		Issuer:    a.issuer,
		Subject:   user.String(),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	if a.audience != "" {
		claims.Audience = jwt.ClaimStrings{a.audience}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	s, err := tok.SignedString(a.secret)
	if err != nil {
		return "", fmt.Errorf("auth: signing: %w", err)
	}
	return s, nil
}

// Verify checks a token's algorithm (HS256 only: none, RS256, HS512 and
// the rest are refused), signature, expiry (required), nbf and iat (not
// in the future), issuer and audience (when configured) and subject, and
// returns the user id. Errors are ErrMissing, ErrExpired, ErrBadSubject or
// an ErrInvalid (ErrWrongIssuer, ErrNotYetValid, or ErrInvalid itself);
// none echoes the token.
func (a *Authority) Verify(token string) (uuid.UUID, error) {
	if token == "" {
		return uuid.Nil, ErrMissing
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(a.now),
		jwt.WithLeeway(Leeway),
	}
	if a.issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.issuer))
	}
	if a.audience != "" {
		opts = append(opts, jwt.WithAudience(a.audience))
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return a.secret, nil }, opts...)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenUnverifiable):
		// Checked first: the claims of a token that fails these were
		// never vouched for.
		return uuid.Nil, ErrInvalid
	case errors.Is(err, jwt.ErrTokenExpired):
		return uuid.Nil, ErrExpired
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidAudience),
		errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && (claims.Issuer == "" && a.issuer != "" || len(claims.Audience) == 0 && a.audience != ""):
		return uuid.Nil, ErrWrongIssuer
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return uuid.Nil, ErrNotYetValid
	default:
		return uuid.Nil, ErrInvalid
	}
	user, err := uuid.Parse(claims.Subject)
	if err != nil || user == uuid.Nil {
		return uuid.Nil, ErrBadSubject
	}
	return user, nil
}
