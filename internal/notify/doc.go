// Package notify sends notifications through external providers: email over
// SMTP, push to an FCM HTTP v1-compatible API and SMS to a Twilio-compatible
// API. One small interface per channel (Emailer, Pusher, Texter) lets the
// send-notification worker use any of them, or none: a channel whose
// provider is nil is disabled.
//
// Providers classify their failures. An error for which errors.Is(err,
// ErrPermanent) holds will not succeed on retry (the provider refused the
// request: a 4xx other than 429, an invalid address, an SMTP 5xx reply);
// ErrInvalidToken, a kind of permanent error, means the push provider no
// longer accepts the device token. Every other error (5xx, 429, timeouts,
// refused connections, SMTP 4xx replies) is transient: retrying may succeed.
//
// Templates renders a notification's title and body per notification type
// and channel, parsed and validated once at start.
//
// Nothing in this package logs; errors never contain credentials, and
// carry at most the provider's own short explanation.
package notify
