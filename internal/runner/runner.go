package runner

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/trace"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/httpserve"
	"github.com/msgrunner/msgrunner/internal/tracing"
	"github.com/msgrunner/msgrunner/jobs"
)

// Defaults for Config fields left zero.
const (
	// DefaultFetchCooldown is the least time between two fetches of one
	// queue. River's 100ms default caps a queue at MaxWorkers jobs per
	// 100ms (about 100 jobs/s for the 10-worker delivery queue); 2ms lifts
	// that cap well past what the box can do while keeping an idle runner's
	// fetch rate bounded.
	DefaultFetchCooldown = 2 * time.Millisecond
	// DefaultFetchPollInterval is the fallback poll when LISTEN/NOTIFY is
	// quiet (River's default is 1s). New jobs normally arrive by notify.
	DefaultFetchPollInterval = 100 * time.Millisecond
	// DefaultRescueStuckJobsAfter is River's own rescuer, the last resort:
	// a job still running this long after it started, and past its own
	// timeout, is taken to be hung and is retried even if its runner is
	// alive. Jobs of dead runners are handed back much sooner by the lease
	// rescuer (see DefaultLeaseTTL), which never takes a job from a runner
	// whose lease is live.
	DefaultRescueStuckJobsAfter = time.Hour
	// DefaultJobTimeout applies to kinds whose worker sets none (every kind
	// here sets one; this guards test and future workers).
	DefaultJobTimeout = 30 * time.Second
	// DefaultShutdownTimeout is how long a stopping runner lets running jobs
	// finish before cancelling their contexts.
	DefaultShutdownTimeout = 25 * time.Second
	// DefaultCompletedRetention keeps completed jobs for a day.
	DefaultCompletedRetention = 24 * time.Hour
	// DefaultCancelledRetention keeps cancelled jobs for a day.
	DefaultCancelledRetention = 24 * time.Hour
	// DefaultDiscardedRetention keeps discarded (dead-letter) jobs for a
	// week, so operators can still retry them.
	DefaultDiscardedRetention = 7 * 24 * time.Hour
)

// hardStopGrace is how long Shutdown waits after cancelling running jobs
// for them to return.
const hardStopGrace = 5 * time.Second

// Config configures a Runner. Zero fields take the documented defaults.
type Config struct {
	// ID is the prefix of this runner's id in River's tables and in
	// runner_leases; a random suffix is added, so ids are never reused.
	// Host name and pid when empty.
	ID string
	// Queues lists the queues to work with their worker counts; required.
	Queues []jobs.QueueSpec
	// Workers holds a worker for every kind the queues may contain; required.
	Workers *river.Workers
	// FetchCooldown, FetchPollInterval: see the Default constants.
	FetchCooldown     time.Duration
	FetchPollInterval time.Duration
	// RescueStuckJobsAfter: see DefaultRescueStuckJobsAfter.
	RescueStuckJobsAfter time.Duration
	// LeaseTTL and RescueGrace: see DefaultLeaseTTL and
	// DefaultRescueGrace.
	LeaseTTL    time.Duration
	RescueGrace time.Duration
	// JobTimeout: see DefaultJobTimeout.
	JobTimeout time.Duration
	// ShutdownTimeout: see DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Retention of finished jobs before River's cleaner deletes them.
	CompletedRetention time.Duration
	CancelledRetention time.Duration
	DiscardedRetention time.Duration
	// Addr is where /healthz and /readyz listen (":0" picks a free port);
	// empty disables the HTTP server.
	Addr string
	// Logger receives structured logs; required.
	Logger *slog.Logger
	// RiverLogger receives River's own logs; Logger when nil.
	RiverLogger *slog.Logger
	// Registry receives the runner's Prometheus metrics, served on
	// /metrics; a new registry when nil (never the global one).
	Registry *prometheus.Registry
	// Tracer, when set, traces every job's work (River's otelriver
	// middleware), linking each work span to the span that inserted the
	// job when its metadata carries one. Off when nil.
	Tracer trace.TracerProvider
	// PeriodicJobs are scheduled by whichever runner is River's leader, so
	// several runners do not multiply them.
	PeriodicJobs []*river.PeriodicJob
	// AsyncCommit tells that the pool's connections commit without
	// waiting for the disk (db.PoolConfig.AsyncCommit): each job's writes
	// are then made durable before River records its outcome, with one
	// synchronous commit shared by the jobs finishing together.
	AsyncCommit bool
	// NoDurabilityWait lists the job kinds that skip that wait, because
	// a later run redoes whatever of theirs is lost (jobs.RedoneIfLost).
	NoDurabilityWait []string
}

func (c *Config) setDefaults() {
	c.FetchCooldown = cmp.Or(c.FetchCooldown, DefaultFetchCooldown)
	c.FetchPollInterval = cmp.Or(c.FetchPollInterval, DefaultFetchPollInterval)
	c.RescueStuckJobsAfter = cmp.Or(c.RescueStuckJobsAfter, DefaultRescueStuckJobsAfter)
	c.JobTimeout = cmp.Or(c.JobTimeout, DefaultJobTimeout)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultLeaseTTL)
	c.RescueGrace = cmp.Or(c.RescueGrace, DefaultRescueGrace)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.CompletedRetention = cmp.Or(c.CompletedRetention, DefaultCompletedRetention)
	c.CancelledRetention = cmp.Or(c.CancelledRetention, DefaultCancelledRetention)
	c.DiscardedRetention = cmp.Or(c.DiscardedRetention, DefaultDiscardedRetention)
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Queues) == 0 {
		errs = append(errs, errors.New("Config.Queues must list at least one queue"))
	}
	seen := map[string]bool{}
	for _, q := range c.Queues {
		switch {
		case seen[q.Name]:
			errs = append(errs, fmt.Errorf("Config.Queues lists %q twice", q.Name))
		case q.Workers < 1 || q.Workers > 10000:
			errs = append(errs, fmt.Errorf("Config.Queues[%s].Workers must be 1..10000, got %d", q.Name, q.Workers))
		case q.Timeout <= 0:
			errs = append(errs, fmt.Errorf("Config.Queues[%s].Timeout must be positive", q.Name))
		case q.RetryBase <= 0:
			errs = append(errs, fmt.Errorf("Config.Queues[%s].RetryBase must be positive", q.Name))
		}
		seen[q.Name] = true
	}
	if c.Workers == nil {
		errs = append(errs, errors.New("Config.Workers is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("Config.Logger is required"))
	}
	if c.RescueStuckJobsAfter < c.JobTimeout {
		errs = append(errs, fmt.Errorf("Config.RescueStuckJobsAfter (%s) must not be less than JobTimeout (%s)", c.RescueStuckJobsAfter, c.JobTimeout))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("Config.LeaseTTL must be at least 1s, got %s", c.LeaseTTL))
	}
	return errors.Join(errs...)
}

// Runner works jobs. Create one with New, then Start it; Shutdown stops it.
type Runner struct {
	cfg          Config
	pool         *pgxpool.Pool
	riverCfg     river.Config // template; each client gets its own ID
	client       atomic.Pointer[river.Client[pgx.Tx]]
	logger       *slog.Logger
	leaseMetrics *leaseMetrics
	working      *working // the jobs this process's workers run
	idBase       string
	server       *httpserve.Server // nil without Config.Addr
	started      atomic.Bool
	stopping     atomic.Bool

	mu        sync.Mutex // guards lease, and client swaps against Shutdown
	lease     db.Lease
	stopLease context.CancelFunc // ends leaseLoop
	leaseDone chan struct{}      // closed when leaseLoop returns
}

// New validates cfg and builds the River client; nothing runs until Start.
func New(pool *pgxpool.Pool, cfg Config) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	metrics, err := newJobMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("runner: registering metrics: %w", err)
	}
	// With a tracer, each job's work is a span, linked to the traced
	// request (the gateway's, the admin server's) that inserted the job.
	work := newWorking()
	middleware := []rivertype.Middleware{metrics, work}
	if cfg.AsyncCommit {
		// Innermost of these: the wait counts in the job's run time, and
		// the job is still among those working while it waits.
		middleware = append(middleware, newDurable(pool, cfg.NoDurabilityWait))
	}
	middleware = append(middleware, tracing.RiverMiddleware(cfg.Tracer)...)
	queues := make(map[string]river.QueueConfig, len(cfg.Queues))
	for _, q := range cfg.Queues {
		qc := river.QueueConfig{MaxWorkers: q.Workers, FetchCooldown: q.FetchCooldown}
		if q.FetchCooldown > cfg.FetchPollInterval {
			// River refuses a poll interval shorter than the cooldown.
			qc.FetchPollInterval = q.FetchCooldown
		}
		queues[q.Name] = qc
	}
	lm, err := newLeaseMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("runner: registering metrics: %w", err)
	}
	r := &Runner{cfg: cfg, pool: pool, logger: cfg.Logger, leaseMetrics: lm, idBase: cfg.ID, working: work}
	host, _ := os.Hostname()
	r.lease = db.Lease{RunnerID: newRunnerID(cfg.ID), Hostname: host, PID: os.Getpid(), TTL: cfg.LeaseTTL}
	r.riverCfg = river.Config{
		Queues:                      queues,
		Workers:                     cfg.Workers,
		FetchCooldown:               cfg.FetchCooldown,
		FetchPollInterval:           cfg.FetchPollInterval,
		RescueStuckJobsAfter:        cfg.RescueStuckJobsAfter,
		JobTimeout:                  cfg.JobTimeout,
		SoftStopTimeout:             cfg.ShutdownTimeout,
		CompletedJobRetentionPeriod: cfg.CompletedRetention,
		CancelledJobRetentionPeriod: cfg.CancelledRetention,
		DiscardedJobRetentionPeriod: cfg.DiscardedRetention,
		Logger:                      cmp.Or(cfg.RiverLogger, cfg.Logger),
		Middleware:                  middleware,
		PeriodicJobs:                cfg.PeriodicJobs,
	}
	client, err := r.newClient(r.lease.RunnerID)
	if err != nil {
		return nil, err
	}
	r.client.Store(client)
	return r, nil
}

func (r *Runner) newClient(id string) (*river.Client[pgx.Tx], error) {
	c := r.riverCfg
	c.ID = id
	client, err := river.NewClient(riverpgxv5.New(r.pool), &c)
	if err != nil {
		return nil, fmt.Errorf("runner: creating River client: %w", err)
	}
	return client, nil
}

// Client returns the River client, for inserting jobs or subscribing to
// events. A runner that lost its lease rejoins with a new client, so
// callers should not keep the result across long periods.
func (r *Runner) Client() *river.Client[pgx.Tx] { return r.client.Load() }

func (r *Runner) currentClient() *river.Client[pgx.Tx] { return r.client.Load() }

// ID returns the runner's current id, as recorded in river_job.attempted_by
// and runner_leases.
func (r *Runner) ID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lease.RunnerID
}

// Start starts working jobs and, when Config.Addr is set, serves /healthz
// and /readyz. ctx bounds only the start itself; stop with Shutdown.
func (r *Runner) Start(ctx context.Context) error {
	if r.cfg.Addr != "" {
		srv, err := httpserve.Listen(r.cfg.Addr, r.Handler(), r.logger, "runner health server")
		if err != nil {
			return err
		}
		r.server = srv
	}
	// The lease comes first: no job is taken without one.
	leaseStart := time.Now()
	if ok, err := db.RenewLease(ctx, r.pool, r.lease); err != nil || !ok {
		_ = r.server.Close()
		return fmt.Errorf("runner: taking a lease: %w", cmp.Or(err, errors.New("refused")))
	}
	// River's Start context governs its lifetime; Shutdown stops it instead.
	if err := r.currentClient().Start(context.WithoutCancel(ctx)); err != nil {
		_ = r.server.Close()
		_ = db.StopLease(context.WithoutCancel(ctx), r.pool, r.lease.RunnerID)
		return fmt.Errorf("runner: starting River client: %w", err)
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stopLease, r.leaseDone = stop, make(chan struct{})
	go func() {
		defer close(r.leaseDone)
		r.leaseLoop(lctx, leaseStart)
	}()
	r.started.Store(true)
	r.logger.Info("runner started", slog.Int("queues", len(r.cfg.Queues)),
		slog.Duration("fetch_cooldown", r.cfg.FetchCooldown),
		slog.Duration("fetch_poll_interval", r.cfg.FetchPollInterval),
		slog.String("runner_id", r.lease.RunnerID), slog.Duration("lease_ttl", r.cfg.LeaseTTL),
		slog.Duration("rescue_stuck_jobs_after", r.cfg.RescueStuckJobsAfter))
	return nil
}

// Addr returns the address the health server listens on, or "" without one.
func (r *Runner) Addr() string { return r.server.Addr() }

// Shutdown stops fetching new jobs and lets running ones finish for up to
// Config.ShutdownTimeout, then cancels their contexts and waits a few
// seconds more for them to return. River puts a job cut off this way back
// in the queue as available, without using up an attempt, so another runner
// works it. ctx bounds the whole wait. The health server closes last.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.stopping.Store(true)
	client := r.currentClient()
	r.mu.Unlock()
	r.logger.Info("runner stopping", slog.Duration("shutdown_timeout", r.cfg.ShutdownTimeout))
	stopCtx, cancel := context.WithTimeout(ctx, r.cfg.ShutdownTimeout+hardStopGrace)
	defer cancel()
	// The lease is renewed while jobs finish; it ends once River has
	// stopped, so anything River could not hand back is rescued at once.
	err := client.Stop(stopCtx)
	if err != nil {
		err = fmt.Errorf("runner: stopping River client: %w", err)
	}
	if r.stopLease != nil {
		r.stopLease()
		<-r.leaseDone
		lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if lerr := db.StopLease(lctx, r.pool, r.ID()); lerr != nil {
			r.logger.Warn("ending the runner lease failed; it expires by itself", slog.String("error", lerr.Error()))
		}
		lcancel()
	}
	if serr := r.server.Shutdown(context.WithoutCancel(ctx)); serr != nil && err == nil {
		err = fmt.Errorf("runner: stopping health server: %w", serr)
	}
	r.logger.Info("runner stopped")
	return err
}

// Handler serves GET /healthz (the process is up), GET /readyz (the
// runner is started, not stopping, and Postgres answers within a second)
// and GET /metrics (Prometheus).
func (r *Runner) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		checks := map[string]string{"runner": "ok", "postgres": "ok"}
		status := http.StatusOK
		switch {
		case r.stopping.Load():
			checks["runner"], status = "stopping", http.StatusServiceUnavailable
		case !r.started.Load():
			checks["runner"], status = "starting", http.StatusServiceUnavailable
		}
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if err := r.pool.Ping(ctx); err != nil {
			checks["postgres"], status = "unreachable", http.StatusServiceUnavailable
		}
		body := map[string]any{"status": "ready", "checks": checks}
		if status != http.StatusOK {
			body["status"] = "not ready"
		}
		writeJSON(w, status, body)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
