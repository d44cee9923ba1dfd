package fanout_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

// fanoutLoad is the live fan-out benchmark's load: users connected to one
// hub, and frames published for them in pipelines of a batch each, at
// most rate frames/s in all, from publishers goroutines.
const (
	benchUsers      = 300
	benchFrames     = 30000
	benchBatch      = 50
	benchPublishers = 4
	benchRate       = 10000
)

// BenchmarkLiveFanout publishes message frames for users connected to a
// hub, the same load on a single Redis and on a 3-master Redis Cluster
// (sharded pub/sub) in the same run, and reports for each the frames
// received per second and the publish-to-hub latency (p50, p99), and the
// cluster's throughput as a ratio to the single server's. All servers
// share this machine's cores with the benchmark.
func BenchmarkLiveFanout(b *testing.B) {
	single, singlePrefix := dbtest.Redis(b)
	cluster, clusterPrefix := dbtest.RedisCluster(b)
	for range b.N {
		s := runFanout(b, single, singlePrefix)
		c := runFanout(b, cluster, clusterPrefix)
		b.ReportMetric(s.rate, "single-frames/s")
		b.ReportMetric(c.rate, "cluster-frames/s")
		b.ReportMetric(c.rate/s.rate, "cluster-ratio")
		b.ReportMetric(s.p50, "single-p50-ms")
		b.ReportMetric(s.p99, "single-p99-ms")
		b.ReportMetric(c.p50, "cluster-p50-ms")
		b.ReportMetric(c.p99, "cluster-p99-ms")
		b.Logf("note: live fan-out, %d frames for %d users on one hub at up to %d frames/s: single Redis %.0f frames/s (p50 %.2f ms, p99 %.2f ms), 3-master cluster %.0f frames/s (p50 %.2f ms, p99 %.2f ms); every Redis shares the benchmark's cores",
			benchFrames, benchUsers, benchRate, s.rate, s.p50, s.p99, c.rate, c.p50, c.p99)
	}
}

type fanoutResult struct{ rate, p50, p99 float64 }

func runFanout(b *testing.B, rdb redis.UniversalClient, prefix string) fanoutResult {
	b.Helper()
	ctx := context.Background()
	keys := fanout.Keys{Prefix: prefix + uuid.NewString()[:8] + ":"}
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys})
	defer hub.Close()
	f := fanout.New(rdb, fanout.Config{Keys: keys, RecentMax: 5})

	users := make([]uuid.UUID, benchUsers)
	var mu sync.Mutex
	var latencies []time.Duration
	var received sync.WaitGroup
	received.Add(benchFrames)
	for i := range users {
		users[i] = uuid.New()
		wake := make(chan struct{}, 1)
		sub, err := hub.Subscribe(ctx, users[i], benchFrames, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		go func() {
			for range wake {
				for {
					raw, ok := sub.Next()
					if !ok {
						break
					}
					var fr fanout.MessageFrame
					if err := json.Unmarshal(raw, &fr); err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					latencies = append(latencies, time.Since(fr.CreatedAt))
					mu.Unlock()
					received.Done()
				}
			}
		}()
	}

	start := time.Now()
	var pubs sync.WaitGroup
	perPublisher := benchFrames / benchPublishers
	interval := time.Duration(float64(time.Second) * benchBatch * benchPublishers / benchRate)
	for p := range benchPublishers {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			for sent := 0; sent < perPublisher; sent += benchBatch {
				batch := make([]fanout.MessageFrame, benchBatch)
				for i := range batch {
					u := users[rng.IntN(len(users))]
					batch[i] = fanout.MessageFrame{ID: uuid.New(), ConversationID: u, Seq: int64(sent + i + 1), RecipientID: u, CreatedAt: time.Now()}
				}
				if err := f.PublishMessages(ctx, batch); err != nil {
					b.Error(err)
					return
				}
				<-tick.C
			}
		}()
	}
	pubs.Wait()
	done := make(chan struct{})
	go func() { received.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatal("not every frame arrived within a minute")
	}
	elapsed := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(latencies)
	q := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	return fanoutResult{rate: float64(benchFrames) / elapsed.Seconds(), p50: q(0.5), p99: q(0.99)}
}
