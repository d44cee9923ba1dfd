// Command benchreport turns `go test -bench` output (read from stdin, any
// -count) into bench/results/latest.md and latest.json: every metric's
// median and min–max over the runs, the machine, and each target of the
// design checked against its median.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "bench/results/latest", "output path without extension (.md and .json are written)")
	flag.Parse()
	if err := run(os.Stdin, *out); err != nil {
		fmt.Fprintf(os.Stderr, "benchreport: %v\n", err)
		os.Exit(1)
	}
}

// stat is one metric of one benchmark over its runs.
type stat struct {
	Benchmark string    `json:"benchmark"`
	Metric    string    `json:"metric"`
	Runs      []float64 `json:"runs"`
	Median    float64   `json:"median"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
}

// target is a goal of the design, checked against a median.
type target struct {
	Benchmark, Metric, Goal string
	OK                      func(float64) bool
}

var targets = []target{
	{"BenchmarkWritePath/outbox-3-jobs", "msgs/s", "≥ 2,000 messages/s with all their jobs", func(v float64) bool { return v >= 2000 }},
	{"BenchmarkWritePath/outbox-3-jobs", "ratio", "≥ 1.0× a row + one River job (same run)", func(v float64) bool { return v >= 1 }},
	{"BenchmarkEndToEnd", "p50-ms", "end to end at 500 msg/s: p50 ≤ 5 ms", func(v float64) bool { return v <= 5 }},
	{"BenchmarkEndToEnd", "p99-ms", "end to end at 500 msg/s: p99 ≤ 20 ms", func(v float64) bool { return v <= 20 }},
	{"BenchmarkBroadcast100k", "sent-s", "broadcast of 100,000: all sent ≤ 60 s", func(v float64) bool { return v <= 60 }},
}

// parse reads benchmark lines: name, iterations, then value/unit pairs.
func parse(r io.Reader) (map[string]map[string][]float64, []string, error) {
	res := map[string]map[string][]float64{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // drop the GOMAXPROCS suffix
			}
		}
		if res[name] == nil {
			res[name] = map[string][]float64{}
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res, order, sc.Err()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func command(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func run(in io.Reader, out string) error {
	res, order, err := parse(in)
	if err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark lines on stdin")
	}
	var stats []stat
	for _, name := range order {
		metrics := make([]string, 0, len(res[name]))
		for m := range res[name] {
			if m != "ns/op" {
				metrics = append(metrics, m)
			}
		}
		sort.Strings(metrics)
		for _, m := range metrics {
			v := res[name][m]
			stats = append(stats, stat{Benchmark: name, Metric: m, Runs: v, Median: median(v), Min: slices.Min(v), Max: slices.Max(v)})
		}
	}
	machine := map[string]string{
		"date": time.Now().UTC().Format(time.RFC3339), "go": runtime.Version(), "cpus": strconv.Itoa(runtime.NumCPU()),
		"os": runtime.GOOS + "/" + runtime.GOARCH, "postgres": command("psql", "--version"), "redis": command("redis-server", "--version"),
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Benchmark results\n\nWritten by `make bench` on %s: %s CPUs, %s, %s, %s, %s.\n",
		machine["date"], machine["cpus"], machine["go"], machine["os"], machine["postgres"], machine["redis"])
	md.WriteString("Figures are the median and min–max of the runs; ratios are against baselines measured in the same run.\n\n")
	md.WriteString("## Targets\n\n| target | median | met |\n|---|---|---|\n")
	byKey := map[string]stat{}
	for _, s := range stats {
		byKey[s.Benchmark+"|"+s.Metric] = s
	}
	type verdict struct {
		Goal   string  `json:"goal"`
		Median float64 `json:"median"`
		Met    bool    `json:"met"`
	}
	var verdicts []verdict
	for _, t := range targets {
		s, ok := byKey[t.Benchmark+"|"+t.Metric]
		if !ok {
			fmt.Fprintf(&md, "| %s | not run | – |\n", t.Goal)
			continue
		}
		met := t.OK(s.Median)
		verdicts = append(verdicts, verdict{t.Goal, s.Median, met})
		fmt.Fprintf(&md, "| %s | %.4g %s | %s |\n", t.Goal, s.Median, t.Metric, map[bool]string{true: "yes", false: "**no**"}[met])
	}
	md.WriteString("\n## Every figure\n\n| benchmark | metric | median | min–max | runs |\n|---|---|---|---|---|\n")
	for _, s := range stats {
		fmt.Fprintf(&md, "| %s | %s | %.4g | %.4g–%.4g | %d |\n", strings.TrimPrefix(s.Benchmark, "Benchmark"), s.Metric, s.Median, s.Min, s.Max, len(s.Runs))
	}
	if err := os.WriteFile(out+".md", []byte(md.String()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(map[string]any{"machine": machine, "targets": verdicts, "figures": stats}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out+".json", append(js, '\n'), 0o644)
}
