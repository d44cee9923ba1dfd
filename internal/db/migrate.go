package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/msgrunner/msgrunner/migrations"
)

// Migrator applies the embedded migrations through a goose Provider (no
// goose globals). A Postgres advisory lock serialises migrators, so several
// processes may call Up at once. A Migrator is not safe for concurrent use.
type Migrator struct {
	sqlDB    *sql.DB
	provider *goose.Provider
}

// MigrationResult describes one applied migration.
type MigrationResult struct {
	Version   int64
	Source    string
	Direction string
	Duration  time.Duration
}

// MigrationStatus describes one known migration and whether it is applied.
type MigrationStatus struct {
	Version   int64
	Source    string
	Applied   bool
	AppliedAt time.Time
}

// NewMigrator connects to the database at url. logger may be nil; when set,
// each applied migration is logged there. Close releases the connection.
func NewMigrator(url string, logger *slog.Logger) (*Migrator, error) {
	connCfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("parsing database URL: invalid connection string")
	}
	sqlDB := stdlib.OpenDB(*connCfg)
	sqlDB.SetMaxOpenConns(2)

	locker, err := lock.NewPostgresSessionLocker(
		// Retry the advisory lock every second for up to five minutes.
		lock.WithLockTimeout(1, 300),
	)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("creating migration lock: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithGoMigrations(migrations.GoMigrations()...),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSessionLocker(locker),
	}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS(), opts...)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("creating migration provider: %w", err)
	}
	return &Migrator{sqlDB: sqlDB, provider: provider}, nil
}

// Close releases the Migrator's connections.
func (m *Migrator) Close() error { return m.provider.Close() }

// Up applies every pending migration and returns what it applied.
func (m *Migrator) Up(ctx context.Context) ([]MigrationResult, error) {
	res, err := m.provider.Up(ctx)
	return results(res), wrapMigrate("migrating up", err)
}

// UpTo applies pending migrations up to and including version.
func (m *Migrator) UpTo(ctx context.Context, version int64) ([]MigrationResult, error) {
	res, err := m.provider.UpTo(ctx, version)
	return results(res), wrapMigrate(fmt.Sprintf("migrating up to %d", version), err)
}

// Down rolls back the most recently applied migration.
func (m *Migrator) Down(ctx context.Context) ([]MigrationResult, error) {
	res, err := m.provider.Down(ctx)
	if res == nil {
		return nil, wrapMigrate("migrating down", err)
	}
	return results([]*goose.MigrationResult{res}), wrapMigrate("migrating down", err)
}

// DownTo rolls back every migration above version; 0 empties the schema.
func (m *Migrator) DownTo(ctx context.Context, version int64) ([]MigrationResult, error) {
	res, err := m.provider.DownTo(ctx, version)
	return results(res), wrapMigrate(fmt.Sprintf("migrating down to %d", version), err)
}

// Status lists every known migration in version order.
func (m *Migrator) Status(ctx context.Context) ([]MigrationStatus, error) {
	st, err := m.provider.Status(ctx)
	if err != nil {
		return nil, wrapMigrate("reading migration status", err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationStatus{
			Version:   s.Source.Version,
			Source:    sourceName(s.Source),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// Version returns the highest applied migration version, 0 for none.
func (m *Migrator) Version(ctx context.Context) (int64, error) {
	v, err := m.provider.GetDBVersion(ctx)
	return v, wrapMigrate("reading schema version", err)
}

// Pending reports whether any migration is not yet applied.
func (m *Migrator) Pending(ctx context.Context) (bool, error) {
	p, err := m.provider.HasPending(ctx)
	return p, wrapMigrate("checking pending migrations", err)
}

func wrapMigrate(what string, err error) error {
	if err == nil || errors.Is(err, goose.ErrNoNextVersion) {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

func results(in []*goose.MigrationResult) []MigrationResult {
	out := make([]MigrationResult, 0, len(in))
	for _, r := range in {
		if r == nil || r.Source == nil {
			continue
		}
		out = append(out, MigrationResult{Version: r.Source.Version, Source: sourceName(r.Source), Direction: r.Direction, Duration: r.Duration})
	}
	return out
}

func sourceName(s *goose.Source) string {
	if s.Type == goose.TypeGo && s.Path == "" {
		if s.Version == 1 {
			return fmt.Sprintf("(go) River schema v%d", migrations.RiverVersion)
		}
		return "(go)"
	}
	return s.Path
}

// EnsureDatabase creates the database named in url when it does not exist,
// connecting to the server's "postgres" maintenance database to do so. It
// reports whether it created the database.
func EnsureDatabase(ctx context.Context, url string) (bool, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return false, errors.New("parsing database URL: invalid connection string")
	}
	name := cfg.Database
	if name == "" {
		return false, errors.New("database URL names no database")
	}
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("connecting to the maintenance database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("checking for database %q: %w", name, err)
	}
	if exists {
		return false, nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		// Another process may have created it between the check and here.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == codeDuplicateDatabase || pgErr.Code == codeUniqueViolation) {
			return false, nil
		}
		return false, fmt.Errorf("creating database %q: %w", name, err)
	}
	return true, nil
}

// ErrSchemaBehind is returned by RequireCurrentSchema when migrations are
// pending.
var ErrSchemaBehind = errors.New("the database schema is not up to date: run `admin migrate up` (or `make run`, which does)")

// RequireCurrentSchema returns ErrSchemaBehind unless every migration is
// applied to the database at url; binaries call it before serving.
func RequireCurrentSchema(ctx context.Context, url string) error {
	m, err := NewMigrator(url, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	pending, err := m.Pending(ctx)
	if err != nil {
		return fmt.Errorf("checking the database schema at %s: %w", Redact(url), err)
	}
	if pending {
		return ErrSchemaBehind
	}
	return nil
}
