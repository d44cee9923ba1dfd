package jsclient_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/msgrunner/msgrunner/internal/dbtest"
)

// TestClientInNode runs the client's Node tests (test/*.test.mjs with
// Node's test runner; harness/stack.mjs starts the servers) against a
// runner and two gateways of their own, from binaries built here, on a
// fresh database: a gateway SIGKILLed and Redis restarted while 1,000
// messages flow, sends made while offline, refusals and a refused token.
// It needs node and this package's node_modules (`make node-deps`) and
// says so when it skips.
func TestClientInNode(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	switch {
	case err != nil:
		t.Skip("Node client tests skipped: node is not installed (make node-deps installs Debian's nodejs)")
	case missing("node_modules/pg"):
		t.Skip("Node client tests skipped: run `make node-deps` to install clients/js's dev dependencies")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("Node client tests skipped: redis-server is not installed (make services installs it)")
	}

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin, "../../cmd/runner", "../../cmd/gateway")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the runner and gateway: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--experimental-websocket", "--no-warnings", "--test", "--test-reporter=spec",
		"--test-concurrency=1", "test/")
	cmd.Env = append(os.Environ(), "MSGRUNNER_BIN="+bin, "DATABASE_URL="+dbtest.URL(t), "TEST_TMP="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("node --test failed: %v", err)
	}
}

func missing(path string) bool {
	_, err := os.Stat(filepath.FromSlash(path))
	return err != nil
}
