package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/dbtest"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

var secret = strings.Repeat("s", 32)

func TestSettings(t *testing.T) {
	t.Parallel()
	s, err := loadSettings(env(map[string]string{"AUTH_SECRET": secret, "GATEWAY_ALLOWED_ORIGINS": "app.example.com, *.example.org"}))
	require.NoError(t, err)
	require.Equal(t, ":8081", s.Gateway.Addr)
	require.Equal(t, []string{"app.example.com", "*.example.org"}, s.Gateway.AllowedOrigins)
	require.Equal(t, "simple", s.Gateway.SearchLanguage)

	_, err = loadSettings(env(nil))
	require.ErrorContains(t, err, "AUTH_SECRET: is required")
	_, err = loadSettings(env(map[string]string{"AUTH_SECRET": "short-secret", "WS_SEND_BUFFER": "0", "GATEWAY_ADDR": "x"}))
	for _, name := range []string{"AUTH_SECRET", "WS_SEND_BUFFER", "GATEWAY_ADDR"} {
		require.ErrorContains(t, err, name)
	}
	require.NotContains(t, err.Error(), "short-secret", "secrets never appear in errors")
}

func TestRunServesAndDrains(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	_, prefix := dbtest.Redis(t)
	serveUntilReady(t, map[string]string{
		"DATABASE_URL": url, "AUTH_SECRET": secret, "GATEWAY_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error", "REDIS_PREFIX": prefix,
	})

	err := run(context.Background(), func() {}, env(map[string]string{
		"DATABASE_URL": url, "AUTH_SECRET": secret, "GATEWAY_ADDR": "127.0.0.1:0", "SEARCH_LANGUAGE": "klingon",
	}), nil)
	require.ErrorContains(t, err, "SEARCH_LANGUAGE")
}

func TestRunOnARedisCluster(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	rdb, prefix := dbtest.RedisCluster(t)
	serveUntilReady(t, map[string]string{
		"DATABASE_URL": url, "AUTH_SECRET": secret, "GATEWAY_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error", "REDIS_PREFIX": prefix,
		"REDIS_CLUSTER_ADDRS": strings.Join(rdb.(*redis.ClusterClient).Options().Addrs, ","), "RATE_LIMIT_PER_SECOND": "10",
	})
}

// With DATABASE_READ_URL the gateway's searches run on the standby.
func TestRunSearchesOnTheReadReplica(t *testing.T) {
	t.Parallel()
	pair := dbtest.NewPostgresPair(t)
	_, prefix := dbtest.Redis(t)
	a, err := auth.New([]byte(secret))
	require.NoError(t, err)
	tok, err := a.Mint(uuid.New(), time.Minute)
	require.NoError(t, err)
	ctx := context.Background()
	standby, err := pgx.Connect(ctx, pair.StandbyURL())
	require.NoError(t, err)
	defer standby.Close(ctx)
	// searched reports whether a connection of the gateway on the standby
	// last ran a search (the pool keeps it open, showing its last query).
	searched := func() bool {
		var n int
		require.NoError(t, standby.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'msgrunner-gateway' AND query LIKE '%message_search%'`).Scan(&n))
		return n > 0
	}
	serveUntilReady(t, map[string]string{
		"DATABASE_URL": pair.PrimaryURL(), "DATABASE_READ_URL": pair.StandbyURL(), "AUTH_SECRET": secret,
		"GATEWAY_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error", "REDIS_PREFIX": prefix,
	}, func(addr string) {
		require.Eventually(t, func() bool {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/search?q=hello", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			return searched()
		}, 20*time.Second, 200*time.Millisecond, "the search ran on the standby")
	})
}

// serveUntilReady runs the gateway with vars until /readyz answers 200,
// runs checks against its address, then cancels it and requires a clean
// return.
func serveUntilReady(t *testing.T, vars map[string]string, checks ...func(addr string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() { done <- run(ctx, func() {}, env(vars), func(addr string) { ready <- addr }) }()
	select {
	case addr := <-ready:
		resp, err := http.Get("http://" + addr + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		for _, check := range checks {
			check(addr)
		}
	case err := <-done:
		t.Fatalf("run returned before it was ready: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
}
