// Package boot turns configuration values into the clients a server
// process starts with, the same way in every binary: the runner, the
// gateway and `admin serve`.
//
// It works in two steps. Before anything connects, the builders (Logger,
// RedisOptions, Sealer, Attachments, Tracing, and the runner's
// NotifyProviders) make clients and their settings from internal/config's
// plain values and report what those clients refuse through the
// config.Reader, under the variable's name, so a binary lists every
// configuration problem at once. Then Start checks the schema, opens
// the pool, checks the search language, connects Redis, starts tracing,
// makes the Prometheus registry and the profiler, in that order, and
// Process.Close releases them in reverse.
package boot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/msgrunner/msgrunner/internal/attachments"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/httpserve"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/internal/tracing"
)

// Logger returns the logger c configures, writing to w.
func Logger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// RedisConfig is how a process reaches Redis: a Redis Cluster when
// Cluster is set, else the single server of Single.
type RedisConfig struct {
	// Single is the options of a single server; nil when Cluster is set.
	Single *redis.Options
	// Cluster is the options of go-redis's cluster client; nil for a
	// single server.
	Cluster *redis.ClusterOptions
}

// NewClient returns a client on the cluster, or on the single server.
func (c *RedisConfig) NewClient() redis.UniversalClient {
	if c.Cluster != nil {
		return redis.NewClusterClient(c.Cluster)
	}
	return redis.NewClient(c.Single)
}

// Addr is where the client connects, for logs: the server's address, or
// the cluster's seed nodes joined by commas.
func (c *RedisConfig) Addr() string {
	if c.Cluster != nil {
		return strings.Join(c.Cluster.Addrs, ",")
	}
	return c.Single.Addr
}

// AtLeast returns a logger writing through logger's handler only what is
// at level or above (and what logger itself lets through): River's own
// log lines at RIVER_LOG_LEVEL, say, while the process logs at LOG_LEVEL.
func AtLeast(logger *slog.Logger, level slog.Level) *slog.Logger {
	return slog.New(minLevel{Handler: logger.Handler(), level: level})
}

// minLevel is a handler that drops records below level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(attrs), level: h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), level: h.level}
}

// RedisOptions returns how to reach the Redis of c: the cluster of its
// seed nodes when c.ClusterAddrs is set; else the server of its URL when
// set, else of its address and credentials. A URL that does not parse is
// reported through r under REDIS_URL, without quoting it (it may hold a
// password), and the local default address is returned.
func RedisOptions(r *config.Reader, c config.Redis) *RedisConfig {
	if len(c.ClusterAddrs) > 0 {
		return &RedisConfig{Cluster: &redis.ClusterOptions{
			Addrs:    c.ClusterAddrs,
			Username: c.Username,
			Password: c.Password,
		}}
	}
	if c.URL != "" {
		opts, err := redis.ParseURL(c.URL)
		if err != nil {
			r.Fail(config.RedisURL, "must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0")
			return &RedisConfig{Single: &redis.Options{Addr: "127.0.0.1:6379"}}
		}
		return &RedisConfig{Single: opts}
	}
	return &RedisConfig{Single: &redis.Options{
		Addr:     net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Username: c.Username,
		Password: c.Password,
		DB:       c.DB,
	}}
}

// Sealer returns a Sealer over c's keyring, or nil when encryption is off.
// A keyring that does not parse is reported through r under
// ENCRYPTION_KEYS; the problem names key ids, never keys.
func Sealer(r *config.Reader, c config.Encryption) *keyring.Sealer {
	if c.Keys == "" {
		return nil
	}
	ring, err := keyring.Parse(c.Keys, c.ActiveKey)
	if err != nil {
		r.Fail(config.EncryptionKeys, "%v", err)
		return nil
	}
	return keyring.NewSealer(ring)
}

// Attachments returns the local attachment store in dir (created if
// missing), or nil when dir is empty. A directory it cannot create is
// reported through r under ATTACHMENTS_DIR.
func Attachments(r *config.Reader, dir string) *attachments.Dir {
	if dir == "" {
		return nil
	}
	store, err := attachments.NewDir(dir)
	if err != nil {
		r.Fail(config.AttachmentsDir, "%v", err)
		return nil
	}
	return store
}

// Tracing returns the tracing configuration of c, or nil when tracing is
// off.
func Tracing(c config.Tracing) *tracing.Config {
	if c.Endpoint == "" {
		return nil
	}
	return &tracing.Config{Endpoint: c.Endpoint, ServiceName: c.ServiceName, SampleRatio: c.SampleRatio}
}

// Config is what Start brings up.
type Config struct {
	// Name is the binary: "runner", "gateway" or "admin". The pool's
	// application_name is msgrunner-<Name>, and the profiler's log line
	// names it. Required.
	Name string
	// Logger is the process's logger. Required.
	Logger *slog.Logger
	// Database is the pool's URL and size.
	Database config.Database
	// AsyncCommit makes the pool's connections commit without waiting
	// for the WAL flush (db.PoolConfig.AsyncCommit).
	AsyncCommit bool
	// SearchLanguage, when set, must be a text search configuration of
	// the database.
	SearchLanguage string
	// Redis, when set, is connected and pinged. A failed ping is logged,
	// not returned: Postgres is the source of truth, and Redis work
	// resumes when it answers.
	Redis *RedisConfig
	// Tracing, when set, starts a tracer provider; TracedWork names what
	// it traces in the log line that says so ("job work").
	Tracing    *tracing.Config
	TracedWork string
	// PprofAddr, when set, serves Go's runtime profiles there.
	PprofAddr string
}

// Process is what a started server shares: its logger, pool, Redis client,
// tracer provider and metrics registry. Close releases them; it is not
// safe for concurrent use.
type Process struct {
	// Logger is Config.Logger.
	Logger *slog.Logger
	// Pool is the PostgreSQL pool.
	Pool *pgxpool.Pool
	// Redis is nil when Config.Redis is; a cluster client when
	// Config.Redis.Cluster is set.
	Redis redis.UniversalClient
	// Tracer is nil when tracing is off.
	Tracer trace.TracerProvider
	// Registry holds the Go runtime and process collectors; the server
	// registers its own metrics on it.
	Registry *prometheus.Registry
	closers  []func()
}

// Start brings up c: it refuses a database whose schema is behind
// (db.ErrSchemaBehind) or that lacks the search language, and returns the
// first error of any step after releasing what earlier steps opened.
func Start(ctx context.Context, c Config) (_ *Process, err error) {
	p := &Process{Logger: c.Logger}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if err := db.RequireCurrentSchema(ctx, c.Database.URL); err != nil {
		return nil, err
	}
	pool, err := db.NewPool(ctx, db.PoolConfig{
		URL: c.Database.URL, MaxConns: int32(c.Database.MaxConns), ApplicationName: "msgrunner-" + c.Name, AsyncCommit: c.AsyncCommit,
	})
	if err != nil {
		return nil, err
	}
	p.Pool = pool
	p.closers = append(p.closers, pool.Close)
	if c.SearchLanguage != "" {
		if err := db.RequireSearchLanguage(ctx, pool, c.SearchLanguage); err != nil {
			return nil, err
		}
	}
	if c.Redis != nil {
		p.Redis = c.Redis.NewClient()
		p.closers = append(p.closers, func() { _ = p.Redis.Close() })
		if err := p.Redis.Ping(ctx).Err(); err != nil {
			c.Logger.Warn("redis unreachable; starting anyway (messages are stored; live delivery resumes when it returns)",
				slog.String("addr", c.Redis.Addr()), slog.String("error", err.Error()))
		}
	}
	tp, stopTracing, err := tracing.Start(ctx, c.Tracing, c.Logger, c.TracedWork)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.OTELExporterOTLPEndpoint, err)
	}
	p.Tracer = tp
	p.closers = append(p.closers, stopTracing)
	p.Registry = prometheus.NewRegistry()
	p.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prof, err := httpserve.ListenProfiler(c.PprofAddr, c.Logger, c.Name)
	if err != nil {
		return nil, err
	}
	p.closers = append(p.closers, func() { _ = prof.Close() })
	return p, nil
}

// Close stops the profiler and tracing (flushing spans) and closes the
// Redis client and the pool, in that order.
func (p *Process) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}
