package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/gateway"
	"github.com/msgrunner/msgrunner/internal/latency"
	"github.com/msgrunner/msgrunner/jobs"
)

// BenchmarkEndToEnd posts messages to gateway node 0 at fixed rates and
// measures until each frame arrives on a websocket held by node 1 (sender
// and receiver share one clock): one sub-benchmark per rate, 500 and 250
// msg/s unless BENCH_E2E_RATES lists others ("500,250"), each after an
// unmeasured second of warm-up at its rate. It reports p50/p95/p99/max in
// ms, the POSTs' own p50/p99 round trip, and whether the side work kept
// up: the most side work not done at once (notification and indexing
// jobs waiting or running, messages in the search backlog; sampled every
// 250 ms) and the ms from the last POST's answer until none is left.
func BenchmarkEndToEnd(b *testing.B) {
	const (
		duration = 10 * time.Second
		pairs    = 50
	)
	rates := []int{500, 250}
	if v := os.Getenv("BENCH_E2E_RATES"); v != "" {
		rates = rates[:0]
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r < 1 || r > 100_000 {
				b.Fatalf("BENCH_E2E_RATES: %q is not a rate in messages per second", f)
			}
			rates = append(rates, r)
		}
	}
	bb := setupDirect(b)
	type pair struct {
		from, to uuid.UUID
		tok      string
	}
	ps := make([]pair, pairs)
	received := make(chan time.Duration, slices.Max(rates)*int(duration/time.Second)*2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range ps {
		ps[i] = pair{from: uuid.New(), to: uuid.New()}
		ps[i].tok = bb.token(b, ps[i].from)
		c, _, err := websocket.Dial(ctx, strings.Replace(bb.nodes[1].base, "http", "ws", 1)+"/v1/ws?token="+bb.token(b, ps[i].to), nil)
		require.NoError(b, err)
		defer c.CloseNow()
		ready := make(chan struct{})
		go latency.Receive(ctx, c, ready, received)
		<-ready
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var failed sync.Map // answer (status or error) → count, for the failure message
	var postMu sync.Mutex
	var posts []time.Duration // each POST's round trip, as its sender saw it
	post := func(p pair) {
		start := time.Now()
		body, _ := json.Marshal(map[string]any{
			"conversation_id": gateway.DirectConversationID(p.from, p.to), "recipient_id": p.to,
			"content": latency.Stamp(time.Now()),
		})
		req, _ := http.NewRequest(http.MethodPost, bb.nodes[0].base+"/v1/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+p.tok)
		resp, err := client.Do(req)
		if err != nil {
			n, _ := failed.LoadOrStore(err.Error(), new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			return
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		postMu.Lock()
		posts = append(posts, time.Since(start))
		postMu.Unlock()
		if resp.StatusCode != http.StatusCreated {
			n, _ := failed.LoadOrStore(resp.Status+" "+string(answer), new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
	}

	// send posts n messages at rate and waits for every answer.
	send := func(rate, n int) {
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / time.Duration(rate))
		for i := range n {
			<-tick.C
			wg.Add(1)
			go func() { defer wg.Done(); post(ps[i%pairs]) }()
		}
		tick.Stop()
		wg.Wait()
	}
	for _, rate := range rates {
		b.Run("rate="+strconv.Itoa(rate), func(b *testing.B) {
			// Warm up for a second, unmeasured: the pools' and the HTTP client's
			// first connections, prepared statements, River's first inserts.
			send(rate, rate)
			for range rate {
				select {
				case <-received:
				case <-time.After(30 * time.Second):
					b.Fatal("the warm-up messages did not arrive")
				}
			}
			postMu.Lock()
			posts = posts[:0]
			postMu.Unlock()

			for b.Loop() {
				total := rate * int(duration/time.Second)
				// Side work (notifications, indexing) must keep up: a runner
				// that let it pile up would buy its latency with a backlog.
				stopSampling := make(chan struct{})
				peak := make(chan int64, 1)
				go func() {
					var most int64
					defer func() { peak <- most }()
					tick := time.NewTicker(250 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stopSampling:
							return
						case <-tick.C:
							n, err := sideBacklog(bb)
							if err != nil {
								b.Errorf("sampling the side work: %v", err)
								return
							}
							most = max(most, n)
						}
					}
				}()
				send(rate, total)
				sent := time.Now()
				failed.Range(func(k, v any) bool {
					b.Errorf("%d posts answered %v", v.(*atomic.Int64).Load(), k)
					return true
				})
				failed.Clear()
				if b.Failed() {
					b.FailNow()
				}
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
				for time.Since(sent) < time.Minute {
					n, err := sideBacklog(bb)
					require.NoError(b, err)
					if n == 0 {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				close(stopSampling)
				b.ReportMetric(float64(time.Since(sent).Milliseconds()), "side-drained-ms")
				b.ReportMetric(float64(<-peak), "side-backlog-max")
				quantile := func(ds []time.Duration, p float64) float64 {
					return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
				}
				slices.Sort(lat)
				b.ReportMetric(quantile(lat, 0.50), "p50-ms")
				b.ReportMetric(quantile(lat, 0.95), "p95-ms")
				b.ReportMetric(quantile(lat, 0.99), "p99-ms")
				b.ReportMetric(quantile(lat, 1), "max-ms")
				// The POST's own round trip (stored, published, answered): whether
				// a slow frame was slow to be written or to travel.
				postMu.Lock()
				slices.Sort(posts)
				b.ReportMetric(quantile(posts, 0.50), "post-p50-ms")
				b.ReportMetric(quantile(posts, 0.99), "post-p99-ms")
				posts = posts[:0]
				postMu.Unlock()
			}
		})
	}
}

// sideBacklog counts the side work not done yet: notification and
// indexing jobs waiting or running, and messages in the search backlog.
func sideBacklog(bb *bundle) (int64, error) {
	var n int64
	err := bb.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM river_job
		WHERE queue = ANY($1) AND state IN ('available', 'running', 'retryable', 'pending') AND kind <> $2)
		+ (SELECT count(*) FROM search_backlog)`,
		[]string{jobs.QueueMessageNotification, jobs.QueueMessageIndexing}, jobs.KindIndexPending).Scan(&n)
	return n, err
}

// BenchmarkBroadcast100k posts a broadcast to 100,000 recipients with
// chunk_size 1000 and reports the seconds until every message is created
// and until every one is sent.
func BenchmarkBroadcast100k(b *testing.B) {
	bb := setupDirect(b)
	sender := uuid.New()
	tok := bb.token(b, sender)
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = uuid.New().String()
	}
	body, err := json.Marshal(map[string]any{"recipient_ids": ids, "content": "announcement", "chunk_size": 1000})
	require.NoError(b, err)
	count := func(sql string) int {
		var n int
		require.NoError(b, bb.pool.QueryRow(context.Background(), sql, sender).Scan(&n))
		return n
	}
	for b.Loop() {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, bb.nodes[0].base+"/v1/broadcasts", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(b, err)
		resp.Body.Close()
		require.Equal(b, http.StatusAccepted, resp.StatusCode)
		accepted := time.Since(start)
		var created, sent time.Duration
		deadline := time.Now().Add(5 * time.Minute)
		for time.Now().Before(deadline) && sent == 0 {
			time.Sleep(250 * time.Millisecond)
			if created == 0 && count(`SELECT count(*) FROM messages WHERE sender_id = $1`) == len(ids) {
				created = time.Since(start)
			}
			if created != 0 && count(`SELECT count(*) FROM messages WHERE sender_id = $1 AND status = 'sent'`) == len(ids) {
				sent = time.Since(start)
			}
		}
		require.NotZero(b, sent, "not all messages were sent within 5 minutes")
		b.ReportMetric(accepted.Seconds(), "accepted-s")
		b.ReportMetric(created.Seconds(), "created-s")
		b.ReportMetric(sent.Seconds(), "sent-s")
	}
}
