package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestMigrateCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	getenv := env(map[string]string{"DATABASE_URL": dbtest.EmptyURL(t)})
	admin := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, getenv, &out)
		return out.String(), err
	}

	out, err := admin("migrate", "status")
	require.NoError(t, err)
	require.Equal(t, 5, strings.Count(out, "pending"), out)

	out, err = admin("migrate", "up")
	require.NoError(t, err)
	require.Contains(t, out, "River schema v8")
	require.Contains(t, out, "00005_search.sql")

	out, err = admin("migrate", "up")
	require.NoError(t, err)
	require.Contains(t, out, "schema is up to date")

	out, err = admin("migrate", "version")
	require.NoError(t, err)
	require.Equal(t, "5\n", out)

	out, err = admin("migrate", "down")
	require.NoError(t, err)
	require.Contains(t, out, "00005_search.sql")

	_, err = admin("migrate", "down", "--to", "0")
	require.NoError(t, err)
	out, err = admin("migrate", "version")
	require.NoError(t, err)
	require.Equal(t, "0\n", out)
}

func TestMigrateUpCreatesTheDatabase(t *testing.T) {
	t.Parallel()
	base := dbtest.EmptyURL(t)
	url := strings.Replace(base, "?", "_created?", 1)
	t.Cleanup(func() {
		// Drop through the maintenance connection of the base database.
		_ = dropDatabase(base, url)
	})
	var out bytes.Buffer
	err := run(context.Background(), []string{"migrate", "up", "--create-database"}, env(map[string]string{"DATABASE_URL": url}), &out)
	require.NoError(t, err)
	require.Contains(t, out.String(), "created database")
	require.Contains(t, out.String(), "00005_search.sql")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := map[string][]string{
		"missing command":                       {},
		`unknown command "frobnicate"`:          {"frobnicate"},
		"needs a subcommand":                    {"migrate"},
		`unknown migrate subcommand "sideways"`: {"migrate", "sideways"},
		"--to must be 0 or a positive":          {"migrate", "down", "--to", "-5"},
		"flag provided but not defined":         {"migrate", "status", "--bogus"},
	}
	for want, args := range cases {
		err := run(ctx, args, env(nil), &bytes.Buffer{})
		require.ErrorContains(t, err, want, args)
		require.Equal(t, 2, exitCode(err), args)
	}

	err := run(ctx, []string{"serve"}, env(nil), &bytes.Buffer{})
	require.ErrorContains(t, err, "not built yet")
	require.Equal(t, 1, exitCode(err))

	err = run(ctx, []string{"migrate", "status"}, env(map[string]string{"DATABASE_URL": "mysql://root@localhost/x"}), &bytes.Buffer{})
	require.ErrorContains(t, err, "DATABASE_URL")
}
