package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

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
	require.NoError(t, run(strings.NewReader(sample), out))
	md, err := os.ReadFile(out + ".md")
	require.NoError(t, err)
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
		Figures []stat `json:"figures"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.NotEmpty(t, doc.Figures)

	require.ErrorContains(t, run(strings.NewReader("nothing here"), out), "no benchmark lines")
}

func TestReportIncludesBullMQWhenPresent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bull := filepath.Join(dir, "bullmq.json")
	require.NoError(t, os.WriteFile(bull, []byte(`{"date":"2026-11-29T00:00:00Z","bullmq":"5.81.5","node":"v20","jobs":20000,
		"figures":{"drain jobs/s":{"runs":[4000,5000,4500],"median":4500,"min":4000,"max":5000}}}`), 0o644))
	out := filepath.Join(dir, "latest")
	require.NoError(t, runWith(strings.NewReader(sample), out, bull))
	md, err := os.ReadFile(out + ".md")
	require.NoError(t, err)
	require.Contains(t, string(md), "BullMQ 5.81.5")
	require.Contains(t, string(md), "| drain jobs/s | 4500 | 4000–5000 | 3 |")
	require.Contains(t, string(md), "Delivery/send-message/workers=50: 2000 jobs/s = 0.44× BullMQ's no-op drain")

	// A missing file is skipped; a broken one is an error.
	require.NoError(t, runWith(strings.NewReader(sample), out, filepath.Join(dir, "absent.json")))
	require.NoError(t, os.WriteFile(bull, []byte("{"), 0o644))
	require.Error(t, runWith(strings.NewReader(sample), out, bull))
}
