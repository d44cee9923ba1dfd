// Command runner works every job queue: it is the River client with all
// workers, queue worker counts, rescue and retention settings. Configure it
// with environment variables (see docs/configuration.md); stop it with SIGTERM or
// SIGINT, which lets running jobs finish up to RUNNER_SHUTDOWN_TIMEOUT.
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
	err := run(ctx, stop, os.Getenv, nil)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "runner: %v\n", err)
		os.Exit(1)
	}
}
