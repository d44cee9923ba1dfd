// Command admin is the operator's tool. For now it holds the CLI for schema
// migrations (`admin migrate up|down|status|version`) and token minting
// (`admin token --user ID`); the HTTP API, River UI and reports are not
// built yet and say so.
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
