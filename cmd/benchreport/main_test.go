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
BenchmarkWritePath/row+1-job-2      1  5001050086 ns/op  2500 msgs/s  1.000 ratio
BenchmarkWritePath/outbox-3-jobs-2  1  5002249044 ns/op  2100 msgs/s  0.84 ratio
BenchmarkWritePath/outbox-3-jobs-2  1  5002249044 ns/op  2300 msgs/s  0.92 ratio
BenchmarkWritePath/outbox-3-jobs-2  1  5002249044 ns/op  2200 msgs/s  0.88 ratio
BenchmarkEndToEnd-2  1  10370829102 ns/op  133.4 max-ms  3.4 p50-ms  28.33 p95-ms  39.83 p99-ms
PASS
`

func TestReportMediansAndTargets(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "latest")
	require.NoError(t, run(strings.NewReader(sample), out))
	md, err := os.ReadFile(out + ".md")
	require.NoError(t, err)
	require.Contains(t, string(md), "| WritePath/outbox-3-jobs | msgs/s | 2200 | 2100–2300 | 3 |")
	require.Contains(t, string(md), "| ≥ 2,000 messages/s with all their jobs | 2200 msgs/s | yes |")
	require.Contains(t, string(md), "| end to end at 500 msg/s: p99 ≤ 20 ms | 39.83 p99-ms | **no** |")
	require.Contains(t, string(md), "| broadcast of 100,000: all sent ≤ 60 s | not run | – |")
	raw, err := os.ReadFile(out + ".json")
	require.NoError(t, err)
	var doc struct {
		Figures []stat `json:"figures"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.NotEmpty(t, doc.Figures)

	require.ErrorContains(t, run(strings.NewReader("nothing here"), out), "no benchmark lines")
}
