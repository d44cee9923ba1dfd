package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/httperr"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/validation"
)

// apiError is the error shape clients see.
type apiError = httperr.Error

func newError(status int, code, msg string) *apiError { return httperr.New(status, code, msg) }

// notParticipant answers a request about a conversation the caller is not
// part of.
func notParticipant() *apiError {
	return newError(http.StatusForbidden, "not_participant", "you are not a participant of this conversation")
}

// classify maps any error to what the client sees. It is the one place
// where errors become statuses; raw error text of unexpected errors never
// reaches clients.
func classify(err error) (e *apiError, unexpected bool) {
	var ae *apiError
	var ve *validation.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		return ae, false
	case errors.As(err, &ve):
		return httperr.FromValidation(ve), false
	case errors.Is(err, outbox.ErrNoSealer):
		return &apiError{Status: http.StatusNotImplemented, Code: "encryption_unavailable", Field: "requires_encryption",
			Message: "this gateway has no encryption keys (ENCRYPTION_KEYS); send without requires_encryption"}, false
	case errors.Is(err, outbox.ErrNotParticipant):
		return newError(http.StatusForbidden, "not_participant", "you are not a participant of this conversation, or the recipient is not"), false
	case errors.Is(err, auth.ErrMissing), errors.Is(err, auth.ErrInvalid), errors.Is(err, auth.ErrExpired), errors.Is(err, auth.ErrBadSubject):
		return newError(http.StatusUnauthorized, "unauthorized", err.Error()), false
	case errors.As(err, &he):
		return httperr.FromEcho(he), false
	case databaseUnavailable(err):
		return newError(http.StatusServiceUnavailable, "database_unavailable", "the message store is unavailable; try again (with the same message id, so a send that did commit is not stored twice)"), false
	default:
		return newError(http.StatusInternalServerError, "internal", "internal error"), true
	}
}

// databaseUnavailable reports whether err means Postgres could not be
// reached or did not answer in time, as opposed to rejecting the query.
func databaseUnavailable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.Is(err, db.ErrConnectionLost):
		return true
	case errors.As(err, &pe):
		// Class 08 is connection exceptions; 57P0x is the server shutting
		// down or not accepting connections.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P0")
	}
	return pgconn.Timeout(err) || strings.Contains(err.Error(), "conn closed")
}

func (s *Server) httpErrorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e, unexpected := classify(err)
	if unexpected || e.Status >= 500 {
		s.logger.Error("request failed", slog.String("method", c.Request().Method),
			slog.String("path", c.Path()), slog.Int("status", e.Status), slog.String("error", err.Error()))
	}
	if e.Status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="msgrunner"`)
	}
	_ = httperr.Write(c, e)
}
