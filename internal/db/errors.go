package db

import (
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound is returned when a query that expects a row finds none.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write violates a unique constraint.
var ErrConflict = errors.New("conflict")

// ErrConnectionLost is in the chain of an error of a statement whose
// connection ended mid-way (the server went away): nothing it was part of
// committed unless the caller learns otherwise, and a retry may succeed.
var ErrConnectionLost = errors.New("database connection lost")

// SQLSTATE codes this package recognises.
const (
	codeUniqueViolation   = "23505"
	codeCheckViolation    = "23514"
	codeDuplicateDatabase = "42P04"
)

// translate maps driver errors onto this package's sentinels, keeping the
// original in the chain, and adds what the caller was doing.
func translate(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		// pgx reports a server that closed the connection during a
		// pipelined batch this way.
		return fmt.Errorf("%s: %w: %w", what, ErrConnectionLost, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation {
		return fmt.Errorf("%s: %w (%s)", what, ErrConflict, pgErr.ConstraintName)
	}
	if errors.As(err, &pgErr) && pgErr.Code == codeCheckViolation && pgErr.ConstraintName == constraintEncryptedConversation {
		return fmt.Errorf("%s: %w", what, ErrEncryptedConversation)
	}
	return fmt.Errorf("%s: %w", what, err)
}
