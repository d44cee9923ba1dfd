// Command gateway is a websocket node and the public message API. Configure
// it with environment variables (see docs/configuration.md); SIGTERM or SIGINT drains
// its sockets and stops it.
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
		fmt.Fprintf(os.Stderr, "gateway: %v\n", err)
		os.Exit(1)
	}
}
