package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/msgrunner/msgrunner/internal/fanout"
)

// gatewayMetrics are the node's Prometheus metrics.
type gatewayMetrics struct {
	connections   prometheus.Gauge
	frames        *prometheus.CounterVec
	messages      *prometheus.CounterVec
	postToPublish prometheus.Histogram
	rateLimit     *prometheus.CounterVec
}

func newGatewayMetrics(reg prometheus.Registerer, hub *fanout.Hub) (*gatewayMetrics, error) {
	m := &gatewayMetrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "msgrunner_gateway_connections",
			Help: "Open websocket connections on this node.",
		}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msgrunner_gateway_frames_sent_total",
			Help: "Frames written to websockets: source=live (from Redis) or reply (answers to the client's own frames).",
		}, []string{"source"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msgrunner_gateway_messages_total",
			Help: "Messages accepted by this node, by result: sent (published at once), pending (left to the job), scheduled.",
		}, []string{"result"}),
		postToPublish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "msgrunner_gateway_post_to_publish_seconds",
			Help:    "Time from receiving a message to having published it to its recipient and marked it sent (the fast path).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
		rateLimit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "msgrunner_gateway_rate_limit_total",
			Help: "Rate-limit decisions that did not simply allow: limited (answered 429 or an error frame), unavailable (the limiter could not answer, so the request went ahead).",
		}, []string{"result"}),
	}
	resubscribes := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "msgrunner_gateway_redis_resubscribes_total",
		Help: "User channels this node subscribed again after losing their Redis connection (each one's sockets were told to resync).",
	}, func() float64 { return float64(hub.Resubscribed()) })
	for _, c := range []prometheus.Collector{m.connections, m.frames, m.messages, m.postToPublish, m.rateLimit, resubscribes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
