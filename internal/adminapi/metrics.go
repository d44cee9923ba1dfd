package adminapi

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/msgrunner/msgrunner/internal/db"
)

// queueCollector exports msgrunner_queue_jobs{queue,state} from two SQL
// queries (CollectMetrics) and msgrunner_queue_oldest_waiting_seconds
// from a third, cached for a few seconds so frequent scrapes cost nothing
// extra.
type queueCollector struct {
	s      *Server
	desc   *prometheus.Desc
	oldest *prometheus.Desc
	up     *prometheus.Desc
	ttl    time.Duration

	mu      sync.Mutex
	at      time.Time
	metrics map[string]QueueMetrics
	waits   map[string]time.Duration
	err     error
}

func newQueueCollector(s *Server) *queueCollector {
	return &queueCollector{
		s: s, ttl: 5 * time.Second,
		desc: prometheus.NewDesc("msgrunner_queue_jobs",
			"Jobs per queue and state (waiting, active, delayed, failed, completed, cancelled, paused; see docs/operations.md for River's states).",
			[]string{"queue", "state"}, nil),
		oldest: prometheus.NewDesc("msgrunner_queue_oldest_waiting_seconds",
			"How long the oldest waiting (available) job of the queue has been due; 0 when none waits, or the queue is paused.",
			[]string{"queue"}, nil),
		up: prometheus.NewDesc("msgrunner_queue_metrics_up", "1 when the last queue count query succeeded.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.desc
	ch <- q.oldest
	ch <- q.up
}

// Collect implements prometheus.Collector.
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	q.mu.Lock()
	if time.Since(q.at) > q.ttl {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		q.metrics, _, q.err = q.s.Metrics(ctx)
		if q.err == nil {
			q.waits, q.err = db.OldestWaiting(ctx, q.s.pool)
		}
		cancel()
		q.at = time.Now()
	}
	metrics, waits, err := q.metrics, q.waits, q.err
	q.mu.Unlock()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(q.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(q.up, prometheus.GaugeValue, 1)
	for name, m := range metrics {
		for state, v := range map[string]int64{
			"waiting": m.Waiting, "active": m.Active, "delayed": m.Delayed, "failed": m.Failed,
			"completed": m.Completed, "cancelled": m.Cancelled, "paused": m.Paused,
		} {
			ch <- prometheus.MustNewConstMetric(q.desc, prometheus.GaugeValue, float64(v), name, state)
		}
		// A paused queue's jobs are paused, not waiting (its Waiting is 0).
		oldest := 0.0
		if m.Waiting > 0 {
			oldest = waits[name].Seconds()
		}
		ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, oldest, name)
	}
}
