// Command admin is the operator's tool: schema migrations, token minting,
// the admin HTTP API with River UI and reports (`admin serve`), and CLI
// commands to list and fix jobs, pause queues, read reports and enqueue
// cleanups. `admin help` lists every command; the commands live in
// internal/admincli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/msgrunner/msgrunner/internal/admincli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := admincli.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
