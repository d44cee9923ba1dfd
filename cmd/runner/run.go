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
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/robfig/cron/v3"

	"github.com/msgrunner/msgrunner/internal/attachments"
	"github.com/msgrunner/msgrunner/internal/broadcast"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/httpserve"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/internal/tracing"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/workers"
)

// settings is the runner's whole configuration, read from the environment.
type settings struct {
	DatabaseURL string
	MaxConns    int
	MaxContent  int
	AsyncCommit bool
	SearchLang  string
	Redis       *redis.Options
	RedisPrefix string
	// PprofAddr, when set (PPROF_ADDR, loopback only), serves Go's
	// runtime profiles.
	PprofAddr string
	// DeliveryBackstop is how long a message written without a
	// send-message job (by a gateway or a broadcast chunk, which publish
	// it themselves) may stay pending before the deliver-pending sweep
	// publishes it; DeliverySweep is how often the sweep runs.
	DeliveryBackstop time.Duration
	DeliverySweep    time.Duration
	// IndexSweep is how often the index-pending sweep indexes the search
	// backlog (new plaintext messages).
	IndexSweep time.Duration
	Logger     *slog.Logger
	Runner     runner.Config
	// Tracing is set when OTEL_EXPORTER_OTLP_ENDPOINT is.
	Tracing *tracing.Config
	// Sealer rotates conversation keys (encrypt-decrypt); nil without
	// ENCRYPTION_KEYS.
	Sealer *keyring.Sealer
	// Attachments is the store expired_attachments cleanup deletes from.
	Attachments attachments.Store
	// Notify holds the notification providers (nil ones disabled) and the
	// templates, checked at start.
	Notify notify.Providers
	// ExportDir receives encrypt-decrypt `decrypt` exports (EXPORT_DIR);
	// empty refuses them.
	ExportDir string
	// Cleanup is the periodic cleanup: a cron schedule and one job per type.
	CleanupSchedule cron.Schedule
	Cleanup         []jobs.CleanupMessagesArgs
	// History is the job-history job's schedule and arguments.
	HistoryEvery time.Duration
	History      jobs.JobHistoryArgs
}

// queueEnvPrefix turns a queue name into its variables' prefix:
// message-delivery → QUEUE_MESSAGE_DELIVERY_.
func queueEnvPrefix(queue string) string {
	return "QUEUE_" + strings.ToUpper(strings.ReplaceAll(queue, "-", "_")) + "_"
}

func loadSettings(getenv func(string) string) (settings, error) {
	r := config.NewReader(getenv)
	s := settings{
		DatabaseURL:      r.DatabaseURL(),
		MaxConns:         r.Int("DATABASE_MAX_CONNS", db.DefaultMaxConns, 4, 1000),
		MaxContent:       r.MaxContentBytes(),
		AsyncCommit:      r.Bool("RUNNER_ASYNC_COMMIT", true),
		SearchLang:       r.SearchLanguage(),
		Redis:            r.Redis(),
		RedisPrefix:      r.RedisPrefix(),
		DeliveryBackstop: r.DeliveryBackstop(),
		DeliverySweep:    r.Duration("DELIVERY_SWEEP_INTERVAL", jobs.DefaultDeliverySweep, 100*time.Millisecond, time.Hour),
		IndexSweep:       r.Duration("INDEX_SWEEP_INTERVAL", jobs.DefaultIndexSweep, 100*time.Millisecond, time.Hour),
		Logger:           r.Logger(os.Stderr),
		PprofAddr:        r.LoopbackAddr("PPROF_ADDR"),
	}
	queues := jobs.DefaultQueues()
	for i := range queues {
		q := &queues[i]
		p := queueEnvPrefix(q.Name)
		q.Workers = r.Int(p+"WORKERS", q.Workers, 1, 10000)
		q.RetryBase = r.Duration(p+"RETRY_BASE", q.RetryBase, time.Millisecond, 24*time.Hour)
		q.Timeout = r.Duration(p+"TIMEOUT", q.Timeout, time.Second, 24*time.Hour)
		q.FetchCooldown = r.Duration(p+"FETCH_COOLDOWN", q.FetchCooldown, 0, time.Minute)
	}
	s.Runner = runner.Config{
		ID:                   r.String("RUNNER_ID", ""),
		Queues:               queues,
		Addr:                 r.Addr("RUNNER_ADDR", ":9090"),
		FetchCooldown:        r.Duration("RIVER_FETCH_COOLDOWN", runner.DefaultFetchCooldown, time.Millisecond, time.Minute),
		FetchPollInterval:    r.Duration("RIVER_FETCH_POLL_INTERVAL", runner.DefaultFetchPollInterval, time.Millisecond, time.Hour),
		RescueStuckJobsAfter: r.Duration("RIVER_RESCUE_STUCK_JOBS_AFTER", runner.DefaultRescueStuckJobsAfter, runner.DefaultJobTimeout, 24*time.Hour),
		LeaseTTL:             r.Duration("RUNNER_LEASE_TTL", runner.DefaultLeaseTTL, time.Second, 10*time.Minute),
		ShutdownTimeout:      r.Duration("RUNNER_SHUTDOWN_TIMEOUT", runner.DefaultShutdownTimeout, time.Second, time.Hour),
		CompletedRetention:   r.Duration("RIVER_COMPLETED_RETENTION", runner.DefaultCompletedRetention, time.Minute, 365*24*time.Hour),
		CancelledRetention:   r.Duration("RIVER_CANCELLED_RETENTION", runner.DefaultCancelledRetention, time.Minute, 365*24*time.Hour),
		DiscardedRetention:   r.Duration("RIVER_DISCARDED_RETENTION", runner.DefaultDiscardedRetention, time.Minute, 365*24*time.Hour),
		Logger:               s.Logger,
	}
	s.Sealer = r.Sealer()
	if store := r.Attachments(); store != nil {
		s.Attachments = store
	}
	s.Notify = r.Notify()
	s.ExportDir = r.String("EXPORT_DIR", "")
	spec := r.String("CLEANUP_SCHEDULE", "0 2 * * *")
	if spec != "off" {
		sched, err := cron.ParseStandard(spec)
		if err != nil {
			r.Fail("CLEANUP_SCHEDULE", "%q is not a cron expression (minute hour day month weekday, or off): %v", spec, err)
		}
		s.CleanupSchedule = sched
		retention := r.Int("CLEANUP_RETENTION_DAYS", 90, 1, jobs.MaxRetentionDays)
		batchSize := r.Int("CLEANUP_BATCH_SIZE", jobs.DefaultCleanupBatchSize, 1, jobs.MaxCleanupBatchSize)
		defaultTypes := "old_messages,deleted_conversations"
		if s.Attachments != nil {
			defaultTypes += ",expired_attachments"
		}
		for _, t := range strings.Split(r.String("CLEANUP_TYPES", defaultTypes), ",") {
			a := jobs.CleanupMessagesArgs{Type: strings.TrimSpace(t), BatchSize: batchSize}
			if a.Type == jobs.CleanupOldMessages {
				a.RetentionDays = retention
			}
			if err := a.Validate(); err != nil {
				r.Fail("CLEANUP_TYPES", "%v", err)
				continue
			}
			s.Cleanup = append(s.Cleanup, a)
		}
	}
	s.HistoryEvery = r.Duration("JOB_HISTORY_INTERVAL", 5*time.Minute, 10*time.Second, time.Hour)
	s.History = jobs.JobHistoryArgs{
		Hours:                r.Int("JOB_HISTORY_HOURS", jobs.DefaultHistoryHours, 1, 168),
		ArchiveRetentionDays: r.Int("FAILED_JOBS_RETENTION_DAYS", jobs.DefaultArchiveRetentionDays, 1, jobs.MaxRetentionDays),
	}
	s.Tracing = r.Tracing("msgrunner-runner")
	if err := r.Err(); err != nil {
		return settings{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return s, nil
}

// run works jobs until ctx is cancelled (by SIGINT or SIGTERM), then shuts
// down gracefully. stopSignals restores default signal handling, so a
// second signal during shutdown kills the process. ready, when not nil, is
// called with the health server's address once the runner works jobs.
func run(ctx context.Context, stopSignals func(), getenv func(string) string, ready func(addr string)) error {
	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	logger := s.Logger

	if err := db.RequireCurrentSchema(ctx, s.DatabaseURL); err != nil {
		return err
	}
	pool, err := db.NewPool(ctx, db.PoolConfig{
		URL: s.DatabaseURL, MaxConns: int32(s.MaxConns), ApplicationName: "msgrunner-runner",
		AsyncCommit: s.AsyncCommit,
	})
	if err != nil {
		return err
	}
	defer pool.Close()

	rdb := redis.NewClient(s.Redis)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		// Postgres is the source of truth: the runner works jobs without
		// Redis, and realtime publishes resume when Redis returns.
		logger.Warn("redis unreachable; starting anyway", slog.String("addr", s.Redis.Addr), slog.String("error", err.Error()))
	}

	if err := db.RequireSearchLanguage(ctx, pool, s.SearchLang); err != nil {
		return err
	}
	// Released scheduled messages are written through the outbox, which
	// only inserts jobs: an insert-only client is enough.
	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: logger})
	if err != nil {
		return fmt.Errorf("creating River insert client: %w", err)
	}
	ob, err := outbox.New(inserter, outbox.Config{MaxContentBytes: s.MaxContent})
	if err != nil {
		return err
	}
	logger.Info("notification providers", slog.Bool("email", s.Notify.Email != nil),
		slog.Bool("push", s.Notify.Push != nil), slog.Bool("sms", s.Notify.SMS != nil))
	fo := fanout.New(rdb, fanout.Config{Keys: fanout.Keys{Prefix: s.RedisPrefix}})
	dl := delivery.New(pool, fo, delivery.Config{Logger: logger})
	ws := river.NewWorkers()
	if err := workers.Register(ws, workers.Deps{
		Pool: pool, Logger: logger, Outbox: ob, SearchLanguage: s.SearchLang, Fanout: fo, Delivery: dl,
		Broadcasts: broadcast.New(pool, ob, inserter, broadcast.Options{Deliverer: dl}), Attachments: s.Attachments,
		Crypto: workers.CryptoConfig{Sealer: s.Sealer, ExportDir: s.ExportDir}, Notify: s.Notify,
	}, s.Runner.Queues); err != nil {
		return err
	}
	s.Runner.Workers = ws
	s.Runner.PeriodicJobs = []*river.PeriodicJob{
		historyJob(s.HistoryEvery, s.History),
		jobs.DeliverPendingPeriodic(s.DeliverySweep, s.DeliveryBackstop),
		jobs.IndexPendingPeriodic(s.IndexSweep),
	}
	for _, a := range s.Cleanup {
		s.Runner.PeriodicJobs = append(s.Runner.PeriodicJobs, cleanupJob(s.CleanupSchedule, a))
	}
	var stopTracing func()
	s.Runner.Tracer, stopTracing, err = tracing.Start(ctx, s.Tracing, logger, "job work")
	if err != nil {
		return err
	}
	defer stopTracing()
	s.Runner.Registry = prometheus.NewRegistry()
	s.Runner.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rn, err := runner.New(pool, s.Runner)
	if err != nil {
		return err
	}
	prof, err := httpserve.ListenProfiler(s.PprofAddr, logger, "runner")
	if err != nil {
		return err
	}
	defer prof.Close()
	if err := rn.Start(ctx); err != nil {
		return err
	}
	logger.Info("runner ready", slog.String("health", "http://"+rn.Addr()+"/healthz"),
		slog.String("database", db.Redact(s.DatabaseURL)), slog.String("redis", s.Redis.Addr))
	if ready != nil {
		ready(rn.Addr())
	}

	<-ctx.Done()
	stopSignals()
	// Shutdown bounds itself by RUNNER_SHUTDOWN_TIMEOUT plus a short grace.
	return rn.Shutdown(context.WithoutCancel(ctx))
}

// historyJob schedules job-history every interval (and at start). Unique
// per interval, so a leader change cannot double it.
func historyJob(every time.Duration, args jobs.JobHistoryArgs) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) {
			return args, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: every}}
		},
		&river.PeriodicJobOpts{RunOnStart: true})
}

// cleanupJob schedules one cleanup type on a cron schedule (River's
// leader inserts it; a cron.Schedule is a river.PeriodicSchedule). Unique
// per hour, so restarts and leader changes do not duplicate a run.
func cleanupJob(schedule cron.Schedule, args jobs.CleanupMessagesArgs) *river.PeriodicJob {
	return river.NewPeriodicJob(schedule,
		func() (river.JobArgs, *river.InsertOpts) {
			return args, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: time.Hour}}
		}, nil)
}
