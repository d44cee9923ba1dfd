package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
)

func TestPoolSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	for _, tc := range []struct {
		name  string
		async bool
		want  string // synchronous_commit
	}{
		{"synchronous commit", false, "on"},
		{"asynchronous commit", true, "off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool, err := db.NewPool(ctx, db.PoolConfig{URL: url, MaxConns: 3, AsyncCommit: tc.async, ApplicationName: "pool-test"})
			require.NoError(t, err)
			defer pool.Close()
			var sc, app string
			require.NoError(t, pool.QueryRow(ctx, "SELECT current_setting('synchronous_commit'), current_setting('application_name')").Scan(&sc, &app))
			require.Equal(t, tc.want, sc)
			require.Equal(t, "pool-test", app)
			require.EqualValues(t, 3, pool.Config().MaxConns)
		})
	}

	_, err := db.NewPool(ctx, db.PoolConfig{URL: "postgres://u:hunter2@%zz"})
	require.ErrorContains(t, err, "invalid connection string")
	require.NotContains(t, err.Error(), "hunter2")
	_, err = db.NewPool(ctx, db.PoolConfig{URL: url, MaxConns: 2, MinConns: 5})
	require.ErrorContains(t, err, "MinConns")
}

// WaitDurable flushes the WAL of what an asynchronously committing pool
// committed before it, and leaves the connection's own setting as it was.
func TestWaitDurableFlushesEarlierAsyncCommits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: dbtest.URL(t), MaxConns: 1, AsyncCommit: true})
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, "CREATE TABLE durable_probe (n int)")
	require.NoError(t, err)
	for range 20 {
		_, err = pool.Exec(ctx, "INSERT INTO durable_probe VALUES (1)")
		require.NoError(t, err)
		var written string
		require.NoError(t, pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&written))
		started, err := db.WaitDurable(ctx, pool)
		require.NoError(t, err)
		var want time.Time
		require.NoError(t, pool.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&want))
		require.True(t, want.Equal(started), "the server's start time")
		var flushed bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", written).Scan(&flushed))
		require.True(t, flushed, "the insert's WAL is on disk")
	}
	var sc string
	require.NoError(t, pool.QueryRow(ctx, "SELECT current_setting('synchronous_commit')").Scan(&sc))
	require.Equal(t, "off", sc, "SET LOCAL ended with its transaction")
}
