package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrPermanent matches provider errors that retrying cannot fix.
var ErrPermanent = errors.New("permanent provider error")

// ErrInvalidToken matches push errors saying the device token is
// unregistered or invalid; such errors are also permanent.
var ErrInvalidToken = errors.New("device token not accepted by the push provider")

// Error is a provider's refusal or failure, as the adapters report it.
type Error struct {
	// Provider is "smtp", "push" or "sms".
	Provider string
	// Code is the HTTP status or the SMTP reply code; 0 when there is none.
	Code int
	// Permanent reports that retrying cannot succeed.
	Permanent bool
	// InvalidToken reports that the push provider refused the device token.
	InvalidToken bool
	// Msg is a short explanation, from the provider where it gave one.
	Msg string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("%s provider answered %d: %s", e.Provider, e.Code, e.Msg)
	}
	return fmt.Sprintf("%s provider: %s", e.Provider, e.Msg)
}

// Is makes errors.Is match ErrPermanent and ErrInvalidToken.
func (e *Error) Is(target error) bool {
	return (target == ErrPermanent && e.Permanent) || (target == ErrInvalidToken && e.InvalidToken)
}

// Email is one email to one recipient.
type Email struct {
	// To is the recipient's address (addr-spec, like bob@example.com).
	To string
	// Subject, Text and HTML are the subject, the text/plain part and the
	// text/html part.
	Subject, Text, HTML string
	// IdempotencyKey identifies this notification; it becomes the local
	// part of the Message-ID, so a resend after a crash carries the same
	// Message-ID.
	IdempotencyKey string
}

// Emailer sends email. SendEmail returns the provider's id of the message.
// Implementations are safe for concurrent use.
type Emailer interface {
	SendEmail(ctx context.Context, m Email) (providerID string, err error)
}

// PushMessage is one push to one device token.
type PushMessage struct {
	Token       string
	Title, Body string
	// Data is the data payload (string values only, as FCM requires).
	Data map[string]string
	// CollapseKey (at most 64 bytes) makes a device show a second push
	// with the same key in place of the first.
	CollapseKey string
	// IdempotencyKey is sent as the Idempotency-Key header.
	IdempotencyKey string
}

// Pusher sends push notifications. Push returns the provider's message id.
// Implementations are safe for concurrent use.
type Pusher interface {
	Push(ctx context.Context, m PushMessage) (providerID string, err error)
}

// SMS is one text message.
type SMS struct {
	// To is an E.164 phone number, like +14155550123.
	To   string
	Body string
	// IdempotencyKey is sent as the Idempotency-Key header.
	IdempotencyKey string
}

// Texter sends SMS. SendSMS returns the provider's message id.
// Implementations are safe for concurrent use.
type Texter interface {
	SendSMS(ctx context.Context, m SMS) (providerID string, err error)
}

// Providers are the configured providers and the templates. A nil provider
// disables its channel.
type Providers struct {
	Email Emailer
	Push  Pusher
	SMS   Texter
	// Templates renders titles and bodies; nil means the built-in ones.
	Templates *Templates
}

// shorten bounds a provider's explanation kept in errors.
func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 200
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
