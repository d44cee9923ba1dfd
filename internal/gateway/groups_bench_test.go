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
)

// benchGroup creates a group of n members (the first its owner), each
// with a socket on node i%2, and returns the members, their tokens and the
// group's id.
func benchGroup(b *testing.B, bb *bundle, n int, out chan<- latency.Arrival) ([]uuid.UUID, []string, string) {
	ctx := b.Context()
	users := make([]uuid.UUID, n)
	toks := make([]string, n)
	ids := make([]string, 0, n-1)
	for i := range users {
		users[i] = uuid.New()
		toks[i] = bb.token(b, users[i])
		if i > 0 {
			ids = append(ids, users[i].String())
		}
	}
	body, _ := json.Marshal(map[string]any{"title": "bench", "member_ids": ids})
	req, _ := http.NewRequest(http.MethodPost, bb.nodes[0].base+"/v1/conversations", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+toks[0])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(b, http.StatusCreated, resp.StatusCode, string(raw))
	var g struct {
		ID string `json:"id"`
	}
	require.NoError(b, json.Unmarshal(raw, &g))
	for i := range users {
		c, _, err := websocket.Dial(ctx, strings.Replace(bb.nodes[i%2].base, "http", "ws", 1)+"/v1/ws?token="+toks[i], nil)
		require.NoError(b, err)
		b.Cleanup(func() { c.CloseNow() })
		ready := make(chan struct{})
		go latency.ReceiveEach(ctx, c, ready, func(a latency.Arrival) { out <- a })
		<-ready
	}
	return users, toks, g.ID
}

// postStamped posts a message stamped with the time to conv (a group's
// when to is uuid.Nil) as tok's user, and reports whether it was stored
// (201); a failed post is the caller's to count or report.
func postStamped(b *testing.B, client *http.Client, base, tok, conv string, to uuid.UUID) bool {
	m := map[string]any{"conversation_id": conv, "content": latency.Stamp(time.Now())}
	if to != uuid.Nil {
		m["recipient_id"] = to
	}
	body, _ := json.Marshal(m)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusCreated
}

func quantileMS(ds []time.Duration, p float64) float64 {
	slices.Sort(ds)
	return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
}

// BenchmarkGroupFanout measures group conversations on two gateways.
//
// members=1000: a 1,000-member group with every member's socket open (half
// on each gateway); 100 messages, one at a time, from members in turn:
// the time from the POST to the last member's frame (p50, p99), and the
// rows written per message (the message, its jobs, its search entry;
// notifications, one per member and channel, apart) against a 10-member
// group's.
//
// members=50: a 50-member group at 200 msg/s (BENCH_GROUP_RATE) for 10 s
// against direct conversations at the same rate in the same run: every
// frame's age, p50/p99 of each, the ratio of the group's p99 to the
// direct one's, and how many posts were not stored (every message of one
// group takes its seq under the group's row lock, one transaction after
// the other) and how many frames of stored messages never arrived.
func BenchmarkGroupFanout(b *testing.B) {
	bb := setupDirect(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	// rows counts the rows a group's messages wrote, apart from their
	// notifications.
	rows := func(conv string) (msgs, total int) {
		var n, all int
		require.NoError(b, bb.pool.QueryRow(context.Background(), `
			WITH m AS (SELECT id FROM messages WHERE conversation_id = $1 AND event IS NULL)
			SELECT (SELECT count(*) FROM m),
			       (SELECT count(*) FROM m)
			     + (SELECT count(*) FROM river_job j JOIN m ON j.args->>'message_id' = m.id::text)
			     + (SELECT count(*) FROM message_search s JOIN m ON s.message_id = m.id)
			     + (SELECT count(*) FROM search_backlog s JOIN m ON s.message_id = m.id)`, conv).Scan(&n, &all))
		return n, all
	}

	b.Run("members=1000", func(b *testing.B) {
		const members, messages = 1000, 100
		arrivals := make(chan latency.Arrival, members*4)
		_, toks, conv := benchGroup(b, bb, members, arrivals)
		small := make(chan latency.Arrival, 1000)
		_, smallToks, smallConv := benchGroup(b, bb, 10, small)
		go func() {
			for range small {
				// Drained: the small group only counts rows.
			}
		}()
		for b.Loop() {
			lasts := make([]time.Duration, 0, messages)
			for i := range messages {
				if !postStamped(b, client, bb.nodes[i%2].base, toks[i%members], conv, uuid.Nil) ||
					!postStamped(b, client, bb.nodes[i%2].base, smallToks[i%10], smallConv, uuid.Nil) {
					b.Fatalf("message %d was not stored", i)
				}
				// Every other member gets this message's frame once.
				var last time.Duration
				timeout := time.After(30 * time.Second)
				for got := 0; got < members-1; {
					select {
					case a := <-arrivals:
						got++
						last = max(last, a.Age)
					case <-timeout:
						b.Fatalf("message %d: only %d of %d members got its frame", i, got, members-1)
					}
				}
				lasts = append(lasts, last)
				time.Sleep(20 * time.Millisecond)
			}
			b.ReportMetric(quantileMS(lasts, 0.50), "last-frame-p50-ms")
			b.ReportMetric(quantileMS(lasts, 0.99), "last-frame-p99-ms")
		}
		// Let the side work (indexing) finish before counting rows.
		require.Eventually(b, func() bool {
			n, err := sideBacklog(bb)
			return err == nil && n == 0
		}, 2*time.Minute, 100*time.Millisecond)
		n, all := rows(conv)
		sn, sall := rows(smallConv)
		b.ReportMetric(float64(all)/float64(n), "rows-per-msg-1000")
		b.ReportMetric(float64(sall)/float64(sn), "rows-per-msg-10")
	})

	b.Run("members=50", func(b *testing.B) {
		const members, seconds = 50, 10
		rate := 200
		if v := os.Getenv("BENCH_GROUP_RATE"); v != "" {
			r, err := strconv.Atoi(v)
			if err != nil || r < 1 || r > 10_000 {
				b.Fatalf("BENCH_GROUP_RATE: %q is not a rate in messages per second", v)
			}
			rate = r
		}
		groupArrivals := make(chan latency.Arrival, rate*seconds*members)
		_, toks, conv := benchGroup(b, bb, members, groupArrivals)
		directArrivals := make(chan latency.Arrival, rate*seconds*2)
		type pair struct {
			to        uuid.UUID
			tok, conv string
		}
		pairs := make([]pair, members)
		for i := range pairs {
			from, to := uuid.New(), uuid.New()
			pairs[i] = pair{to: to, tok: bb.token(b, from), conv: gateway.DirectConversationID(from, to).String()}
			c, _, err := websocket.Dial(b.Context(), strings.Replace(bb.nodes[i%2].base, "http", "ws", 1)+"/v1/ws?token="+bb.token(b, to), nil)
			require.NoError(b, err)
			b.Cleanup(func() { c.CloseNow() })
			ready := make(chan struct{})
			go latency.ReceiveEach(b.Context(), c, ready, func(a latency.Arrival) { directArrivals <- a })
			<-ready
		}
		// run posts at rate for seconds, fanout frames per stored message,
		// and returns every frame's age, the posts not stored and the
		// frames of stored messages that did not arrive within a minute.
		run := func(post func(i int) bool, fanout int, in <-chan latency.Arrival) (ages []time.Duration, failed, missing int) {
			var wg sync.WaitGroup
			var stored atomic.Int64
			tick := time.NewTicker(time.Second / time.Duration(rate))
			for i := range rate * seconds {
				<-tick.C
				wg.Add(1)
				go func() {
					defer wg.Done()
					if post(i) {
						stored.Add(1)
					}
				}()
			}
			tick.Stop()
			wg.Wait()
			frames := int(stored.Load()) * fanout
			timeout := time.After(60 * time.Second)
			for len(ages) < frames {
				select {
				case a := <-in:
					ages = append(ages, a.Age)
				case <-timeout:
					return ages, rate*seconds - int(stored.Load()), frames - len(ages)
				}
			}
			return ages, rate*seconds - int(stored.Load()), 0
		}
		for b.Loop() {
			direct, dfailed, dmissing := run(func(i int) bool {
				p := pairs[i%members]
				return postStamped(b, client, bb.nodes[0].base, p.tok, p.conv, p.to)
			}, 1, directArrivals)
			group, gfailed, gmissing := run(func(i int) bool {
				return postStamped(b, client, bb.nodes[0].base, toks[i%members], conv, uuid.Nil)
			}, members-1, groupArrivals)
			b.ReportMetric(float64(dfailed), "direct-failed-posts")
			b.ReportMetric(float64(dmissing), "direct-missing-frames")
			b.ReportMetric(float64(gfailed), "group-failed-posts")
			b.ReportMetric(float64(gmissing), "group-missing-frames")
			if len(direct) == 0 || len(group) == 0 {
				b.Fatalf("no frame arrived (direct %d, group %d)", len(direct), len(group))
			}
			dp99, gp99 := quantileMS(direct, 0.99), quantileMS(group, 0.99)
			b.ReportMetric(quantileMS(direct, 0.50), "direct-p50-ms")
			b.ReportMetric(dp99, "direct-p99-ms")
			b.ReportMetric(quantileMS(group, 0.50), "group-p50-ms")
			b.ReportMetric(gp99, "group-p99-ms")
			b.ReportMetric(gp99/dp99, "p99-ratio")
		}
	})
}
