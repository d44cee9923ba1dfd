package perf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/msgrunner/msgrunner/internal/latency"
	"github.com/msgrunner/msgrunner/outbox"
)

// BenchmarkResources is the end-to-end scenario with every part in a
// process of its own: a runner and two gateways run as the real binaries,
// and this process is only the load generator. It posts to gateway 0 at
// 500 msg/s for BENCH_RESOURCES_SECONDS (default 20), after an unmeasured
// second of warm-up at that rate, and receives each
// frame on a websocket held by gateway 1, one clock for both. It reports
// the latency quantiles, and for the runner and each gateway the peak
// VmRSS (sampled every 100 ms) and the CPU seconds (utime+stime from
// /proc/<pid>/stat) spent from the first post to the last frame; and the
// load generator's own CPU seconds over the same window.
func BenchmarkResources(b *testing.B) {
	const (
		rate  = 500
		pairs = 50
	)
	seconds := 20
	if v, err := strconv.Atoi(os.Getenv("BENCH_RESOURCES_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	raiseFileLimit(b, 4096)
	profileDir := os.Getenv("BENCH_PROFILE_DIR")
	for b.Loop() {
		w := newWorld(b)
		// With BENCH_PROFILE_DIR set, each process serves its profiles
		// (PPROF_ADDR) and a CPU profile of the measured posts is saved.
		profAddrs := make([]string, 3)
		profEnv := func(i int) string {
			if profileDir == "" {
				return ""
			}
			profAddrs[i] = freeAddr(b)
			return "PPROF_ADDR=" + profAddrs[i]
		}
		rn := w.start(b, "runner", "runner", profEnv(0))
		gws := []*proc{
			w.start(b, "gateway", "gateway-0", "DATABASE_MAX_CONNS=40", profEnv(1)),
			w.start(b, "gateway", "gateway-1", "DATABASE_MAX_CONNS=40", profEnv(2)),
		}
		ctx, cancel := context.WithCancel(context.Background())
		total := rate * seconds
		received := make(chan time.Duration, 2*total)
		type pair struct {
			from, to uuid.UUID
			tok      string
		}
		ps := make([]pair, pairs)
		var conns []*websocket.Conn
		for i := range ps {
			ps[i] = pair{from: uuid.New(), to: uuid.New()}
			ps[i].tok = w.token(b, ps[i].from)
			c, _, err := websocket.Dial(ctx, "ws://"+gws[1].addr+"/v1/ws?token="+w.token(b, ps[i].to), nil)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			ready := make(chan struct{})
			go latency.Receive(ctx, c, ready, received)
			select {
			case <-ready:
			case <-time.After(10 * time.Second):
				b.Fatal("no ready frame within 10s")
			}
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		post := func(p pair) {
			body, _ := json.Marshal(map[string]any{
				"conversation_id": outbox.DirectConversationID(p.from, p.to), "recipient_id": p.to,
				"content": latency.Stamp(time.Now()),
			})
			req, _ := http.NewRequest(http.MethodPost, "http://"+gws[0].addr+"/v1/messages", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+p.tok)
			if resp, err := client.Do(req); err == nil {
				// Read the answer to its end, or the connection is closed
				// instead of reused (a new TCP connection per post).
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}

		// send posts n messages at the rate and waits for every answer.
		send := func(n int) {
			var wg sync.WaitGroup
			tick := time.NewTicker(time.Second / rate)
			for i := range n {
				<-tick.C
				wg.Add(1)
				go func() { defer wg.Done(); post(ps[i%pairs]) }()
			}
			tick.Stop()
			wg.Wait()
		}
		// Warm up for a second, unmeasured: first connections, prepared
		// statements, River's first inserts.
		send(rate)
		for range rate {
			select {
			case <-received:
			case <-time.After(30 * time.Second):
				b.Fatal("the warm-up messages did not arrive")
			}
		}

		pids := []int{rn.pid(), gws[0].pid(), gws[1].pid()}
		cpu0 := make([]float64, len(pids))
		for i, pid := range pids {
			v, err := cpuSeconds(pid)
			if err != nil {
				b.Fatal(err)
			}
			cpu0[i] = v
		}
		self0 := selfCPUSeconds()
		peaks := peakSampler(ctx, pids...)

		profiled := saveCPUProfiles(b, profileDir, profAddrs, []string{"runner", "gw-post", "gw-ws"}, seconds)
		send(total)
		profiled()
		lat := make([]time.Duration, 0, total)
		timeout := time.After(30 * time.Second)
		for len(lat) < total {
			select {
			case d := <-received:
				lat = append(lat, d)
			case <-timeout:
				b.Fatalf("only %d of %d frames arrived", len(lat), total)
			}
		}
		// Let the runner finish the jobs of the last messages
		// (send-notification, the index-pending sweep) so their cost is counted.
		time.Sleep(time.Second)
		peak := peaks()
		selfCPU := selfCPUSeconds() - self0
		cpu := make([]float64, len(pids))
		for i, pid := range pids {
			v, err := cpuSeconds(pid)
			if err != nil {
				b.Fatal(err)
			}
			cpu[i] = v - cpu0[i]
		}

		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.95), "p95-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
		for i, name := range []string{"runner", "gw-post", "gw-ws"} {
			b.ReportMetric(peak[i], name+"-peak-MiB")
			b.ReportMetric(cpu[i], name+"-cpu-s")
		}
		b.ReportMetric(selfCPU, "loadgen-cpu-s")
		b.Logf("note: resources at %d msg/s for %ds: CPU seconds runner %.1f, gateway (posts) %.1f, gateway (websockets) %.1f, load generator %.1f; peak RSS MiB %.0f / %.0f / %.0f",
			rate, seconds, cpu[0], cpu[1], cpu[2], selfCPU, peak[0], peak[1], peak[2])

		cancel()
		for _, c := range conns {
			c.CloseNow()
		}
		for _, p := range append(gws, rn) {
			p.stop()
		}
	}
}

// saveCPUProfiles starts a CPU profile of seconds in each process with a
// profiler address and returns a function that waits for them and writes
// <dir>/<name>-<unix time>.cpu.pprof. Without a dir it does nothing.
func saveCPUProfiles(b *testing.B, dir string, addrs, names []string, seconds int) (wait func()) {
	if dir == "" {
		return func() {}
	}
	var wg sync.WaitGroup
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	for i, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=" + strconv.Itoa(seconds))
			if err != nil {
				b.Errorf("profiling %s: %v", names[i], err)
				return
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s: %s", resp.Status, raw)
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, names[i]+"-"+stamp+".cpu.pprof"), raw, 0o644)
			}
			if err != nil {
				b.Errorf("profiling %s: %v", names[i], err)
			}
		}()
	}
	return wg.Wait
}
