package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/boot"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/gateway"
	"github.com/msgrunner/msgrunner/internal/ratelimit"
)

// settings is the gateway's whole configuration: internal/config's values
// and what is built from them before anything connects.
type settings struct {
	// Config starts the process: logger, pool, Redis, tracing, profiler.
	boot.Config
	RedisPrefix string
	Gateway     gateway.Config
	// RateLimit is the per-user limit; PerSecond 0 disables it.
	RateLimit ratelimit.Config
}

// loadSettings reads the gateway's configuration and builds its clients'
// settings, reporting every problem at once.
func loadSettings(getenv func(string) string) (settings, error) {
	r := config.NewReader(getenv)
	c := r.Gateway()
	s := settings{
		Config: boot.Config{
			Name: "gateway", Logger: boot.Logger(os.Stderr, c.Log), Database: c.Database,
			SearchLanguage: c.SearchLanguage, Redis: boot.RedisOptions(r, c.Redis),
			Tracing: boot.Tracing(c.Tracing), TracedWork: "API requests", PprofAddr: c.PprofAddr,
		},
		RedisPrefix: c.Redis.Prefix,
	}
	var authority *auth.Authority
	if c.Auth.Secret != "" {
		a, err := auth.New([]byte(c.Auth.Secret), auth.WithIssuer(c.Auth.Issuer), auth.WithAudience(c.Auth.Audience))
		if err != nil {
			r.Fail(config.AuthSecret, "%v", err)
		}
		authority = a
	}
	s.Gateway = gateway.Config{
		Addr:               c.Addr,
		Auth:               authority,
		MaxContentBytes:    c.MaxContentBytes,
		SendBuffer:         c.SendBuffer,
		GroupMaxMembers:    c.GroupMaxMembers,
		DBTimeout:          c.DBTimeout,
		ShutdownTimeout:    c.ShutdownTimeout,
		AllowedOrigins:     c.AllowedOrigins,
		SearchLanguage:     c.SearchLanguage,
		AttachmentMaxBytes: c.AttachmentMaxBytes,
		AttachmentTTL:      c.AttachmentTTL,
		Logger:             s.Logger,
		MetricsToken:       c.MetricsToken,
		MetricsAddr:        c.MetricsAddr,
		// /metrics is never open on the public listener: it needs
		// METRICS_TOKEN, or moves to GATEWAY_METRICS_ADDR, or is not
		// served.
		MetricsOff: c.MetricsAddr == "" && c.MetricsToken == "",
	}
	s.RateLimit = ratelimit.Config{Prefix: s.RedisPrefix, PerSecond: c.RateLimitPerSecond, Burst: c.RateLimitBurst}
	if sealer := boot.Sealer(r, c.Encryption); sealer != nil {
		s.Gateway.Sealer = sealer
	}
	if store := boot.Attachments(r, c.AttachmentsDir); store != nil {
		s.Gateway.Attachments = store
	}
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
	proc, err := boot.Start(ctx, s.Config)
	if err != nil {
		return err
	}
	defer proc.Close()
	logger, pool, rdb := proc.Logger, proc.Pool, proc.Redis
	if s.RateLimit.PerSecond > 0 {
		if s.Gateway.RateLimiter, err = ratelimit.New(rdb, s.RateLimit); err != nil {
			return err
		}
	}
	keys := fanout.Keys{Prefix: s.RedisPrefix}
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys, Logger: logger})
	defer hub.Close()

	s.Gateway.Tracer, s.Gateway.Registry = proc.Tracer, proc.Registry
	if s.Database.ReadURL != "" {
		replica, err := db.NewReplica(pool, db.ReplicaConfig{
			URL: s.Database.ReadURL, MaxConns: int32(s.Database.MaxConns), MaxLag: s.Database.ReadMaxLag,
			ApplicationName: "msgrunner-gateway", Logger: logger, Registry: proc.Registry,
		})
		if err != nil {
			return err
		}
		defer replica.Close()
		s.Gateway.Replica = replica
	}
	gw, err := gateway.New(pool, fanout.New(rdb, fanout.Config{Keys: keys}), hub, s.Gateway)
	if err != nil {
		return err
	}
	if err := gw.Start(); err != nil {
		return err
	}
	logger.Info("gateway ready", slog.String("addr", gw.Addr()), slog.String("database", db.Redact(s.Database.URL)), slog.String("redis", s.Redis.Addr()),
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
		return fmt.Sprintf("off (set %s or %s)", config.MetricsToken, config.GatewayMetricsAddr)
	case cfg.MetricsAddr != "" && cfg.MetricsToken != "":
		return gw.MetricsAddr() + " (token required)"
	case cfg.MetricsAddr != "":
		return gw.MetricsAddr()
	}
	return gw.Addr() + " (token required)"
}
