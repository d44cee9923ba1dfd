package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/api/apitest"
	"github.com/msgrunner/msgrunner/internal/attachments"
	"github.com/msgrunner/msgrunner/internal/clocktest"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/gateway"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/internal/ratelimit"
)

// startNodeWith starts one more gateway node on b's database and Redis
// (through b's proxy) with cfg edited first; limiter, when not nil, is
// built on the node's own Redis client, as each gateway process does.
func (b *bundle) startNodeWith(t *testing.T, limit *ratelimit.Config, edit func(*gateway.Config)) *node {
	t.Helper()
	nodeRedis := proxiedRedis(t, b.redisProxy)
	hub := fanout.NewHub(nodeRedis, fanout.HubConfig{Keys: b.keys, Logger: b.logger})
	store, err := attachments.NewDir(t.TempDir())
	require.NoError(t, err)
	cfg := gateway.Config{
		Addr: "127.0.0.1:0", Auth: b.auth, Logger: b.logger, MaxContentBytes: 1000,
		Attachments: store, AttachmentMaxBytes: 64 << 10, Sealer: keyring.NewSealer(testKeys),
		DBTimeout: 2 * time.Second, ShutdownTimeout: 3 * time.Second,
	}
	if limit != nil {
		l := *limit
		l.Prefix = b.keys.Prefix
		cfg.RateLimiter, err = ratelimit.New(nodeRedis, l)
		require.NoError(t, err)
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := gateway.New(b.pool, fanout.New(nodeRedis, fanout.Config{Keys: b.keys}), hub, cfg)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		_ = hub.Close()
	})
	checked.Serve(srv.Addr(), apitest.Gateway(t))
	return &node{srv: srv, base: "http://" + srv.Addr()}
}

// raw sends a request and returns the whole response, body read.
func raw(t *testing.T, method, url, auth string, body any) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp, out
}

func TestSecurityRateLimitIsPerUserSharedByNodesAndAnswers429(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Both nodes read one clock the test moves, as in production they
	// read Redis's.
	clock := clocktest.New(time.Now())
	limit := &ratelimit.Config{PerSecond: 1, Burst: 3, Now: clock.Now}
	n0, n1 := b.startNodeWith(t, limit, nil), b.startNodeWith(t, limit, nil)
	nodes := []*node{n0, n1}
	b.nodes = append(b.nodes, n0) // for dial
	alice, bob, carol := uuid.New(), uuid.New(), uuid.New()
	aliceTok, bobTok := b.token(t, alice), b.token(t, bob)
	post := func(n int, tok string, from, to uuid.UUID) (*http.Response, map[string]any) {
		return raw(t, http.MethodPost, nodes[n].base+"/v1/messages", "Bearer "+tok, msgBody(gateway.DirectConversationID(from, to), to, "hi"))
	}

	// The burst, spread over both nodes, then the next is refused.
	for i := range 3 {
		resp, res := post(i%2, aliceTok, alice, bob)
		require.Equal(t, http.StatusCreated, resp.StatusCode, "request %d: %v", i+1, res)
	}
	for n := range 2 {
		resp, res := post(n, aliceTok, alice, bob)
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "node %d: %v", n, res)
		require.Equal(t, "1", resp.Header.Get("Retry-After"), "whole seconds, at least 1")
		e := res["error"].(map[string]any)
		require.Equal(t, "rate_limited", e["code"])
		require.Contains(t, e["message"], "1 requests per second per user (burst 3)", "the error names the limit")
	}
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM messages WHERE sender_id = $1`, alice), "refused requests write nothing")

	// Another user is unaffected.
	resp, res := post(1, bobTok, bob, alice)
	require.Equal(t, http.StatusCreated, resp.StatusCode, res)

	// Websocket frames that work draw on the same budget; pings are free.
	carolTok := b.token(t, carol)
	ws := b.dial(t, len(b.nodes)-1, carolTok) // the upgrade is a request: 1 of 3
	conv := gateway.DirectConversationID(carol, bob)
	for i := range 2 {
		ws.write(map[string]any{"type": "send", "ref": "s" + string(rune('0'+i)), "conversation_id": conv, "recipient_id": bob, "content": "x"})
		require.Equal(t, "s"+string(rune('0'+i)), ws.expect("sent", nil)["ref"])
	}
	ws.write(map[string]any{"type": "send", "ref": "over", "conversation_id": conv, "recipient_id": bob, "content": "x"})
	e := ws.expect("error", nil)
	require.Equal(t, "rate_limited", e["code"])
	require.Equal(t, "over", e["ref"])
	for range 5 {
		ws.write(map[string]any{"type": "ping", "ref": "p"})
		ws.expect("pong", nil)
	}
	resp, _ = post(1, carolTok, carol, bob)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "frames and requests share the budget, across nodes")

	// The budget refills at the sustained rate: one request a second.
	clock.Advance(999 * time.Millisecond)
	resp, _ = post(1, aliceTok, alice, bob)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "not yet")
	clock.Advance(time.Millisecond)
	resp, res = post(0, aliceTok, alice, bob)
	require.Equal(t, http.StatusCreated, resp.StatusCode, res)
	resp, _ = post(1, aliceTok, alice, bob)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "one, not two")

	// The limiter's state is under the deployment's prefix.
	keys, err := b.rdb.Keys(context.Background(), b.keys.Prefix+"ratelimit:*").Result()
	require.NoError(t, err)
	require.Contains(t, keys, b.keys.Prefix+"ratelimit:{"+alice.String()+"}")

	// Redis down: requests go ahead (fail open) and the metric says so.
	b.redisProxy.Sever()
	defer b.redisProxy.Restore()
	for range 5 {
		resp, res := post(0, aliceTok, alice, bob)
		require.Equal(t, http.StatusCreated, resp.StatusCode, res)
		require.Equal(t, "pending", res["status"])
	}
	_, metrics := getText(t, n0.base+"/metrics")
	require.Contains(t, metrics, `msgrunner_gateway_rate_limit_total{result="unavailable"} 5`)
	require.Contains(t, metrics, `msgrunner_gateway_rate_limit_total{result="limited"} 2`)
}

func TestSecurityRateLimitOffWithoutALimiter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	tok := b.token(t, alice)
	for range 15 {
		code, res := b.post(t, 0, tok, msgBody(gateway.DirectConversationID(alice, bob), bob, "x"))
		require.Equal(t, http.StatusCreated, code, res)
	}
	keys, err := b.rdb.Keys(context.Background(), b.keys.Prefix+"ratelimit:*").Result()
	require.NoError(t, err)
	require.Empty(t, keys)
}

func TestSecurityMetricsNeedTheTokenOrTheirOwnListener(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const token = "metrics-token-0123456789"
	guarded := b.startNodeWith(t, nil, func(c *gateway.Config) { c.MetricsToken = token })
	for _, tc := range []struct{ name, auth string }{
		{"no header", ""},
		{"empty bearer", "Bearer "},
		{"wrong token", "Bearer wrong-token-0123456789"},
		{"token with a suffix", "Bearer " + token + "x"},
		{"basic scheme", "Basic " + token},
		{"token in upper case", "Bearer " + strings.ToUpper(token)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, res := raw(t, http.MethodGet, guarded.base+"/metrics", tc.auth, nil)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%q", tc.auth)
			require.Equal(t, "unauthorized", res["error"].(map[string]any)["code"])
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
		})
	}
	resp, _ := raw(t, http.MethodGet, guarded.base+"/metrics", "Bearer "+token, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	separate := b.startNodeWith(t, nil, func(c *gateway.Config) { c.MetricsAddr = "127.0.0.1:0" })
	resp, _ = raw(t, http.MethodGet, separate.base+"/metrics", "", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "not on the public listener")
	code, body := getText(t, "http://"+separate.srv.MetricsAddr()+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "msgrunner_gateway_connections")

	off := b.startNodeWith(t, nil, func(c *gateway.Config) { c.MetricsOff = true })
	resp, _ = raw(t, http.MethodGet, off.base+"/metrics", "", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Empty(t, off.srv.MetricsAddr())
}

// A known route asked with the wrong method answers 405 with Allow, as
// the admin server does; an unknown path is still 404.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := "Bearer " + b.token(t, uuid.New())
	resp, body := raw(t, http.MethodGet, b.nodes[0].base+"/v1/messages", tok, nil)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, body)
	require.Contains(t, resp.Header.Get("Allow"), http.MethodPost)
	require.Equal(t, "method_not_allowed", body["error"].(map[string]any)["code"], "a JSON error body")

	resp, _ = raw(t, http.MethodPut, b.nodes[0].base+"/v1/messages/"+uuid.NewString(), tok, nil)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Allow"), http.MethodPatch)
	require.Contains(t, resp.Header.Get("Allow"), http.MethodDelete)

	resp, _ = raw(t, http.MethodGet, b.nodes[0].base+"/v1/no-such-route", tok, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// delay_ms 0 is the earlier design's "send now": the message is sent,
// not scheduled.
func TestDelayZeroSendsNow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	body := msgBody(gateway.DirectConversationID(alice, bob), bob, "now, please")
	body["delay_ms"] = 0
	code, res := b.post(t, 0, b.token(t, alice), body)
	require.Equal(t, http.StatusCreated, code, res)
	require.EqualValues(t, 1, res["seq"])
	require.Zero(t, b.count(t, `SELECT count(*) FROM scheduled_messages`))
}
