// Command fakeproviders runs local stand-ins for the notification
// providers, for development: an SMTP server (STARTTLS with a fresh
// self-signed certificate, AUTH PLAIN), an FCM HTTP v1-compatible push API
// with the OAuth 2 token endpoint of a service account, and a
// Twilio-compatible SMS API, all on loopback. It writes the runner's
// environment for them to -env-file (the certificate and the service
// account key next to it) and prints
// each notification it receives, as a phone or mailbox would show it.
// `FAKE_PROVIDERS=1 make run` starts it and points the runner at it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fakeproviders: %v\n", err)
		os.Exit(1)
	}
}
