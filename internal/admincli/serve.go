package admincli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/msgrunner/msgrunner/internal/adminapi"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/tracing"
	"github.com/msgrunner/msgrunner/jobs"
)

// serveSettings is `admin serve`'s configuration.
type serveSettings struct {
	DatabaseURL string
	MaxConns    int
	Logger      *slog.Logger
	API         adminapi.Config
	// Tracing is nil when tracing is off.
	Tracing *tracing.Config
}

func loadServeSettings(getenv func(string) string, logOut io.Writer) (serveSettings, error) {
	r := config.NewReader(getenv)
	s := serveSettings{
		DatabaseURL: r.DatabaseURL(),
		MaxConns:    r.Int("DATABASE_MAX_CONNS", 8, 2, 1000),
		Logger:      r.Logger(logOut),
	}
	s.API = adminapi.Config{
		Addr:          r.Addr("ADMIN_ADDR", ":8080"),
		OperatorToken: r.String("ADMIN_TOKEN", ""),
		ViewerToken:   r.String("ADMIN_VIEWER_TOKEN", ""),
		InsecureDev:   r.Bool("ADMIN_INSECURE_DEV", false),
		Queues:        jobs.QueueNames(),
		Health: adminapi.Thresholds{
			Window:               r.Duration("ADMIN_HEALTH_WINDOW", time.Hour, time.Minute, 30*24*time.Hour),
			DegradedFailureRate:  float64(r.Int("ADMIN_HEALTH_DEGRADED_FAILURE_PERCENT", 5, 1, 100)) / 100,
			UnhealthyFailureRate: float64(r.Int("ADMIN_HEALTH_UNHEALTHY_FAILURE_PERCENT", 20, 1, 100)) / 100,
			DegradedWaitSeconds:  r.Duration("ADMIN_HEALTH_DEGRADED_WAIT", time.Minute, time.Second, 24*time.Hour).Seconds(),
			UnhealthyWaitSeconds: r.Duration("ADMIN_HEALTH_UNHEALTHY_WAIT", 5*time.Minute, time.Second, 24*time.Hour).Seconds(),
		},
		Logger: s.Logger,
	}
	for _, name := range []string{"ADMIN_TOKEN", "ADMIN_VIEWER_TOKEN"} {
		if v, ok := r.Lookup(name); ok && len(v) < 16 {
			r.Fail(name, "must be at least 16 characters")
		}
	}
	if s.API.OperatorToken == "" && s.API.ViewerToken == "" && !s.API.InsecureDev {
		r.Fail("ADMIN_TOKEN", "is required (or ADMIN_VIEWER_TOKEN, or ADMIN_INSECURE_DEV=1 for development)")
	}
	s.Tracing = r.Tracing("msgrunner-admin")
	if err := r.Err(); err != nil {
		return serveSettings{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return s, nil
}

// runServe serves the admin API until ctx is cancelled, logging to stderr.
// ready, when not nil, is called with the listen address.
func runServe(ctx context.Context, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	s, err := loadServeSettings(getenv, stderr)
	if err != nil {
		return err
	}
	if err := db.RequireCurrentSchema(ctx, s.DatabaseURL); err != nil {
		return err
	}
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: s.DatabaseURL, MaxConns: int32(s.MaxConns), ApplicationName: "msgrunner-admin"})
	if err != nil {
		return err
	}
	defer pool.Close()
	var stopTracing func()
	s.API.Tracer, stopTracing, err = tracing.Start(ctx, s.Tracing, s.Logger, "admin requests")
	if err != nil {
		return err
	}
	defer stopTracing()
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: s.Logger, Middleware: tracing.RiverMiddleware(s.API.Tracer)})
	if err != nil {
		return fmt.Errorf("creating River client: %w", err)
	}
	s.API.Registry = prometheus.NewRegistry()
	s.API.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := adminapi.New(pool, client, s.API)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx, true); err != nil {
		return err
	}
	s.Logger.Info("admin server ready", slog.String("addr", srv.Addr()), slog.String("database", db.Redact(s.DatabaseURL)))
	if ready != nil {
		ready(srv.Addr())
	}
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
