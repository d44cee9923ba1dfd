// Package tracing builds the OpenTelemetry tracer provider the runner,
// the gateway and the admin server use when tracing is turned on (it is
// off by default), exported over OTLP/HTTP, and the HTTP middleware that
// makes each API request a span. Job work and job inserts are traced by
// River's otelriver middleware, which carries the trace from the request
// that inserted a job to the job's work.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config configures tracing.
type Config struct {
	// Endpoint is the OTLP/HTTP collector base URL, e.g.
	// http://127.0.0.1:4318; traces go to <Endpoint>/v1/traces. Required.
	Endpoint string
	// ServiceName names this process in traces. Required.
	ServiceName string
	// SampleRatio is the fraction of traces kept, 0 < r <= 1. Default 1.
	SampleRatio float64
}

// NewProvider returns a tracer provider that batches spans to the
// collector. Shut it down to flush.
func NewProvider(ctx context.Context, cfg Config) (*sdktrace.TracerProvider, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("tracing: endpoint must be an http(s) URL such as http://127.0.0.1:4318")
	}
	if cfg.ServiceName == "" {
		return nil, errors.New("tracing: service name is required")
	}
	if cfg.SampleRatio == 0 {
		cfg.SampleRatio = 1
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, fmt.Errorf("tracing: sample ratio must be in (0, 1], got %v", cfg.SampleRatio)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.JoinPath("/v1/traces").String()))
	if err != nil {
		return nil, fmt.Errorf("tracing: creating exporter: %w", err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))),
	), nil
}

// Start returns the provider of cfg and a function that flushes and stops
// it (within 5 s), or a nil provider (a nil interface, which every
// Tracer field here reads as tracing off) and a no-op when cfg is nil.
// what names the traced work in the log line that says tracing is on.
func Start(ctx context.Context, cfg *Config, logger *slog.Logger, what string) (trace.TracerProvider, func(), error) {
	if cfg == nil {
		return nil, func() {}, nil
	}
	tp, err := NewProvider(ctx, *cfg)
	if err != nil {
		return nil, nil, err
	}
	logger.Info("tracing "+what, slog.String("endpoint", cfg.Endpoint), slog.String("service", cfg.ServiceName))
	return tp, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx) // flush what is buffered
	}, nil
}
