package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"
)

// PoolConfig configures a connection pool. The zero value of every field but
// URL takes the documented default.
type PoolConfig struct {
	// URL is a PostgreSQL connection string (URL or key=value form).
	// Required.
	URL string

	// MaxConns caps open connections. pgx defaults to max(4, CPUs), which
	// starves a runner whose workers and River's own producers, completer
	// and notifier all want a connection at once; each binary therefore
	// chooses its own size. Default 20.
	MaxConns int32

	// MinConns keeps this many connections open when idle so the first
	// requests after a quiet spell do not pay for connection setup. Default 2.
	MinConns int32

	// ConnectTimeout bounds each new connection. Default 5s.
	ConnectTimeout time.Duration

	// ApplicationName is reported in pg_stat_activity. Optional.
	ApplicationName string

	// AsyncCommit sets synchronous_commit=off on every connection: commits
	// return before their WAL reaches disk. A crash of the database server
	// may then lose the last fraction of a second of commits, whole
	// transactions in commit order, never half of one. Only for pools whose
	// writes can all be redone (the runner's: a lost job completion makes
	// the job run again, and every worker is idempotent).
	AsyncCommit bool
}

// DefaultMaxConns is PoolConfig.MaxConns when unset.
const DefaultMaxConns = 20

func (c *PoolConfig) validate() error {
	if c.URL == "" {
		return errors.New("PoolConfig.URL is required")
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("PoolConfig.MaxConns must be positive, got %d", c.MaxConns)
	}
	if c.MinConns < 0 {
		return fmt.Errorf("PoolConfig.MinConns must not be negative, got %d", c.MinConns)
	}
	if c.MaxConns > 0 && c.MinConns > c.MaxConns {
		return fmt.Errorf("PoolConfig.MinConns (%d) must not exceed MaxConns (%d)", c.MinConns, c.MaxConns)
	}
	return nil
}

// NewPool opens a pgx pool and pings the server, so a wrong URL or a server
// that does not answer fails here rather than on first use.
func NewPool(ctx context.Context, cfg PoolConfig) (*pgxpool.Pool, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgx's parse errors can echo the password; say only what failed.
		return nil, errors.New("parsing database URL: invalid connection string")
	}
	pc.MaxConns = cfg.MaxConns
	if pc.MaxConns == 0 {
		pc.MaxConns = DefaultMaxConns
	}
	pc.MinConns = cfg.MinConns
	if pc.MinConns == 0 {
		pc.MinConns = min(2, pc.MaxConns)
	}
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if cfg.ApplicationName != "" {
		pc.ConnConfig.RuntimeParams["application_name"] = cfg.ApplicationName
	}
	if cfg.AsyncCommit {
		pc.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	// google/uuid values travel as binary uuids: without this pgx encodes
	// them through driver.Valuer as text (a few percent of the write
	// path's CPU).
	pc.AfterConnect = registerTypes
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("creating pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to %s: %w", Redact(cfg.URL), err)
	}
	return pool, nil
}

// registerTypes is every pool's AfterConnect.
func registerTypes(_ context.Context, conn *pgx.Conn) error {
	pgxuuid.Register(conn.TypeMap())
	return nil
}

// Querier is what query functions run on: a *pgxpool.Pool, a *pgx.Conn or a
// pgx.Tx.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Redact returns a connection URL with its password replaced, for logs and
// error messages. Strings that do not parse are replaced whole.
func Redact(url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return "(unparseable database URL)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// WaitDurable returns once every transaction that committed on pool's
// server before it was called is flushed to disk and, when the server has
// synchronous standbys, on them too: it commits a transaction of its own
// with synchronous_commit=on, whose commit record follows theirs in the
// WAL. On a pool with AsyncCommit this turns "committed" into "durable"
// for what the caller wrote before, at the price of one synchronous commit
// that many callers may share; but only on the server it reached. It
// returns that server's start time (pg_postmaster_start_time), which
// changes when the server restarts and differs on a promoted standby, so a
// caller can tell whether its earlier commits went to this server.
func WaitDurable(ctx context.Context, pool *pgxpool.Pool) (serverStart time.Time, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
			return err
		}
		// A commit waits for the disk only when its transaction wrote
		// WAL: a transactional logical message (no table, any role, any
		// wal_level; a logical decoding consumer sees it under its
		// prefix) is the smallest such write.
		return tx.QueryRow(ctx, "SELECT pg_postmaster_start_time(), pg_logical_emit_message(true, 'msgrunner-durable', '') IS NOT NULL").
			Scan(&serverStart, new(bool))
	})
	return serverStart, translate("waiting for earlier commits to be durable", err)
}
