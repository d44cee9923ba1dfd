package scripts_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRunRefusesABusyPort: `make run` with a port already taken says which
// port and setting, hints at another `make run`, and exits 1 before it
// migrates or starts anything.
func TestRunRefusesABusyPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	port := addr[strings.LastIndex(addr, ":")+1:]

	cmd := exec.Command("bash", "run.sh")
	cmd.Env = append(os.Environ(),
		"ADMIN_ADDR="+addr,
		"GATEWAY_ADDR=127.0.0.1:1", "RUNNER_ADDR=127.0.0.1:2", // nothing listens on these
		"AUTH_SECRET=test-secret-test-secret-test-secret",
		"ENCRYPTION_KEYS=k:"+strings.Repeat("A", 43)+"=", "ENCRYPTION_ACTIVE_KEY=k",
		// An unreachable database: reaching the migration would fail differently.
		"DATABASE_URL=postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1",
	)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("want exit status 1, got %v\n%s", err, out)
	}
	want := "make run: port " + port + " (ADMIN_ADDR) is already in use: another 'make run' may be running; stop it, or set ADMIN_ADDR to another address\n"
	if string(out) != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
}
