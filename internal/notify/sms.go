package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultSMSBaseURL is Twilio's API root.
const DefaultSMSBaseURL = "https://api.twilio.com"

// e164 is a phone number in E.164 form.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// SMSConfig configures a Twilio-compatible SMS provider.
type SMSConfig struct {
	// BaseURL is the API root; messages are POSTed to
	// {BaseURL}/2010-04-01/Accounts/{AccountSID}/Messages.json.
	BaseURL string
	// AccountSID and AuthToken are the HTTP basic-auth credentials.
	// Required.
	AccountSID, AuthToken string
	// From is the sending number (E.164). Required.
	From string
	// Timeout bounds one request; DefaultTimeout when zero.
	Timeout time.Duration
}

// Twilio sends SMS through a Twilio-compatible REST API. It is safe for
// concurrent use.
type Twilio struct {
	endpoint         string
	sid, token, from string
	client           *http.Client
}

// NewTwilio checks cfg and returns the provider. Errors name the field.
func NewTwilio(cfg SMSConfig) (*Twilio, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultSMSBaseURL
	}
	base, err := parseBaseURL("BaseURL", cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.AccountSID == "" || strings.ContainsAny(cfg.AccountSID, "/?#%: "):
		return nil, errors.New("AccountSID is required and must be a plain account id")
	case cfg.AuthToken == "":
		return nil, errors.New("AuthToken is required")
	case !e164.MatchString(cfg.From):
		return nil, errors.New("From must be a phone number in E.164 form, like +14155550123")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Twilio{
		endpoint: base + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		sid:      cfg.AccountSID, token: cfg.AuthToken, from: cfg.From,
		client: newHTTPClient(cfg.Timeout),
	}, nil
}

// SendSMS sends m and returns the provider's message sid. A number that is
// not E.164 is refused with a permanent error before any request.
func (t *Twilio) SendSMS(ctx context.Context, m SMS) (string, error) {
	if !e164.MatchString(m.To) {
		return "", &Error{Provider: "sms", Permanent: true, Msg: "invalid phone number (not E.164)"}
	}
	form := url.Values{"To": {m.To}, "From": {t.from}, "Body": {m.Body}}
	req, err := http.NewRequest(http.MethodPost, t.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("sms: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(t.sid, t.token)
	if m.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", m.IdempotencyKey)
	}
	status, answer, err := post(ctx, t.client, "sms", req)
	if err != nil {
		return "", err
	}
	if status/100 == 2 {
		var ok struct {
			SID string `json:"sid"`
		}
		_ = json.Unmarshal(answer, &ok) // accepted either way
		return ok.SID, nil
	}
	var te struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(answer, &te)
	msg := te.Message
	if te.Code != 0 {
		msg = "error " + strconv.Itoa(te.Code) + ": " + msg
	}
	return "", classifyStatus("sms", status, msg)
}
