package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/gateway"
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

// With DATABASE_READ_URL a full history page is read on the standby, which
// may show an edit late, and a page the standby may not hold whole (one
// that reaches the conversation's end) on the primary, so a message the
// standby has not replayed yet is never missing.
func TestRunHistoryOnTheReadReplica(t *testing.T) {
	t.Parallel()
	pair := dbtest.NewPostgresPair(t)
	rdb, prefix := dbtest.Redis(t)
	a, err := auth.New([]byte(secret))
	require.NoError(t, err)
	alice, bob := uuid.New(), uuid.New()
	aliceTok, err := a.Mint(alice, time.Minute)
	require.NoError(t, err)
	conv := gateway.DirectConversationID(alice, bob)
	ctx := context.Background()
	call := func(addr, method, path string, body any) (int, map[string]any) {
		var rd io.Reader
		if body != nil {
			raw, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(raw)
		}
		req, _ := http.NewRequest(method, "http://"+addr+path, rd)
		req.Header.Set("Authorization", "Bearer "+aliceTok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	send := func(addr, content string) string {
		code, res := call(addr, http.MethodPost, "/v1/messages", map[string]any{"conversation_id": conv, "recipient_id": bob, "content": content})
		require.Equal(t, http.StatusCreated, code, res)
		return res["id"].(string)
	}
	history := func(addr string, limit int) []string {
		// Past the recent-messages cache, which would answer first.
		require.NoError(t, rdb.Del(ctx, prefix+"recent:{"+conv.String()+"}").Err())
		code, res := call(addr, http.MethodGet, "/v1/conversations/"+conv.String()+"/messages?limit="+strconv.Itoa(limit), nil)
		require.Equal(t, http.StatusOK, code, res)
		var out []string
		for _, m := range res["messages"].([]any) {
			out = append(out, m.(map[string]any)["content"].(string))
		}
		return out
	}
	standby, err := pgx.Connect(ctx, pair.StandbyURL())
	require.NoError(t, err)
	defer standby.Close(ctx)

	serveUntilReady(t, map[string]string{
		"DATABASE_URL": pair.PrimaryURL(), "DATABASE_READ_URL": pair.StandbyURL(), "DATABASE_READ_MAX_LAG": "1m",
		"AUTH_SECRET": secret, "GATEWAY_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error", "REDIS_PREFIX": prefix,
	}, func(addr string) {
		first := send(addr, "one")
		send(addr, "two")
		require.Eventually(t, func() bool {
			var n int
			return standby.QueryRow(ctx, "SELECT count(*) FROM messages").Scan(&n) == nil && n == 2
		}, 10*time.Second, 20*time.Millisecond, "the standby has both")
		pair.PauseReplay()
		defer pair.ResumeReplay()
		code, res := call(addr, http.MethodPatch, "/v1/messages/"+first, map[string]any{"content": "one, edited"})
		require.Equal(t, http.StatusOK, code, res)
		send(addr, "three")
		var onStandby string
		require.NoError(t, standby.QueryRow(ctx, "SELECT content FROM messages WHERE id = $1", first).Scan(&onStandby))
		require.Equal(t, "one", onStandby, "the standby has not replayed the edit")

		require.Equal(t, []string{"one", "two"}, history(addr, 2), "a full page comes from the standby, the edit not replayed yet")
		require.Equal(t, []string{"one, edited", "two", "three"}, history(addr, 50), "a page to the end comes from the primary, whole")
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
