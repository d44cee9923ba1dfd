package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/robfig/cron/v3"

	"github.com/msgrunner/msgrunner/internal/attachments"
	"github.com/msgrunner/msgrunner/internal/boot"
	"github.com/msgrunner/msgrunner/internal/broadcast"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/internal/notify"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/workers"
)

// settings is the runner's whole configuration: internal/config's values
// and what is built from them before anything connects.
type settings struct {
	// Config starts the process: logger, pool, Redis, tracing, profiler.
	boot.Config
	MaxContent  int
	SearchLang  string
	RedisPrefix string
	// DeliveryBackstop is how long a message written without a
	// send-message job (by a gateway or a broadcast chunk, which publish
	// it themselves) may stay pending before the deliver-pending sweep
	// publishes it; DeliverySweep is how often the sweep runs.
	DeliveryBackstop time.Duration
	DeliverySweep    time.Duration
	// IndexSweep is how often the index-pending sweep indexes the search
	// backlog (new plaintext messages).
	IndexSweep time.Duration
	Runner     runner.Config
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

// loadSettings reads the runner's configuration and builds its clients'
// settings, reporting every problem at once.
func loadSettings(getenv func(string) string) (settings, error) {
	r := config.NewReader(getenv)
	c := r.Runner()
	s := settings{
		Config: boot.Config{
			Name: "runner", Logger: boot.Logger(os.Stderr, c.Log), Database: c.Database, AsyncCommit: c.AsyncCommit,
			SearchLanguage: c.SearchLanguage, Redis: boot.RedisOptions(r, c.Redis),
			Tracing: boot.Tracing(c.Tracing), TracedWork: "job work", PprofAddr: c.PprofAddr,
		},
		MaxContent:       c.MaxContentBytes,
		SearchLang:       c.SearchLanguage,
		RedisPrefix:      c.Redis.Prefix,
		DeliveryBackstop: c.DeliveryBackstop,
		DeliverySweep:    c.DeliverySweep,
		IndexSweep:       c.IndexSweep,
		Sealer:           boot.Sealer(r, c.Encryption),
		Notify:           boot.NotifyProviders(r, c.Notify),
		ExportDir:        c.ExportDir,
		CleanupSchedule:  c.CleanupSchedule,
		Cleanup:          c.Cleanup,
		HistoryEvery:     c.HistoryEvery,
		History:          c.History,
	}
	if store := boot.Attachments(r, c.AttachmentsDir); store != nil {
		s.Attachments = store
	}
	s.Runner = runner.Config{
		ID:                   c.ID,
		Queues:               c.Queues,
		Addr:                 c.Addr,
		FetchCooldown:        c.FetchCooldown,
		FetchPollInterval:    c.FetchPollInterval,
		RescueStuckJobsAfter: c.RescueStuckJobsAfter,
		LeaseTTL:             c.LeaseTTL,
		ShutdownTimeout:      c.ShutdownTimeout,
		CompletedRetention:   c.CompletedRetention,
		CancelledRetention:   c.CancelledRetention,
		DiscardedRetention:   c.DiscardedRetention,
		AsyncCommit:          c.AsyncCommit,
		NoDurabilityWait:     jobs.RedoneIfLost(),
		Logger:               s.Logger,
		RiverLogger:          boot.AtLeast(s.Logger, c.RiverLogLevel),
	}
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
	proc, err := boot.Start(ctx, s.Config)
	if err != nil {
		return err
	}
	defer proc.Close()
	logger, pool, rdb := proc.Logger, proc.Pool, proc.Redis

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
	s.Runner.Tracer, s.Runner.Registry = proc.Tracer, proc.Registry
	rn, err := runner.New(pool, s.Runner)
	if err != nil {
		return err
	}
	if err := rn.Start(ctx); err != nil {
		return err
	}
	logger.Info("runner ready", slog.String("health", "http://"+rn.Addr()+"/healthz"),
		slog.String("database", db.Redact(s.Database.URL)), slog.String("redis", s.Redis.Addr()))
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
