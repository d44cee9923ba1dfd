package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/validation"
)

// maxDisplayName is the longest display name, in characters.
const maxDisplayName = 64

// profileBody is the body of PUT /v1/me/profile and the answer of GET.
type profileBody struct {
	DisplayName string     `json:"display_name"`
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
}

// validateDisplayName checks a display name and returns it without
// surrounding spaces. Names reach notification titles and email subjects,
// so control characters and the invisible ones that reorder or hide text
// (bidirectional overrides, zero-width spaces) are refused; joiners inside
// emoji are not.
func validateDisplayName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", validation.Errorf("display_name", "must be valid UTF-8")
	}
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return "", validation.Errorf("display_name", "must not be empty")
	case n > maxDisplayName:
		return "", validation.Errorf("display_name", "is %d characters, over the limit of %d", n, maxDisplayName)
	}
	for _, r := range name {
		switch {
		case unicode.IsControl(r):
			return "", validation.Errorf("display_name", "must not contain control characters")
		case unicode.Is(unicode.Cf, r) && r != '\u200d':
			return "", validation.Errorf("display_name", "must not contain invisible formatting characters (U+%04X)", r)
		}
	}
	return name, nil
}

func (s *Server) getProfile(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	p, err := db.GetProfile(ctx, s.pool, userOf(c))
	if errors.Is(err, db.ErrNotFound) {
		return newError(http.StatusNotFound, "not_found", "you have not set a profile")
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, profileBody{DisplayName: p.DisplayName, UpdatedAt: &p.UpdatedAt})
}

func (s *Server) putProfile(c echo.Context) error {
	var in profileBody
	if err := readJSON(c, 4096, &in); err != nil {
		return err
	}
	name, err := validateDisplayName(in.DisplayName)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	p, err := db.SetProfile(ctx, s.pool, userOf(c), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, profileBody{DisplayName: p.DisplayName, UpdatedAt: &p.UpdatedAt})
}

func (s *Server) deleteProfile(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	found, err := db.DeleteProfile(ctx, s.pool, userOf(c))
	if err != nil {
		return err
	}
	if !found {
		return newError(http.StatusNotFound, "not_found", "you have not set a profile")
	}
	return c.NoContent(http.StatusNoContent)
}
