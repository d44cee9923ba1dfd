package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/validation"
)

type preferencesBody struct {
	Push             bool    `json:"push"`
	InApp            bool    `json:"in_app"`
	Email            bool    `json:"email"`
	SMS              bool    `json:"sms"`
	EmailAddress     *string `json:"email_address"`
	Phone            *string `json:"phone"`
	NotifyWhenOnline bool    `json:"notify_when_online"`
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// validate checks the preferences a client sends.
func (p preferencesBody) validate() error {
	if p.EmailAddress != nil {
		a, err := mail.ParseAddress(*p.EmailAddress)
		if err != nil || a.Address != strings.TrimSpace(*p.EmailAddress) {
			return validation.Errorf("email_address", "is not an email address")
		}
	}
	if p.Phone != nil && !e164.MatchString(*p.Phone) {
		return validation.Errorf("phone", "must be in E.164 form, like +14155550123")
	}
	if p.Email && p.EmailAddress == nil {
		return validation.Errorf("email_address", "is required when email is on")
	}
	if p.SMS && p.Phone == nil {
		return validation.Errorf("phone", "is required when sms is on")
	}
	return nil
}

// deviceRequest is the body of POST /v1/me/devices.
type deviceRequest struct {
	Platform string `json:"platform"`
	Token    string `json:"token"`
}

// validate checks a device registration. Tokens are stored as text, which
// cannot hold NUL.
func (d deviceRequest) validate() error {
	switch {
	case d.Platform != "ios" && d.Platform != "android" && d.Platform != "web":
		return validation.Errorf("platform", `must be "ios", "android" or "web"`)
	case strings.TrimSpace(d.Token) == "" || len(d.Token) > 4096:
		return validation.Errorf("token", "must be a device token of at most 4096 characters")
	case strings.ContainsRune(d.Token, 0):
		return validation.Errorf("token", "must not contain NUL characters")
	}
	return nil
}

func (s *Server) getPreferences(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	p, err := db.GetPreferences(ctx, s.pool, userOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, preferencesBody{Push: p.Push, InApp: p.InApp, Email: p.Email, SMS: p.SMS,
		EmailAddress: p.EmailAddress, Phone: p.Phone, NotifyWhenOnline: p.NotifyWhenOnline})
}

func (s *Server) putPreferences(c echo.Context) error {
	var in preferencesBody
	if err := readJSON(c, 4096, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	if err := db.SetPreferences(ctx, s.pool, userOf(c), db.Preferences{Push: in.Push, InApp: in.InApp, Email: in.Email, SMS: in.SMS,
		EmailAddress: in.EmailAddress, Phone: in.Phone, NotifyWhenOnline: in.NotifyWhenOnline}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, in)
}

func (s *Server) registerDevice(c echo.Context) error {
	var in deviceRequest
	if err := readJSON(c, 8192, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	id, err := db.RegisterDevice(ctx, s.pool, userOf(c), in.Platform, in.Token)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"id": id, "platform": in.Platform})
}

func (s *Server) deleteDevice(c echo.Context) error {
	id, err := parseID("id", c.Param("id"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.DBTimeout)
	defer cancel()
	if err := db.DeactivateDevice(ctx, s.pool, userOf(c), id); errors.Is(err, db.ErrNotFound) {
		return newError(http.StatusNotFound, "not_found", "no active device of yours has this id")
	} else if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
