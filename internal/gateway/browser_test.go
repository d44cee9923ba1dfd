package gateway_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestDemoPageInBrowser drives the demo page in headless Chromium: Alice
// sends from her page, Bob's page shows the message, Alice's page shows the
// receipt. It needs node, Debian's chromium and tests/browser's
// node_modules (`make browser-deps` installs them) and says so when it
// skips.
func TestDemoPageInBrowser(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../../tests/browser")
	require.NoError(t, err)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	node, err := exec.LookPath("node")
	switch {
	case err != nil:
		t.Skip("browser test skipped: node is not installed")
	case fileMissing(chromium):
		t.Skipf("browser test skipped: no Chromium at %s (apt-get install chromium, or set CHROMIUM)", chromium)
	case fileMissing(filepath.Join(dir, "node_modules", "playwright-core")):
		t.Skip("browser test skipped: run `make browser-deps` to install playwright-core")
	}

	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	page := func(me, peer uuid.UUID) string {
		return b.nodes[0].base + "/?token=" + b.token(t, me) + "&peer=" + peer.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	shot := os.Getenv("BROWSER_SCREENSHOT") // keep Alice's page as a PNG
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "alice.png")
	}
	cmd := exec.CommandContext(ctx, node, "demo.mjs", page(alice, bob), page(bob, alice), shot)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("%s", out)
}

func fileMissing(path string) bool {
	_, err := os.Stat(path)
	return err != nil
}
