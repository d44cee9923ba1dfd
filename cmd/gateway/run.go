package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/gateway"
	"github.com/msgrunner/msgrunner/internal/httpserve"
	"github.com/msgrunner/msgrunner/internal/ratelimit"
	"github.com/msgrunner/msgrunner/internal/tracing"
)

type settings struct {
	DatabaseURL string
	MaxConns    int
	Redis       *redis.Options
	RedisPrefix string
	// PprofAddr, when set (PPROF_ADDR, loopback only), serves Go's
	// runtime profiles.
	PprofAddr string
	Logger    *slog.Logger
	Gateway   gateway.Config
	// RateLimit is the per-user limit; PerSecond 0 disables it.
	RateLimit ratelimit.Config
	// Tracing is nil when tracing is off.
	Tracing *tracing.Config
}

// Default per-user rate limit (the burst defaults to twice it): far above
// what a person types, low enough that one token cannot flood the store
// (bulk sends go through broadcasts, one request).
const (
	defaultRateLimitPerSecond = 20
	minMetricsTokenBytes      = 16
)

func loadSettings(getenv func(string) string) (settings, error) {
	r := config.NewReader(getenv)
	s := settings{
		DatabaseURL: r.DatabaseURL(),
		MaxConns:    r.Int("DATABASE_MAX_CONNS", db.DefaultMaxConns, 4, 1000),
		Redis:       r.Redis(),
		RedisPrefix: r.RedisPrefix(),
		Logger:      r.Logger(os.Stderr),
		PprofAddr:   r.LoopbackAddr("PPROF_ADDR"),
	}
	secret, ok := r.Lookup("AUTH_SECRET")
	var authority *auth.Authority
	if !ok {
		r.Fail("AUTH_SECRET", "is required: the HS256 secret that signs bearer tokens (at least %d bytes)", auth.MinSecretBytes)
	} else if a, err := auth.New([]byte(secret), auth.WithIssuer(r.String("AUTH_ISSUER", "")), auth.WithAudience(r.String("AUTH_AUDIENCE", ""))); err != nil {
		r.Fail("AUTH_SECRET", "%v", err)
	} else {
		authority = a
	}
	var origins []string
	for _, o := range strings.Split(r.String("GATEWAY_ALLOWED_ORIGINS", ""), ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	s.Gateway = gateway.Config{
		Addr:               r.Addr("GATEWAY_ADDR", ":8081"),
		Auth:               authority,
		MaxContentBytes:    r.MaxContentBytes(),
		SendBuffer:         r.Int("WS_SEND_BUFFER", gateway.DefaultSendBuffer, 1, 1<<16),
		DBTimeout:          r.Duration("GATEWAY_DB_TIMEOUT", gateway.DefaultDBTimeout, 100*time.Millisecond, time.Minute),
		ShutdownTimeout:    r.Duration("GATEWAY_SHUTDOWN_TIMEOUT", gateway.DefaultShutdownTimeout, time.Second, 10*time.Minute),
		AllowedOrigins:     origins,
		SearchLanguage:     r.SearchLanguage(),
		AttachmentMaxBytes: int64(r.Int("ATTACHMENT_MAX_BYTES", 10<<20, 1, 1<<30)),
		AttachmentTTL:      r.Duration("ATTACHMENT_TTL", 30*24*time.Hour, time.Minute, 10*365*24*time.Hour),
		Logger:             s.Logger,
		MetricsToken:       r.String("METRICS_TOKEN", ""),
	}
	if tok := s.Gateway.MetricsToken; tok != "" && len(tok) < minMetricsTokenBytes {
		r.Fail("METRICS_TOKEN", "must be at least %d characters", minMetricsTokenBytes)
	}
	// /metrics is never open on the public listener: it needs
	// METRICS_TOKEN, or moves to GATEWAY_METRICS_ADDR, or is not served.
	if _, ok := r.Lookup("GATEWAY_METRICS_ADDR"); ok {
		s.Gateway.MetricsAddr = r.Addr("GATEWAY_METRICS_ADDR", "")
	} else if s.Gateway.MetricsToken == "" {
		s.Gateway.MetricsOff = true
	}
	s.RateLimit = ratelimit.Config{
		Prefix:    s.RedisPrefix,
		PerSecond: r.Int("RATE_LIMIT_PER_SECOND", defaultRateLimitPerSecond, 0, 100_000),
	}
	s.RateLimit.Burst = r.Int("RATE_LIMIT_BURST", 2*s.RateLimit.PerSecond, 0, 1_000_000)
	if sealer := r.Sealer(); sealer != nil {
		s.Gateway.Sealer = sealer
	}
	if store := r.Attachments(); store != nil {
		s.Gateway.Attachments = store
	}
	s.Tracing = r.Tracing("msgrunner-gateway")
	if err := r.Err(); err != nil {
		return settings{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return s, nil
}

// run serves until ctx is cancelled, then drains. ready, when not nil, is
// called with the listen address once the gateway serves.
func run(ctx context.Context, stopSignals func(), getenv func(string) string, ready func(addr string)) error {
	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	logger := s.Logger
	if err := db.RequireCurrentSchema(ctx, s.DatabaseURL); err != nil {
		return err
	}
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: s.DatabaseURL, MaxConns: int32(s.MaxConns), ApplicationName: "msgrunner-gateway"})
	if err != nil {
		return err
	}
	defer pool.Close()

	if err := db.RequireSearchLanguage(ctx, pool, s.Gateway.SearchLanguage); err != nil {
		return err
	}
	rdb := redis.NewClient(s.Redis)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		logger.Warn("redis unreachable; serving anyway (messages are stored, live delivery resumes when it returns)",
			slog.String("addr", s.Redis.Addr), slog.String("error", err.Error()))
	}
	if s.RateLimit.PerSecond > 0 {
		if s.Gateway.RateLimiter, err = ratelimit.New(rdb, s.RateLimit); err != nil {
			return err
		}
	}
	keys := fanout.Keys{Prefix: s.RedisPrefix}
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys, Logger: logger})
	defer hub.Close()

	var stopTracing func()
	s.Gateway.Tracer, stopTracing, err = tracing.Start(ctx, s.Tracing, logger, "API requests")
	if err != nil {
		return err
	}
	defer stopTracing()
	s.Gateway.Registry = prometheus.NewRegistry()
	s.Gateway.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gw, err := gateway.New(pool, fanout.New(rdb, fanout.Config{Keys: keys}), hub, s.Gateway)
	if err != nil {
		return err
	}
	prof, err := httpserve.ListenProfiler(s.PprofAddr, logger, "gateway")
	if err != nil {
		return err
	}
	defer prof.Close()
	if err := gw.Start(); err != nil {
		return err
	}
	logger.Info("gateway ready", slog.String("addr", gw.Addr()), slog.String("database", db.Redact(s.DatabaseURL)), slog.String("redis", s.Redis.Addr),
		slog.String("metrics", metricsWhere(s.Gateway, gw)), slog.Int("rate_limit_per_second", s.RateLimit.PerSecond), slog.Int("rate_limit_burst", s.RateLimit.Burst))
	if ready != nil {
		ready(gw.Addr())
	}
	<-ctx.Done()
	stopSignals()
	logger.Info("gateway draining")
	err = gw.Shutdown(context.WithoutCancel(ctx))
	logger.Info("gateway stopped")
	return err
}

// metricsWhere says where /metrics is served, for the start line (never
// the token).
func metricsWhere(cfg gateway.Config, gw *gateway.Server) string {
	switch {
	case cfg.MetricsOff:
		return "off (set METRICS_TOKEN or GATEWAY_METRICS_ADDR)"
	case cfg.MetricsAddr != "" && cfg.MetricsToken != "":
		return gw.MetricsAddr() + " (token required)"
	case cfg.MetricsAddr != "":
		return gw.MetricsAddr()
	}
	return gw.Addr() + " (token required)"
}
