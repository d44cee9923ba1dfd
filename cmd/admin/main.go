// Command admin is the operator's tool: schema migrations, token minting,
// the admin HTTP API with River UI and reports (`admin serve`), and CLI
// commands to list and fix jobs, pause queues, read reports and enqueue
// cleanups. `admin help` lists every command.
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
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "admin: %v\n", err)
		os.Exit(exitCode(err))
	}
}
