package config

import (
	"time"

	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/internal/tracing"
	"github.com/msgrunner/msgrunner/outbox"
)

// Settings the gateway and the runner both read, so they always agree on
// names, defaults and bounds.

// MaxContentBytes reads MAX_CONTENT_BYTES, the largest message content.
func (r *Reader) MaxContentBytes() int {
	return r.Int("MAX_CONTENT_BYTES", outbox.DefaultMaxContentBytes, 1, 16<<20)
}

// SearchLanguage reads SEARCH_LANGUAGE, the text search configuration.
func (r *Reader) SearchLanguage() string { return r.String("SEARCH_LANGUAGE", "simple") }

// RedisPrefix reads REDIS_PREFIX, the prefix of every Redis key and
// channel.
func (r *Reader) RedisPrefix() string { return r.String("REDIS_PREFIX", fanout.DefaultPrefix) }

// DeliveryBackstop reads DELIVERY_BACKSTOP_DELAY: how long a message
// written without a send-message job (its writer publishes it right after
// commit) may stay pending before the runner's deliver-pending sweep
// publishes it.
func (r *Reader) DeliveryBackstop() time.Duration {
	return r.Duration("DELIVERY_BACKSTOP_DELAY", outbox.DefaultDeliveryBackstop, 100*time.Millisecond, time.Hour)
}

// Sealer returns a Sealer over the ENCRYPTION_KEYS keyring, or nil when no
// keys are set.
func (r *Reader) Sealer() *keyring.Sealer {
	if ring := r.Keyring(); ring != nil {
		return keyring.NewSealer(ring)
	}
	return nil
}

// Tracing reads OTEL_EXPORTER_OTLP_ENDPOINT (tracing is off, nil, when it
// is unset), OTEL_SERVICE_NAME (service by default) and
// OTEL_TRACES_SAMPLE_PERCENT (1–100, default 100).
func (r *Reader) Tracing(service string) *tracing.Config {
	endpoint, ok := r.Lookup("OTEL_EXPORTER_OTLP_ENDPOINT")
	if !ok {
		return nil
	}
	ratio := r.Int("OTEL_TRACES_SAMPLE_PERCENT", 100, 1, 100)
	return &tracing.Config{Endpoint: endpoint, ServiceName: r.String("OTEL_SERVICE_NAME", service), SampleRatio: float64(ratio) / 100}
}
