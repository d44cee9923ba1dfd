// Package dbtest gives each test its own database and Redis key prefix on
// the one shared PostgreSQL and Redis server, so tests run in parallel
// without seeing each other.
//
// Databases are cloned from a template that is migrated once per schema
// version (the template's name carries a hash of the migrations), which
// takes milliseconds instead of a full migration per test. Databases left
// behind by test processes that died are dropped at start.
//
// The server comes from TEST_DATABASE_URL, else DATABASE_URL, else
// postgres://postgres@127.0.0.1:5432; Redis from TEST_REDIS_URL, else
// REDIS_URL, else redis://127.0.0.1:6379/0. RedisCluster is apart from
// that server: a Redis Cluster of three masters that a test binary starts
// from the machine's redis-server on loopback ports of its own.
package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/migrations"
)

const (
	testDBPrefix   = "msgrunner_t_"
	templatePrefix = "msgrunner_tpl_"
	// keptTemplates is how many templates of other schema versions are
	// kept when a new one is built.
	keptTemplates = 3
)

var (
	setupOnce sync.Once
	setupErr  error
	template  string
	counter   atomic.Int64
)

// serverConfig returns the connection config of the test server's
// maintenance database: TEST_DATABASE_URL's server, else DATABASE_URL's
// (config.Reader.TestServices).
func serverConfig() (*pgx.ConnConfig, error) {
	r := config.NewReader(os.Getenv)
	dsn := r.TestServices().DatabaseURL
	if err := r.Err(); err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("TEST_DATABASE_URL/DATABASE_URL: invalid connection string")
	}
	cfg.Database = "postgres"
	return cfg, nil
}

func urlFor(cfg *pgx.ConnConfig, database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(cfg.User),
		Host:     net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	}
	return u.String()
}

// schemaHash identifies the migrations, so a changed schema gets a new
// template.
func schemaHash() (string, int64, error) {
	h := sha256.New()
	fmt.Fprintf(h, "river=%d;", migrations.RiverVersion)
	err := fs.WalkDir(migrations.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS(), path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s:%d;", path, len(b))
		h.Write(b)
		return nil
	})
	sum := h.Sum(nil)
	return fmt.Sprintf("%x", sum[:6]), int64(binary.BigEndian.Uint64(sum[:8])), err
}

func setup(ctx context.Context) error {
	cfg, err := serverConfig()
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to the test PostgreSQL server (run `make services`): %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	if err := dropStale(ctx, conn); err != nil {
		return err
	}

	hash, lockID, err := schemaHash()
	if err != nil {
		return fmt.Errorf("hashing migrations: %w", err)
	}
	template = templatePrefix + hash
	// Serialise template creation across concurrently starting test
	// processes (go test runs packages in parallel).
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockID); err != nil {
		return fmt.Errorf("locking template creation: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockID) //nolint:errcheck

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", template).Scan(&exists); err != nil {
		return fmt.Errorf("looking for the template: %w", err)
	}
	if exists {
		return nil
	}
	// Templates of other schema versions are of no use here, but another
	// checkout testing on the same server may be cloning one right now:
	// the newest few are kept, older ones dropped.
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname NOT LIKE $2
		ORDER BY oid DESC OFFSET $3`, templatePrefix+"%", templatePrefix+"%_building", keptTemplates)
	if err != nil {
		return fmt.Errorf("listing old templates: %w", err)
	}
	old, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("listing old templates: %w", err)
	}
	for _, name := range old {
		id := pgx.Identifier{name}.Sanitize()
		for _, stmt := range []string{"ALTER DATABASE " + id + " IS_TEMPLATE false", "DROP DATABASE " + id + " WITH (FORCE)"} {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("dropping old template %s: %w", name, err)
			}
		}
	}

	building := template + "_building"
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{building}.Sanitize()); err != nil {
		return fmt.Errorf("creating the template: %w", err)
	}
	m, err := db.NewMigrator(urlFor(cfg, building), nil)
	if err != nil {
		return err
	}
	_, err = m.Up(ctx)
	m.Close()
	if err != nil {
		return fmt.Errorf("migrating the template: %w", err)
	}
	// Renaming last publishes a template only once it is complete; closing
	// it to connections keeps clones from failing on a stray session.
	for _, stmt := range []string{
		"ALTER DATABASE " + pgx.Identifier{building}.Sanitize() + " RENAME TO " + pgx.Identifier{template}.Sanitize(),
		"ALTER DATABASE " + pgx.Identifier{template}.Sanitize() + " WITH ALLOW_CONNECTIONS false IS_TEMPLATE true",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("publishing the template: %w", err)
		}
	}
	return nil
}

// dropStale drops test databases whose creating process no longer runs,
// and half-built templates.
func dropStale(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname LIKE $2",
		testDBPrefix+"%", templatePrefix+"%_building")
	if err != nil {
		return fmt.Errorf("listing stale test databases: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("listing stale test databases: %w", err)
	}
	for _, name := range names {
		if strings.HasPrefix(name, testDBPrefix) && processAlive(name) {
			continue
		}
		if strings.HasPrefix(name, templatePrefix) {
			continue // a _building template is handled under the lock
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping stale %s: %w", name, err)
		}
	}
	return nil
}

// processAlive reports whether the process whose pid is embedded in a test
// database's name (msgrunner_t_<pid>_<n>) still runs.
func processAlive(name string) bool {
	parts := strings.Split(strings.TrimPrefix(name, testDBPrefix), "_")
	pid, err := strconv.Atoi(parts[0])
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// URL creates a fully migrated database, holding no data, for this test
// and returns its connection URL. The database is dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	return track(t)(NewDatabase(context.Background()))
}

// EmptyURL creates a database with no schema at all (for migration tests)
// and returns its URL; it is dropped when the test ends.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return track(t)(create(context.Background(), ""))
}

// NewDatabase is URL for callers without a testing.TB, such as examples: it
// returns the new database's URL and a function that drops it.
func NewDatabase(ctx context.Context) (string, func() error, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	setupOnce.Do(func() { setupErr = setup(ctx) })
	if setupErr != nil {
		return "", nil, setupErr
	}
	// FILE_COPY clones a small template faster than WAL_LOG block copying.
	return create(ctx, " TEMPLATE "+pgx.Identifier{template}.Sanitize()+" STRATEGY FILE_COPY")
}

// track fails t on error and registers the drop for t's cleanup.
func track(t testing.TB) func(string, func() error, error) string {
	return func(url string, drop func() error, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("dbtest: %v", err)
		}
		t.Cleanup(func() {
			if err := drop(); err != nil {
				t.Errorf("dbtest: %v", err)
			}
		})
		return url
	}
}

// create makes a database with the given CREATE DATABASE options and
// returns its URL and a function that drops it.
func create(ctx context.Context, options string) (string, func() error, error) {
	cfg, err := serverConfig()
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("%s%d_%d", testDBPrefix, os.Getpid(), counter.Add(1))
	if err := execAdmin(ctx, cfg, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+options); err != nil {
		return "", nil, fmt.Errorf("creating %s: %w", name, err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := execAdmin(ctx, cfg, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping %s: %w", name, err)
		}
		return nil
	}
	return urlFor(cfg, name), drop, nil
}

func execAdmin(ctx context.Context, cfg *pgx.ConnConfig, sql string) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// Pool returns a pool on a fresh migrated database for this test (see URL),
// closed when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: URL(t), MaxConns: 10, MinConns: 1})
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
