package adminapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river/rivertype"

	"github.com/msgrunner/msgrunner/validation"
)

// apiError is an error with the status and stable code clients see.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

// classify is the one place errors become statuses.
func classify(err error) (*apiError, bool) {
	var ae *apiError
	var ve *validation.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		return ae, false
	case errors.As(err, &ve):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_field", Field: ve.Field, Message: ve.Error()}, false
	case errors.Is(err, rivertype.ErrJobRunning):
		return newError(http.StatusConflict, "job_running", "a running job cannot be deleted; cancel it first"), false
	case errors.Is(err, rivertype.ErrNotFound):
		return newError(http.StatusNotFound, "not_found", "no such job or queue"), false
	case errors.As(err, &he):
		code := strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_"))
		return newError(he.Code, code, http.StatusText(he.Code)), false
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
	_ = c.JSON(e.Status, map[string]any{"error": e})
}

func asValidation(err error, target **validation.Error) bool { return errors.As(err, target) }
