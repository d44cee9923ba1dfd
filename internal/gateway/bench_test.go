package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
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
)

// BenchmarkEndToEnd posts messages to gateway node 0 at a fixed rate and
// measures until each frame arrives on a websocket held by node 1 (sender
// and receiver share one clock). It reports p50/p95/p99/max in ms.
func BenchmarkEndToEnd(b *testing.B) {
	const (
		rate     = 500 // messages per second
		duration = 10 * time.Second
		pairs    = 50
	)
	bb := setup(b)
	type pair struct {
		from, to uuid.UUID
		tok      string
	}
	ps := make([]pair, pairs)
	received := make(chan time.Duration, rate*int(duration/time.Second)*2)
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
	post := func(p pair) {
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
		if resp.StatusCode != http.StatusCreated {
			n, _ := failed.LoadOrStore(resp.Status+" "+string(answer), new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
	}

	for b.Loop() {
		total := rate * int(duration/time.Second)
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / rate)
		for i := range total {
			<-tick.C
			wg.Add(1)
			go func() { defer wg.Done(); post(ps[i%pairs]) }()
		}
		tick.Stop()
		wg.Wait()
		failed.Range(func(k, v any) bool {
			b.Errorf("%d posts answered %v", v.(*atomic.Int64).Load(), k)
			return true
		})
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
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.95), "p95-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
	}
}

// BenchmarkBroadcast100k posts a broadcast to 100,000 recipients with
// chunk_size 1000 and reports the seconds until every message is created
// and until every one is sent.
func BenchmarkBroadcast100k(b *testing.B) {
	bb := setup(b)
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
