package admincli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/migrations"
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
		err := run(ctx, args, getenv, &out, io.Discard)
		return out.String(), err
	}

	out, err := admin("migrate", "status")
	require.NoError(t, err)
	latest := migrations.Latest()
	require.Equal(t, int(latest), strings.Count(out, "pending"), out)

	out, err = admin("migrate", "up")
	require.NoError(t, err)
	require.Contains(t, out, "River schema v8")
	require.Contains(t, out, "00005_search.sql")
	require.Equal(t, int(latest), strings.Count(out, "up "), out)

	out, err = admin("migrate", "up")
	require.NoError(t, err)
	require.Contains(t, out, "schema is up to date")

	out, err = admin("migrate", "version")
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%d\n", latest), out)

	out, err = admin("migrate", "down")
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprintf("down %5d", latest))

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
	err := run(context.Background(), []string{"migrate", "up", "--create-database"}, env(map[string]string{"DATABASE_URL": url}), &out, io.Discard)
	require.NoError(t, err)
	require.Contains(t, out.String(), "created database")
	require.Contains(t, out.String(), "00005_search.sql")
}

func TestTokenCommand(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("k", 32)
	user := "3f1e8a52-6b1c-4c55-9d7e-0a6f2b9c1d11"
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"token", "--user", user, "--ttl", "1h"}, env(map[string]string{"AUTH_SECRET": secret}), &out, io.Discard))
	a, err := auth.New([]byte(secret))
	require.NoError(t, err)
	got, err := a.Verify(strings.TrimSpace(out.String()))
	require.NoError(t, err)
	require.Equal(t, user, got.String())

	err = run(context.Background(), []string{"token", "--user", "alice"}, env(map[string]string{"AUTH_SECRET": secret}), &out, io.Discard)
	require.ErrorContains(t, err, "--user must be a user id")
	err = run(context.Background(), []string{"token", "--user", user}, env(nil), &out, io.Discard)
	require.ErrorContains(t, err, "AUTH_SECRET is not set")
	err = run(context.Background(), []string{"token", "--user", user}, env(map[string]string{"AUTH_SECRET": "short"}), &out, io.Discard)
	require.ErrorContains(t, err, "at least 32 bytes")
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
		t.Run(want, func(t *testing.T) {
			t.Parallel()
			err := run(ctx, args, env(nil), &bytes.Buffer{}, io.Discard)
			require.ErrorContains(t, err, want, args)
			require.Equal(t, 2, exitCode(err), args)
		})
	}

	err := run(ctx, []string{"cleanup"}, env(nil), &bytes.Buffer{}, io.Discard)
	require.ErrorContains(t, err, "--type")
	require.Equal(t, 2, exitCode(err))

	err = run(ctx, []string{"migrate", "status"}, env(map[string]string{"DATABASE_URL": "mysql://root@localhost/x"}), &bytes.Buffer{}, io.Discard)
	require.ErrorContains(t, err, "DATABASE_URL")
}

func TestRunReturnsTheExitStatusAndWritesTheErrorToStderr(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Run(ctx, []string{"help"}, env(nil), &stdout, &stderr))
	require.True(t, strings.HasPrefix(stdout.String(), "usage: admin COMMAND"), stdout.String())
	require.Empty(t, stderr.String())

	stdout.Reset()
	require.Equal(t, 2, Run(ctx, []string{"frobnicate"}, env(nil), &stdout, &stderr), "a mistake in the command line")
	require.Empty(t, stdout.String())
	require.True(t, strings.HasPrefix(stderr.String(), `admin: unknown command "frobnicate"`), stderr.String())
	require.Contains(t, stderr.String(), "usage: admin COMMAND")

	stderr.Reset()
	require.Equal(t, 1, Run(ctx, []string{"token", "--user", "3f1e8a52-6b1c-4c55-9d7e-0a6f2b9c1d11"}, env(nil), &stdout, &stderr), "any other failure")
	require.Equal(t, "admin: AUTH_SECRET is not set: it must be the gateway's signing secret\n", stderr.String())
}

// Every command answers --help (and `admin help CMD`) with its own usage
// and exit status 0; a mistake prints one line and that command's usage
// only, with exit status 2.
func TestEveryCommandHasItsOwnHelp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, cmd := range commands {
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "-h"}, {"help", cmd}} {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 0, Run(ctx, args, env(nil), &stdout, &stderr), args)
			require.True(t, strings.HasPrefix(stdout.String(), "usage:\n  "+cmd+" "), "%v: %s", args, stdout.String())
			require.NotContains(t, stdout.String(), "Commands:", "only the command's own lines")
			require.Empty(t, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Run(ctx, []string{"jobs", "list", "--help"}, env(nil), &stdout, &stderr))
	require.Contains(t, stdout.String(), "  jobs show ID")

	mistakes := map[string][]string{
		`unknown jobs subcommand "frob"`:                          {"jobs", "frob"},
		`jobs show needs exactly one job id`:                      {"jobs", "show"},
		`queue retry-failed needs exactly one queue name`:         {"queue", "retry-failed"},
		`unknown report "speed"`:                                  {"report", "speed"},
		`token: --ttl must be a duration such as 90s, 30m or 24h`: {"token", "--user", "3f1e8a52-6b1c-4c55-9d7e-0a6f2b9c1d11", "--ttl", "a day"},
		`report: --interval must be a duration such as`:           {"report", "delivery", "--interval", "hourly"},
		`jobs list: --limit must be a whole number`:               {"jobs", "list", "--limit", "ten"},
		`--state must be one of`:                                  {"jobs", "list", "--state", "broken"},
	}
	for want, args := range mistakes {
		stdout.Reset()
		stderr.Reset()
		require.Equal(t, 2, Run(ctx, args, env(nil), &stdout, &stderr), args)
		require.Empty(t, stdout.String())
		lines := strings.Split(stderr.String(), "\n")
		require.Contains(t, lines[0], want, args)
		require.Contains(t, stderr.String(), "usage:\n  "+args[0]+" ", "the command's usage follows")
		require.NotContains(t, stderr.String(), "Commands:", "not the whole list")
	}
}
