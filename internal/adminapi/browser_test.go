package adminapi_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/adminapi"
	"github.com/msgrunner/msgrunner/internal/browsertest"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/jobs"
)

// TestFrontPageInBrowser drives the admin server's front page in headless
// Chromium (tests/browser/front.mjs): a viewer sees the counts this test
// produced, a running job's progress bar and no button; an operator
// pauses a queue from the page. It needs node, Debian's chromium and
// tests/browser's node_modules (`make browser-deps` installs them) and
// says so when it skips.
func TestFrontPageInBrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.Require(t)

	pool := dbtest.Pool(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	srv, err := adminapi.New(pool, client, adminapi.Config{
		Addr: "127.0.0.1:0", OperatorToken: operatorToken, ViewerToken: viewerToken,
		Queues: jobs.QueueNames(), Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, srv.Start(ctx, true))
	t.Cleanup(func() { cancel(); _ = srv.Shutdown(context.Background()) })

	b := &bundle{pool: pool, server: srv}
	for range 7 {
		b.job(t, jobs.QueueMessageNotification, "available")
	}
	b.job(t, jobs.QueueMessageNotification, "completed")
	b.exec(t, `INSERT INTO river_queue (name, created_at, metadata, updated_at) VALUES ($1, now(), '{}', now())`, jobs.QueueMessageNotification)
	running := b.job(t, jobs.QueueBatchMessageSending, "running")
	b.exec(t, `UPDATE river_job SET kind = 'batch-send', metadata = '{"progress":{"percentage":40,"step":"chunk","totalSteps":5,"currentStep":2}}' WHERE id = $1`, running)

	shot := os.Getenv("BROWSER_SCREENSHOT_ADMIN") // keep the operator's page as a PNG
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "front.png")
	}
	runCtx, stop := context.WithTimeout(context.Background(), 90*time.Second)
	defer stop()
	cmd := browser.Command(runCtx, "front.mjs", "http://"+srv.Addr(), operatorToken, viewerToken,
		jobs.QueueMessageNotification, "7", strconv.FormatInt(running, 10), shot)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("%s", out)
	var paused bool
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT paused_at IS NOT NULL FROM river_queue WHERE name = $1`,
		jobs.QueueMessageNotification).Scan(&paused))
	require.True(t, paused, "the operator's click paused the queue")
}
