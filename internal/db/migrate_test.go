package db_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/migrations"
)

func tables(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version' ORDER BY 1`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

func TestMigrationsUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.EmptyURL(t)

	m, err := db.NewMigrator(url, nil)
	require.NoError(t, err)
	defer m.Close()

	pending, err := m.Pending(ctx)
	require.NoError(t, err)
	require.True(t, pending, "an empty database has pending migrations")

	latest := migrations.Latest()
	res, err := m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, res, int(latest))
	want := []string{
		"attachments", "batch_recipients", "batches", "conversation_participants", "conversations",
		"device_tokens", "message_search", "messages", "notification_preferences", "notifications",
		"river_job", "river_leader", "river_migration", "river_queue",
	}
	require.Subset(t, tables(t, url), want)

	v, err := m.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, latest, v)

	st, err := m.Status(ctx)
	require.NoError(t, err)
	for _, s := range st {
		require.True(t, s.Applied, "migration %d applied", s.Version)
	}

	// River's own bookkeeping agrees with the pinned version.
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	var riverMax int
	require.NoError(t, conn.QueryRow(ctx, `SELECT max(version) FROM river_migration WHERE line = 'main'`).Scan(&riverMax))
	conn.Close(ctx)
	require.Equal(t, migrations.RiverVersion, riverMax)

	// Up again is a no-op.
	res, err = m.Up(ctx)
	require.NoError(t, err)
	require.Empty(t, res)

	// One step down removes only the newest migration.
	res, err = m.Down(ctx)
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, latest, res[0].Version)

	// Down to 4 removes the search index table, and only that.
	_, err = m.DownTo(ctx, 4)
	require.NoError(t, err)
	require.NotContains(t, tables(t, url), "message_search")
	require.Contains(t, tables(t, url), "messages")

	// Down to zero leaves nothing, River's tables included.
	_, err = m.DownTo(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, tables(t, url))
	v, err = m.Version(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 0, v)

	// And up again from empty.
	res, err = m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, res, int(latest))
	require.Subset(t, tables(t, url), want)
}

func TestConcurrentMigratorsApplyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.EmptyURL(t)

	errs := make(chan error, 3)
	applied := make(chan int, 3)
	for range 3 {
		go func() {
			m, err := db.NewMigrator(url, nil)
			if err != nil {
				errs <- err
				return
			}
			defer m.Close()
			res, err := m.Up(ctx)
			applied <- len(res)
			errs <- err
		}()
	}
	total := 0
	for range 3 {
		require.NoError(t, <-errs)
		total += <-applied
	}
	require.EqualValues(t, migrations.Latest(), total, "each migration is applied by exactly one migrator")
}

func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.EmptyURL(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	name := conn.Config().Database + "_ensure"
	conn.Close(ctx)
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	target := "postgres://" + cfg.User + "@" + cfg.Host + ":5432/" + name + "?sslmode=disable"
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), url)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})

	created, err := db.EnsureDatabase(ctx, target)
	require.NoError(t, err)
	require.True(t, created)
	created, err = db.EnsureDatabase(ctx, target)
	require.NoError(t, err)
	require.False(t, created, "a second call finds it")

	c, err := pgx.Connect(ctx, target)
	require.NoError(t, err)
	c.Close(ctx)
}
