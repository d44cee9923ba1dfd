package db_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
)

func TestPoolSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	for _, async := range []bool{false, true} {
		pool, err := db.NewPool(ctx, db.PoolConfig{URL: url, MaxConns: 3, AsyncCommit: async, ApplicationName: "pool-test"})
		require.NoError(t, err)
		var sc, app string
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_setting('synchronous_commit'), current_setting('application_name')").Scan(&sc, &app))
		require.Equal(t, map[bool]string{false: "on", true: "off"}[async], sc)
		require.Equal(t, "pool-test", app)
		require.EqualValues(t, 3, pool.Config().MaxConns)
		pool.Close()
	}

	_, err := db.NewPool(ctx, db.PoolConfig{URL: "postgres://u:hunter2@%zz"})
	require.ErrorContains(t, err, "invalid connection string")
	require.NotContains(t, err.Error(), "hunter2")
	_, err = db.NewPool(ctx, db.PoolConfig{URL: url, MaxConns: 2, MinConns: 5})
	require.ErrorContains(t, err, "MinConns")
}
