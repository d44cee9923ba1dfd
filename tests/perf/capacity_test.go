package perf

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/fanout"
)

// BenchmarkGatewayCapacity opens BENCH_CONNS (default 10,000) idle
// websockets, one user each, on one gateway process and reports its memory
// per connection: the growth of its VmRSS (/proc/<pid>/status) from before
// the first connection to 3 s after the last one is ready, over the
// connection count ("rss-KiB/conn"; the clients live in this process and
// are not counted). Then one message is published to each user the way
// the runner publishes (fanout.PublishMessage, 16 publishers), and it
// reports the time until every socket has its frame and the frames/s.
func BenchmarkGatewayCapacity(b *testing.B) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_CONNS")); err == nil && v > 0 {
		n = v
	}
	raiseFileLimit(b, uint64(n)+2000)
	for b.Loop() {
		w := newWorld(b)
		gw := w.start(b, "gateway", "gateway", "DATABASE_MAX_CONNS=10", "METRICS_TOKEN="+metricsToken)
		time.Sleep(time.Second)
		before, err := rssKiB(gw.pid(), "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		goBefore := goMetrics(b, gw)

		ctx, cancel := context.WithCancel(context.Background())
		users := make([]uuid.UUID, n)
		tokens := make([]string, n)
		for i := range users {
			users[i] = uuid.New()
			tokens[i] = w.token(b, users[i])
		}
		var ready, got, failed atomic.Int64
		conns := make([]*websocket.Conn, n)
		url := "ws://" + gw.addr + "/v1/ws?token="
		dialStart := time.Now()
		var next atomic.Int64
		var dialers sync.WaitGroup
		for range 32 {
			dialers.Add(1)
			go func() {
				defer dialers.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
					c, _, err := websocket.Dial(dctx, url+tokens[i], nil)
					dcancel()
					if err != nil {
						failed.Add(1)
						continue
					}
					conns[i] = c
					go readFrames(ctx, c, &ready, &got)
				}
			}()
		}
		dialers.Wait()
		if f := failed.Load(); f > 0 {
			b.Fatalf("%d of %d websocket dials failed", f, n)
		}
		waitCount(b, &ready, n, time.Minute, "ready frames")
		connectS := time.Since(dialStart).Seconds()
		time.Sleep(3 * time.Second)
		after, err := rssKiB(gw.pid(), "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		goAfter := goMetrics(b, gw)

		fo := fanout.New(w.rdb, fanout.Config{Keys: fanout.Keys{Prefix: w.prefix}})
		start := time.Now()
		var pubs sync.WaitGroup
		var pubNext atomic.Int64
		for range 16 {
			pubs.Add(1)
			go func() {
				defer pubs.Done()
				for {
					i := int(pubNext.Add(1)) - 1
					if i >= n {
						return
					}
					from := uuid.New()
					err := fo.PublishMessage(ctx, fanout.MessageFrame{
						Type: fanout.FrameMessage, ID: uuid.New(), ConversationID: uuid.New(), Seq: 1,
						SenderID: from, RecipientID: users[i], Content: "capacity", CreatedAt: time.Now(),
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		pubs.Wait()
		published := time.Since(start)
		waitCount(b, &got, n, 2*time.Minute, "message frames")
		fan := time.Since(start)

		b.ReportMetric(float64(after-before)/float64(n), "rss-KiB/conn")
		b.ReportMetric(float64(before)/1024, "rss-idle-MiB")
		perConn := func(m string) float64 { return (goAfter[m] - goBefore[m]) / float64(n) }
		b.ReportMetric(perConn("go_memstats_stack_inuse_bytes")/1024, "stack-KiB/conn")
		b.ReportMetric(perConn("go_memstats_heap_inuse_bytes")/1024, "heap-KiB/conn")
		b.ReportMetric(perConn("go_goroutines"), "goroutines/conn")
		b.ReportMetric(connectS, "connect-s")
		b.ReportMetric(published.Seconds(), "publish-s")
		b.ReportMetric(fan.Seconds(), "fanout-s")
		b.ReportMetric(float64(n)/fan.Seconds(), "frames/s")
		b.Logf("note: gateway capacity: %d idle websockets, gateway VmRSS %d → %d KiB (%.1f KiB each); %d frames fanned out in %.2fs; %d CPUs, this process holds the clients",
			n, before, after, float64(after-before)/float64(n), n, fan.Seconds(), runtime.NumCPU())
		cancel()
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
		gw.stop()
	}
}

// metricsToken guards the capacity gateway's /metrics.
const metricsToken = "perf-bench-metrics-token-0123456789"

// goMetrics scrapes the Go runtime gauges (go_*) of a gateway's /metrics.
func goMetrics(b *testing.B, gw *proc) map[string]float64 {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+gw.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && strings.HasPrefix(f[0], "go_") {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out
}

// waitCount polls until c reaches n, failing b after within.
func waitCount(b *testing.B, c *atomic.Int64, n int, within time.Duration, what string) {
	b.Helper()
	deadline := time.Now().Add(within)
	for c.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d %s after %s", c.Load(), n, what, within)
		}
		time.Sleep(time.Millisecond)
	}
}

// readFrames reads c until it fails, counting "ready" and "message"
// frames.
func readFrames(ctx context.Context, c *websocket.Conn, ready, got *atomic.Int64) {
	for {
		_, raw, err := c.Read(ctx)
		if err != nil {
			return
		}
		var f struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &f) != nil {
			continue
		}
		switch f.Type {
		case "ready":
			ready.Add(1)
		case fanout.FrameMessage:
			got.Add(1)
		}
	}
}
