// Package notifytest runs local servers that speak the notification
// providers' protocols (SMTP with STARTTLS and AUTH PLAIN, an FCM HTTP
// v1-compatible push API, a Twilio-compatible SMS API), record what they
// receive, check the credentials, and answer as each test asks. Tests of
// the adapters and of the send-notification worker use them, and so does
// cmd/fakeproviders, which runs them for `make run`.
//
// They listen on loopback only. Every server is safe for concurrent use.
package notifytest
