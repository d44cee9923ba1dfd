// Package auth mints and verifies the bearer tokens of the public API: HS256
// JWTs whose subject is the user id.
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
)

// Authority signs and verifies tokens with one secret. It is safe for
// concurrent use.
type Authority struct {
	secret []byte
	now    func() time.Time
}

// New returns an Authority for secret, which must be at least
// MinSecretBytes long.
func New(secret []byte) (*Authority, error) {
	if len(secret) < MinSecretBytes {
		return nil, ErrShortSecret
	}
	return &Authority{secret: secret, now: time.Now}, nil
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
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   user.String(),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	})
	s, err := tok.SignedString(a.secret)
	if err != nil {
		return "", fmt.Errorf("auth: signing: %w", err)
	}
	return s, nil
}

// Verify checks a token's signature (HS256 only), expiry (required) and
// subject, and returns the user id.
func (a *Authority) Verify(token string) (uuid.UUID, error) {
	if token == "" {
		return uuid.Nil, ErrMissing
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return a.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(a.now),
		jwt.WithLeeway(5*time.Second),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return uuid.Nil, ErrExpired
	case err != nil:
		return uuid.Nil, ErrInvalid
	}
	user, err := uuid.Parse(claims.Subject)
	if err != nil || user == uuid.Nil {
		return uuid.Nil, ErrBadSubject
	}
	return user, nil
}
