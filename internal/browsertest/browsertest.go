// Package browsertest finds what the headless-browser tests need: node,
// Debian's chromium (or CHROMIUM) and the tests/browser scripts with
// their node_modules (`make browser-deps` installs them). A test that
// lacks any of them is skipped, saying what to install.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Browser is what a browser test runs: node, the Chromium binary and the
// directory of the scripts.
type Browser struct {
	Node, Chromium, Dir string
}

// Require returns the browser tools, or skips t naming what is missing.
func Require(t testing.TB) Browser {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "tests", "browser")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	node, err := exec.LookPath("node")
	switch {
	case err != nil:
		t.Skip("browser test skipped: node is not installed")
	case missing(chromium):
		t.Skipf("browser test skipped: no Chromium at %s (apt-get install chromium, or set CHROMIUM)", chromium)
	case missing(filepath.Join(dir, "node_modules", "playwright-core")):
		t.Skip("browser test skipped: run `make browser-deps` to install playwright-core")
	}
	return Browser{Node: node, Chromium: chromium, Dir: dir}
}

// Command returns the command that runs script (in Dir) with args on
// this Chromium, ended when ctx is.
func (b Browser) Command(ctx context.Context, script string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.Node, append([]string{script}, args...)...)
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+b.Chromium)
	return cmd
}

func missing(path string) bool {
	_, err := os.Stat(path)
	return err != nil
}
