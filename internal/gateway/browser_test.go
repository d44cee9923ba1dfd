package gateway_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/msgrunner/msgrunner/internal/browsertest"
	"github.com/stretchr/testify/require"
)

// TestDemoPageInBrowser drives the demo page in headless Chromium: Alice
// sends from her page, Bob's page shows the message, Alice's page shows the
// receipt. It needs node, Debian's chromium and tests/browser's
// node_modules (`make browser-deps` installs them) and says so when it
// skips.
func TestDemoPageInBrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.Require(t)

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
	cmd := browser.Command(ctx, "demo.mjs", page(alice, bob), page(bob, alice), shot)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("%s", out)
}
