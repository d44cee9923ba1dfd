// Command benchreport turns `go test -bench` output (read from stdin, any
// -count) into bench/results/latest.md and latest.json: the commit and the
// date (UTC) the figures were measured at, every metric's median and
// min–max over the runs, the machine, each target of the design checked
// against its median with the median's ratio to the target, the
// benchmarks' "note:" log lines (why a figure is what it is), and, when
// -bullmq names a file that exists, the BullMQ figures `make bench-bull`
// wrote.
//
// The commit is -commit when given, else git's short hash of the work tree
// the command runs in, with "-dirty" when tracked files other than
// bench/results differ from it.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
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
	bull := flag.String("bullmq", "", "BullMQ results written by make bench-bull, included when the file exists")
	commit := flag.String("commit", "", "the commit measured (default: git's short hash of the current work tree, -dirty when it has changes)")
	flag.Parse()
	if *commit == "" {
		*commit = commitOf(".")
	}
	if err := report(os.Stdin, options{Out: *out, BullMQ: *bull, Commit: *commit, Now: time.Now}); err != nil {
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

// target is a goal of the design, checked against a median: at least
// Limit, or at most Limit when AtMost.
type target struct {
	Benchmark, Metric, Goal string
	Limit                   float64
	AtMost                  bool
}

// ok reports whether v meets the target.
func (t target) ok(v float64) bool {
	if t.AtMost {
		return v <= t.Limit
	}
	return v >= t.Limit
}

var targets = []target{
	{"BenchmarkWritePath", "outbox-msgs/s", "≥ 2,000 messages/s with all their jobs", 2000, false},
	{"BenchmarkWritePath", "ratio", "≥ 1.0× a row + one River job (same run, interleaved)", 1, false},
	{"BenchmarkDelivery/send-message/workers=50", "jobs/s", "delivery: ≥ 4,000 send-message jobs/s per runner (default 50 workers)", 4000, false},
	{"BenchmarkEndToEnd/rate=500", "p50-ms", "end to end at 500 msg/s: p50 ≤ 5 ms", 5, true},
	{"BenchmarkEndToEnd/rate=500", "p99-ms", "end to end at 500 msg/s: p99 ≤ 20 ms", 20, true},
	{"BenchmarkResources", "p50-ms", "end to end at 500 msg/s, each part its own process: p50 ≤ 5 ms", 5, true},
	{"BenchmarkResources", "p99-ms", "end to end at 500 msg/s, each part its own process: p99 ≤ 20 ms", 20, true},
	{"BenchmarkBroadcast100k", "sent-s", "broadcast of 100,000: all sent ≤ 60 s", 60, true},
	{"BenchmarkGroupFanout/members=1000", "last-frame-p99-ms", "a message to a 1,000-member group, all online on 2 gateways: last frame p99 ≤ 250 ms", 250, true},
	{"BenchmarkGatewayCapacity", "rss-KiB/conn", "idle websocket ≤ 20 KiB each (gateway RSS)", 20, true},
	{"BenchmarkLiveFanout", "cluster-ratio", "live fan-out on a 3-master Redis Cluster ≥ 0.9× a single Redis (same run, same load)", 0.9, false},
}

// parse reads benchmark lines (name, iterations, then value/unit pairs)
// and the benchmarks' "note: " log lines.
func parse(r io.Reader) (map[string]map[string][]float64, []string, []string, error) {
	res := map[string]map[string][]float64{}
	var order, notes []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if _, note, ok := strings.Cut(sc.Text(), ": note: "); ok {
			notes = append(notes, note)
			continue
		}
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
	return res, order, notes, sc.Err()
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

// commitOf names the commit of the git work tree at dir: the short hash of
// HEAD, with "-dirty" when tracked files other than bench/results differ
// from it (make bench rewrites bench/results/raw.txt before the report is
// made). It is "unknown" outside a work tree or without git.
func commitOf(dir string) string {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	hash, err := git("rev-parse", "--short", "HEAD")
	if err != nil || hash == "" {
		return "unknown"
	}
	if status, err := git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)bench/results"); err == nil && status != "" {
		hash += "-dirty"
	}
	return hash
}

// options say where a report goes and what it was measured at.
type options struct {
	// Out is the output path without extension (.md and .json are written).
	Out string
	// BullMQ is the file make bench-bull writes; ignored when empty or
	// missing.
	BullMQ string
	// Commit names the commit measured; "unknown" when empty.
	Commit string
	// Now gives the report's date; time.Now when nil.
	Now func() time.Time
}

// bullDoc is what bench/bullmq/bench.js writes.
type bullDoc struct {
	Date     string                `json:"date"`
	BullMQ   string                `json:"bullmq"`
	Node     string                `json:"node"`
	Jobs     int                   `json:"jobs"`
	Figures  map[string]bullFigure `json:"figures"`
	Settings map[string]any        `json:"settings"`
}

type bullFigure struct {
	Runs   []float64 `json:"runs"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

// report reads benchmark output from in and writes o.Out's .md and .json.
func report(in io.Reader, o options) error {
	out, bull := o.Out, o.BullMQ
	if o.Commit == "" {
		o.Commit = "unknown"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	res, order, notes, err := parse(in)
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
		"commit": o.Commit, "date": o.Now().UTC().Format(time.RFC3339), "go": runtime.Version(), "cpus": strconv.Itoa(runtime.NumCPU()),
		"os": runtime.GOOS + "/" + runtime.GOARCH, "postgres": command("psql", "--version"), "redis": command("redis-server", "--version"),
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Benchmark results\n\nWritten by `make bench` at commit %s on %s: %s CPUs, %s, %s, %s, %s.\n",
		machine["commit"], machine["date"], machine["cpus"], machine["go"], machine["os"], machine["postgres"], machine["redis"])
	md.WriteString("Figures are the median and min–max of the runs; ratios are against baselines measured in the same run.\n\n")
	md.WriteString("## Targets\n\n| target | median | ÷ target | met |\n|---|---|---|---|\n")
	byKey := map[string]stat{}
	for _, s := range stats {
		byKey[s.Benchmark+"|"+s.Metric] = s
	}
	type verdict struct {
		Goal     string  `json:"goal"`
		Median   float64 `json:"median"`
		Target   float64 `json:"target"`
		OfTarget float64 `json:"of_target"`
		Met      bool    `json:"met"`
	}
	var verdicts []verdict
	for _, t := range targets {
		s, ok := byKey[t.Benchmark+"|"+t.Metric]
		if !ok {
			fmt.Fprintf(&md, "| %s | not run | – | – |\n", t.Goal)
			continue
		}
		met := t.ok(s.Median)
		verdicts = append(verdicts, verdict{t.Goal, s.Median, t.Limit, s.Median / t.Limit, met})
		fmt.Fprintf(&md, "| %s | %.4g %s | %.2f× | %s |\n", t.Goal, s.Median, t.Metric, s.Median/t.Limit, map[bool]string{true: "yes", false: "**no**"}[met])
	}
	if len(notes) > 0 {
		md.WriteString("\n## Notes from the run\n\n")
		for _, n := range notes {
			fmt.Fprintf(&md, "- %s\n", n)
		}
	}
	var bullmq *bullDoc
	if bull != "" {
		if raw, err := os.ReadFile(bull); err == nil {
			bullmq = &bullDoc{}
			if err := json.Unmarshal(raw, bullmq); err != nil {
				return fmt.Errorf("%s: %w", bull, err)
			}
		}
	}
	if bullmq != nil {
		fmt.Fprintf(&md, "\n## The earlier stack: BullMQ %s (make bench-bull, %s, node %s, %d jobs)\n\n", bullmq.BullMQ, bullmq.Date, bullmq.Node, bullmq.Jobs)
		md.WriteString("| figure | median | min–max | runs |\n|---|---|---|---|\n")
		names := slices.Sorted(maps.Keys(bullmq.Figures))
		for _, n := range names {
			f := bullmq.Figures[n]
			fmt.Fprintf(&md, "| %s | %.4g | %.4g–%.4g | %d |\n", n, f.Median, f.Min, f.Max, len(f.Runs))
		}
		if d, ok := bullmq.Figures["drain jobs/s"]; ok && d.Median > 0 {
			for _, k := range []string{"BenchmarkDrain/tuned/workers=10|jobs/s", "BenchmarkDelivery/send-message/workers=10|jobs/s", "BenchmarkDelivery/send-message/workers=50|jobs/s"} {
				if s, ok := byKey[k]; ok {
					fmt.Fprintf(&md, "\n%s: %.4g jobs/s = %.2f× BullMQ's no-op drain (%.4g jobs/s, 100 concurrency).",
						strings.TrimPrefix(strings.Split(k, "|")[0], "Benchmark"), s.Median, s.Median/d.Median, d.Median)
				}
			}
			md.WriteString("\n")
		}
	}
	md.WriteString("\n## Every figure\n\n| benchmark | metric | median | min–max | runs |\n|---|---|---|---|---|\n")
	for _, s := range stats {
		fmt.Fprintf(&md, "| %s | %s | %.4g | %.4g–%.4g | %d |\n", strings.TrimPrefix(s.Benchmark, "Benchmark"), s.Metric, s.Median, s.Min, s.Max, len(s.Runs))
	}
	if err := os.WriteFile(out+".md", []byte(md.String()), 0o644); err != nil {
		return err
	}
	doc := map[string]any{"machine": machine, "targets": verdicts, "figures": stats, "notes": notes}
	if bullmq != nil {
		doc["bullmq"] = bullmq
	}
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out+".json", append(js, '\n'), 0o644)
}
