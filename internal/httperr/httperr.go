// Package httperr is the JSON error shape of every HTTP API here,
// {"error": {"code", "message", "field"?}}, and the mappings every API
// shares (bad input, echo's own errors). Each server keeps its own
// classification of domain errors and calls Write from one error handler.
package httperr

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/validation"
)

// Error is an error with the HTTP status and the stable code clients see.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Error implements error as "CODE: MESSAGE".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an *Error.
func New(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// FromValidation is 400 invalid_field naming the field.
func FromValidation(ve *validation.Error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: ve.Field, Message: ve.Error()}
}

// FromEcho maps echo's routing errors (404, 405, ...) to the same shape.
func FromEcho(he *echo.HTTPError) *Error {
	code := strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_"))
	msg := http.StatusText(he.Code)
	if s, ok := he.Message.(string); ok {
		msg = s
	}
	return New(he.Code, code, msg)
}

// Write sends e as {"error": e}.
func Write(c echo.Context, e *Error) error {
	return c.JSON(e.Status, map[string]any{"error": e})
}
