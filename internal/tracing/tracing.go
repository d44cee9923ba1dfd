// Package tracing builds the OpenTelemetry tracer provider the runner uses
// when tracing is turned on (it is off by default): spans of job work,
// through River's otelriver middleware, exported over OTLP/HTTP.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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
