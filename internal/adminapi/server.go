// Package adminapi is the operator's HTTP surface: River UI, queue metrics
// and health, failed-job handling, and audit-logged mutations, behind
// operator and viewer tokens.
package adminapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"
	"riverqueue.com/riverui"

	"github.com/msgrunner/msgrunner/api"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/httpserve"
	"github.com/msgrunner/msgrunner/internal/tracing"
	"github.com/msgrunner/msgrunner/jobs"
)

// Thresholds decide a queue's health status.
type Thresholds struct {
	// FailureRate over the window: degraded at or above Degraded, unhealthy
	// at or above Unhealthy. Defaults 0.05 and 0.20.
	DegradedFailureRate  float64 `json:"degraded_failure_rate"`
	UnhealthyFailureRate float64 `json:"unhealthy_failure_rate"`
	// Age of the oldest waiting job. Defaults 1m and 5m.
	DegradedWaitSeconds  float64 `json:"degraded_oldest_waiting_age_seconds"`
	UnhealthyWaitSeconds float64 `json:"unhealthy_oldest_waiting_age_seconds"`
	// Window over which the failure rate is computed. Default 1h.
	Window time.Duration `json:"-"`
	// Sweeps maps each periodic sweep's kind to the interval the runner
	// schedules it at; a sweep that has not completed for three intervals
	// makes its queue degraded. Kinds missing from it take the defaults
	// (DefaultSweeps).
	Sweeps map[string]time.Duration `json:"-"`
}

// DefaultSweeps are the periodic sweeps and the intervals the runner
// schedules them at by default (DELIVERY_SWEEP_INTERVAL,
// INDEX_SWEEP_INTERVAL, JOB_HISTORY_INTERVAL).
func DefaultSweeps() map[string]time.Duration {
	return map[string]time.Duration{
		jobs.KindDeliverPending: jobs.DefaultDeliverySweep,
		jobs.KindIndexPending:   jobs.DefaultIndexSweep,
		jobs.KindJobHistory:     jobs.DefaultHistoryInterval,
	}
}

func (t *Thresholds) setDefaults() {
	t.DegradedFailureRate = cmp.Or(t.DegradedFailureRate, 0.05)
	t.UnhealthyFailureRate = cmp.Or(t.UnhealthyFailureRate, 0.20)
	t.DegradedWaitSeconds = cmp.Or(t.DegradedWaitSeconds, 60)
	t.UnhealthyWaitSeconds = cmp.Or(t.UnhealthyWaitSeconds, 300)
	t.Window = cmp.Or(t.Window, time.Hour)
	sweeps := DefaultSweeps()
	for kind, every := range t.Sweeps {
		if every > 0 {
			sweeps[kind] = every
		}
	}
	t.Sweeps = sweeps
}

// Config configures a Server.
type Config struct {
	// Addr is the listen address (":0" picks a free port). Required.
	Addr string
	// OperatorToken may read and mutate; ViewerToken may only read. At
	// least one is required unless InsecureDev is set.
	OperatorToken string
	ViewerToken   string
	// InsecureDev serves everyone as an operator when no token is set. For
	// development only; the server logs a warning at start.
	InsecureDev bool
	// Queues are the queue names always reported (queues River has seen are
	// added).
	Queues []string
	// Replica, when set, serves the reports from a streaming standby while
	// it keeps up; every other read, and reports while it is bypassed, go
	// to the pool. Optional; the caller closes it.
	Replica *db.Replica
	// Health thresholds and window.
	Health Thresholds
	// Logger receives logs and audit lines. Required.
	Logger *slog.Logger
	// Registry receives the queue metrics, served on /metrics; a new
	// registry when nil (never the global one).
	Registry *prometheus.Registry
	// Tracer, when set, traces each request but /healthz and /metrics
	// (tracing.Echo: method, route and status only). Off when nil. Give
	// the River client tracing.RiverMiddleware of the same provider to
	// trace the jobs the API inserts (encrypt, export) through to their
	// work.
	Tracer trace.TracerProvider
}

// Server is the admin HTTP server.
type Server struct {
	cfg      Config
	pool     *pgxpool.Pool
	river    *river.Client[pgx.Tx]
	ui       *riverui.Handler
	echo     *echo.Echo
	http     *httpserve.Server
	logger   *slog.Logger
	operator *[32]byte
	viewer   *[32]byte
	insecure bool
	stopUI   context.CancelFunc
}

// ErrNoToken is returned by New when no token is configured and
// InsecureDev is not set.
var ErrNoToken = errors.New("adminapi: set ADMIN_TOKEN (and optionally ADMIN_VIEWER_TOKEN), or ADMIN_INSECURE_DEV=1 for development")

// New builds the server. client may be insert-only: it is used for River's
// job and queue operations and by River UI.
func New(pool *pgxpool.Pool, client *river.Client[pgx.Tx], cfg Config) (*Server, error) {
	switch {
	case cfg.Addr == "":
		return nil, errors.New("adminapi: Config.Addr is required")
	case cfg.Logger == nil:
		return nil, errors.New("adminapi: Config.Logger is required")
	case cfg.OperatorToken == "" && cfg.ViewerToken == "" && !cfg.InsecureDev:
		return nil, ErrNoToken
	case cfg.OperatorToken != "" && cfg.OperatorToken == cfg.ViewerToken:
		return nil, errors.New("adminapi: ADMIN_TOKEN and ADMIN_VIEWER_TOKEN must differ")
	}
	cfg.Health.setDefaults()
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, pool: pool, river: client, logger: cfg.Logger}
	if err := cfg.Registry.Register(newQueueCollector(s)); err != nil {
		return nil, fmt.Errorf("adminapi: registering metrics: %w", err)
	}
	if cfg.OperatorToken != "" {
		d := digest(cfg.OperatorToken)
		s.operator = &d
	}
	if cfg.ViewerToken != "" {
		d := digest(cfg.ViewerToken)
		s.viewer = &d
	}
	s.insecure = cfg.OperatorToken == "" && cfg.ViewerToken == "" && cfg.InsecureDev

	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    cfg.Logger,
		Prefix:    "/river",
	})
	if err != nil {
		return nil, fmt.Errorf("adminapi: River UI: %w", err)
	}
	s.ui = ui
	s.echo = s.routes()
	return s, nil
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.httpErrorHandler
	e.Use(tracing.Echo(s.cfg.Tracer, func(path string) bool { return path == "/healthz" || path == "/metrics" }))
	e.Use(s.authenticate)
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/openapi.json", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, api.AdminJSON()) })
	ui := echo.WrapHandler(s.ui)
	e.Any("/river", ui)
	e.Any("/river/*", ui)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})))
	e.GET("/", s.frontPageHandler)
	e.GET("/overview", s.overview)
	e.GET("/queue/metrics", s.queueMetrics)
	e.GET("/queue/health", s.queueHealth)
	e.GET("/queue/health/:queue", s.queueHealth)
	e.GET("/queue/:queue/failed", s.failedJobs)
	e.POST("/queue/:queue/retry-failed", s.retryFailed)
	e.POST("/queue/:queue/pause", s.pauseQueue)
	e.POST("/queue/:queue/resume", s.resumeQueue)
	e.GET("/reports", s.reportsPage)
	e.GET("/reports/:name", s.reportJSON)
	e.GET("/jobs/:id", s.getJob)
	e.POST("/jobs/:id/retry", s.retryJob)
	e.POST("/jobs/:id/cancel", s.cancelJob)
	e.DELETE("/jobs/:id", s.deleteJob)
	e.POST("/conversations/:id/encrypt", s.encryptConversation)
	e.POST("/conversations/:id/export", s.exportConversation)
	return e
}

// Handler returns the server's HTTP handler (Start must have been called
// for River UI's background services).
func (s *Server) Handler() http.Handler { return s.echo }

// Start starts River UI's background services and, when listen is true,
// serves on Config.Addr.
func (s *Server) Start(ctx context.Context, listen bool) error {
	uiCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopUI = cancel
	if err := s.ui.Start(uiCtx); err != nil {
		cancel()
		return fmt.Errorf("adminapi: starting River UI: %w", err)
	}
	if s.insecure {
		s.logger.Warn("ADMIN SERVER IS OPEN: no ADMIN_TOKEN is set and ADMIN_INSECURE_DEV=1, so anyone who can reach it is an operator. Development only.")
	}
	if !listen {
		return nil
	}
	srv, err := httpserve.Listen(s.cfg.Addr, s.echo, s.logger, "admin server")
	if err != nil {
		cancel()
		return err
	}
	s.http = srv
	return nil
}

// Addr returns the listen address, or "" when not listening.
func (s *Server) Addr() string { return s.http.Addr() }

// Shutdown stops serving and River UI's services.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if s.stopUI != nil {
		s.stopUI()
	}
	return err
}

func (s *Server) audit(c echo.Context, action string, attrs ...slog.Attr) {
	who := callerOf(c)
	base := []slog.Attr{slog.String("role", string(who.Role)), slog.String("who", who.Name), slog.String("action", action)}
	s.logger.LogAttrs(c.Request().Context(), slog.LevelInfo, "audit", append(base, attrs...)...)
}
