package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// measuredAt is the fixed clock of the tests.
func measuredAt() time.Time {
	return time.Date(2026, 11, 29, 12, 11, 38, 0, time.FixedZone("CET", 3600))
}

const sample = `goos: linux
BenchmarkWritePath-2  1  15001050086 ns/op  3000 bare-row-msgs/s  2500 row+1-job-msgs/s  2100 outbox-msgs/s  0.84 ratio
BenchmarkWritePath-2  1  15001050086 ns/op  3000 bare-row-msgs/s  2500 row+1-job-msgs/s  2300 outbox-msgs/s  0.92 ratio
BenchmarkWritePath-2  1  15001050086 ns/op  3000 bare-row-msgs/s  2500 row+1-job-msgs/s  2200 outbox-msgs/s  0.88 ratio
BenchmarkEndToEnd/rate=500-2  1  10370829102 ns/op  133.4 max-ms  3.4 p50-ms  28.33 p95-ms  39.83 p99-ms
BenchmarkDelivery/send-message/workers=50-2  1  5000000000 ns/op  2000 jobs/s
--- BENCH: BenchmarkDelivery/send-message/workers=50-2
    bench_test.go:69: note: delivery workers=50: CPU 80%
PASS
`

func TestReportMediansAndTargets(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "latest")
	require.NoError(t, report(strings.NewReader(sample), options{Out: out, Commit: "95f988f", Now: measuredAt}))
	md, err := os.ReadFile(out + ".md")
	require.NoError(t, err)
	require.Contains(t, string(md), "Written by `make bench` at commit 95f988f on 2026-11-29T11:11:38Z: ")
	require.Contains(t, string(md), "| WritePath | outbox-msgs/s | 2200 | 2100–2300 | 3 |")
	require.Contains(t, string(md), "| ≥ 2,000 messages/s with all their jobs | 2200 outbox-msgs/s | 1.10× | yes |")
	require.Contains(t, string(md), "| end to end at 500 msg/s: p99 ≤ 20 ms | 39.83 p99-ms | 1.99× | **no** |")
	require.Contains(t, string(md), "| delivery: ≥ 4,000 send-message jobs/s per runner (default 50 workers) | 2000 jobs/s | 0.50× | **no** |")
	require.Contains(t, string(md), "| broadcast of 100,000: all sent ≤ 60 s | not run | – | – |")
	require.Contains(t, string(md), "- delivery workers=50: CPU 80%")
	require.NotContains(t, string(md), "BullMQ")
	raw, err := os.ReadFile(out + ".json")
	require.NoError(t, err)
	var doc struct {
		Machine map[string]string `json:"machine"`
		Figures []stat            `json:"figures"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.NotEmpty(t, doc.Figures)
	require.Equal(t, "95f988f", doc.Machine["commit"])
	require.Equal(t, "2026-11-29T11:11:38Z", doc.Machine["date"], "the date is in UTC")

	require.ErrorContains(t, report(strings.NewReader("nothing here"), options{Out: out}), "no benchmark lines")
}

func TestReportWithoutCommitSaysUnknown(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "latest")
	require.NoError(t, report(strings.NewReader(sample), options{Out: out}))
	md, err := os.ReadFile(out + ".md")
	require.NoError(t, err)
	require.Contains(t, string(md), "at commit unknown on ")
}

func TestCommitOf(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	require.Equal(t, "unknown", commitOf(dir), "not a work tree yet")

	git("init", "-q")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "bench", "results"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bench", "results", "raw.txt"), []byte("old\n"), 0o644))
	git("add", ".")
	git("commit", "-q", "-m", "first")
	hash := git("rev-parse", "--short", "HEAD")
	require.Equal(t, hash, commitOf(dir))

	// make bench rewrites bench/results before the report: still clean.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bench", "results", "raw.txt"), []byte("new\n"), 0o644))
	require.Equal(t, hash, commitOf(dir))
	require.Equal(t, hash, commitOf(filepath.Join(dir, "bench")), "from a subdirectory too")

	// A change to the code measured is not the commit.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main // changed\n"), 0o644))
	require.Equal(t, hash+"-dirty", commitOf(dir))
	require.Equal(t, hash+"-dirty", commitOf(filepath.Join(dir, "bench")), "from a subdirectory too")
}

func TestReportIncludesBullMQWhenPresent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bull := filepath.Join(dir, "bullmq.json")
	require.NoError(t, os.WriteFile(bull, []byte(`{"date":"2026-11-29T00:00:00Z","bullmq":"5.81.5","node":"v20","jobs":20000,
		"figures":{"drain jobs/s":{"runs":[4000,5000,4500],"median":4500,"min":4000,"max":5000}}}`), 0o644))
	out := filepath.Join(dir, "latest")
	require.NoError(t, report(strings.NewReader(sample), options{Out: out, BullMQ: bull}))
	md, err := os.ReadFile(out + ".md")
	require.NoError(t, err)
	require.Contains(t, string(md), "BullMQ 5.81.5")
	require.Contains(t, string(md), "| drain jobs/s | 4500 | 4000–5000 | 3 |")
	require.Contains(t, string(md), "Delivery/send-message/workers=50: 2000 jobs/s = 0.44× BullMQ's no-op drain")

	// A missing file is skipped; a broken one is an error.
	require.NoError(t, report(strings.NewReader(sample), options{Out: out, BullMQ: filepath.Join(dir, "absent.json")}))
	require.NoError(t, os.WriteFile(bull, []byte("{"), 0o644))
	require.Error(t, report(strings.NewReader(sample), options{Out: out, BullMQ: bull}))
}
