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
