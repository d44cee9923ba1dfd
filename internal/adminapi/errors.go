package adminapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river/rivertype"

	"github.com/msgrunner/msgrunner/internal/httperr"
	"github.com/msgrunner/msgrunner/validation"
)

// apiError is the error shape clients see.
type apiError = httperr.Error

func newError(status int, code, msg string) *apiError { return httperr.New(status, code, msg) }

// classify is the one place errors become statuses.
func classify(err error) (*apiError, bool) {
	var ae *apiError
	var ve *validation.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		return ae, false
	case errors.As(err, &ve):
		return httperr.FromValidation(ve), false
	case errors.Is(err, rivertype.ErrJobRunning):
		return newError(http.StatusConflict, "job_running", "a running job cannot be deleted; cancel it first"), false
	case errors.Is(err, rivertype.ErrNotFound):
		return newError(http.StatusNotFound, "not_found", "no such job or queue"), false
	case errors.As(err, &he):
		return httperr.FromEcho(he), false
	default:
		return newError(http.StatusInternalServerError, "internal", "internal error"), true
	}
}

func (s *Server) httpErrorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e, unexpected := classify(err)
	if unexpected {
		s.logger.Error("admin request failed", slog.String("method", c.Request().Method),
			slog.String("path", c.Path()), slog.String("error", err.Error()))
	}
	_ = httperr.Write(c, e)
}

func asValidation(err error, target **validation.Error) bool { return errors.As(err, target) }
