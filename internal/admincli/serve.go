package admincli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/msgrunner/msgrunner/internal/adminapi"
	"github.com/msgrunner/msgrunner/internal/boot"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/tracing"
	"github.com/msgrunner/msgrunner/jobs"
)

// serveSettings is `admin serve`'s configuration.
type serveSettings struct {
	// Config starts the process: logger, pool, tracing.
	boot.Config
	API adminapi.Config
}

func loadServeSettings(getenv func(string) string, logOut io.Writer) (serveSettings, error) {
	r := config.NewReader(getenv)
	c := r.AdminServe()
	s := serveSettings{Config: boot.Config{
		Name: "admin", Logger: boot.Logger(logOut, c.Log), Database: c.Database,
		Tracing: boot.Tracing(c.Tracing), TracedWork: "admin requests",
	}}
	s.API = adminapi.Config{
		Addr:          c.Addr,
		OperatorToken: c.OperatorToken,
		ViewerToken:   c.ViewerToken,
		InsecureDev:   c.InsecureDev,
		Queues:        jobs.QueueNames(),
		Health: adminapi.Thresholds{
			Window:               c.Health.Window,
			DegradedFailureRate:  float64(c.Health.DegradedFailurePercent) / 100,
			UnhealthyFailureRate: float64(c.Health.UnhealthyFailurePercent) / 100,
			DegradedWaitSeconds:  c.Health.DegradedWait.Seconds(),
			UnhealthyWaitSeconds: c.Health.UnhealthyWait.Seconds(),
			Sweeps: map[string]time.Duration{
				jobs.KindDeliverPending: c.Health.DeliverySweep,
				jobs.KindIndexPending:   c.Health.IndexSweep,
				jobs.KindJobHistory:     c.Health.HistoryEvery,
			},
		},
		Logger: s.Logger,
	}
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
	proc, err := boot.Start(ctx, s.Config)
	if err != nil {
		return err
	}
	defer proc.Close()
	pool := proc.Pool
	s.API.Tracer, s.API.Registry = proc.Tracer, proc.Registry
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: s.Logger, Middleware: tracing.RiverMiddleware(s.API.Tracer)})
	if err != nil {
		return fmt.Errorf("creating River client: %w", err)
	}
	if s.Database.ReadURL != "" {
		replica, err := db.NewReplica(pool, db.ReplicaConfig{
			URL: s.Database.ReadURL, MaxConns: int32(s.Database.MaxConns), MaxLag: s.Database.ReadMaxLag,
			ApplicationName: "msgrunner-admin", Logger: s.Logger, Registry: proc.Registry,
		})
		if err != nil {
			return err
		}
		defer replica.Close()
		s.API.Replica = replica
	}
	srv, err := adminapi.New(pool, client, s.API)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx, true); err != nil {
		return err
	}
	s.Logger.Info("admin server ready", slog.String("addr", srv.Addr()), slog.String("database", db.Redact(s.Database.URL)))
	if ready != nil {
		ready(srv.Addr())
	}
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
