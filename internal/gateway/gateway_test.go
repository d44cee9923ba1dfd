package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/api/apitest"
	"github.com/msgrunner/msgrunner/internal/attachments"
	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/broadcast"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/gateway"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/workers"
)

var secret = []byte(strings.Repeat("test-secret-", 4))

type node struct {
	srv  *gateway.Server
	base string
}

// testKeys is the keyring of the test gateways and runner: k1 active, k2
// ready for rotation.
var testKeys = func() *keyring.Keyring {
	k := func(b byte) string {
		return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, keyring.KeySize))
	}
	ring, err := keyring.Parse("k1:"+k(1)+",k2:"+k(2), "k1")
	if err != nil {
		panic(err)
	}
	return ring
}()

type bundle struct {
	pool       *pgxpool.Pool
	rdb        *redis.Client
	keys       fanout.Keys
	auth       *auth.Authority
	redisProxy *dbtest.Proxy // nil in a direct bundle
	nodes      []*node
	logger     *slog.Logger
	dbURL      string
}

// proxiedRedis returns a client that reaches the test Redis through p,
// failing fast while p is severed.
func proxiedRedis(t testing.TB, p *dbtest.Proxy) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: p.Addr(), DialTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, MaxRetries: -1,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// setup starts a runner with every worker and two gateway nodes, all
// reaching Redis through a proxy the test can sever.
func setup(t testing.TB) *bundle {
	t.Helper()
	return setupWith(t, nil)
}

// setupDirect is setup for the benchmarks: every part reaches Redis
// directly, with a connection pool of its own as in production, so the
// figures do not include a test proxy's copying.
func setupDirect(t testing.TB) *bundle {
	t.Helper()
	return buildBundle(t, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), true)
}

// setupWith is setup with the runner's queues edited first.
func setupWith(t testing.TB, editQueues func([]jobs.QueueSpec)) *bundle {
	t.Helper()
	return newBundle(t, editQueues, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// newBundle starts the runner and two gateway nodes, all logging to logger.
// deliverySweep is how often the test runner's deliver-pending runs.
const deliverySweep = 200 * time.Millisecond

// indexSweep is how often the test runner's index-pending runs in tests;
// the benchmarks' runner uses the runner's default, as cmd/runner does.
const indexSweep = 200 * time.Millisecond

func newBundle(t testing.TB, editQueues func([]jobs.QueueSpec), logger *slog.Logger) *bundle {
	t.Helper()
	return buildBundle(t, editQueues, logger, false)
}

// buildBundle is newBundle, with Redis reached directly when direct is set.
func buildBundle(t testing.TB, editQueues func([]jobs.QueueSpec), logger *slog.Logger, direct bool) *bundle {
	t.Helper()
	url := dbtest.URL(t)
	pool, err := db.NewPool(context.Background(), db.PoolConfig{URL: url, MaxConns: 10})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	// The runner's pool commits asynchronously, as cmd/runner's does.
	runnerConns := int32(10)
	if direct {
		runnerConns = db.DefaultMaxConns // as cmd/runner's
	}
	runnerPool, err := db.NewPool(context.Background(), db.PoolConfig{URL: url, MaxConns: runnerConns, AsyncCommit: true})
	require.NoError(t, err)
	t.Cleanup(runnerPool.Close)
	rdb, prefix := dbtest.Redis(t)
	a, err := auth.New(secret)
	require.NoError(t, err)
	b := &bundle{
		pool: pool, rdb: rdb, keys: fanout.Keys{Prefix: prefix}, auth: a, dbURL: url,
		logger: logger,
	}
	if !direct {
		b.redisProxy = dbtest.NewProxy(t, rdb.Options().Addr)
	}

	// The runner.
	runnerRedis := b.redisClient(t)
	runnerFanout := fanout.New(runnerRedis, fanout.Config{Keys: b.keys})
	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: b.logger})
	require.NoError(t, err)
	ob, err := outbox.New(inserter, outbox.Config{MaxContentBytes: 1000})
	require.NoError(t, err)
	queues := jobs.DefaultQueues()
	if editQueues != nil {
		editQueues(queues)
	}
	ws := river.NewWorkers()
	dl := delivery.New(runnerPool, runnerFanout, delivery.Config{Logger: b.logger})
	require.NoError(t, workers.Register(ws, workers.Deps{
		Pool: runnerPool, Logger: b.logger, Outbox: ob, Fanout: runnerFanout, Delivery: dl,
		Broadcasts: broadcast.New(runnerPool, ob, inserter, broadcast.Options{Deliverer: dl}),
		Crypto:     workers.CryptoConfig{Sealer: keyring.NewSealer(testKeys)},
	}, queues))
	sweep := indexSweep
	if direct {
		sweep = jobs.DefaultIndexSweep
	}
	r, err := runner.New(runnerPool, runner.Config{Queues: queues, Workers: ws, Logger: b.logger, ShutdownTimeout: 2 * time.Second,
		AsyncCommit: true, NoDurabilityWait: jobs.RedoneIfLost(),
		PeriodicJobs: []*river.PeriodicJob{
			jobs.DeliverPendingPeriodic(deliverySweep, outbox.DefaultDeliveryBackstop),
			jobs.IndexPendingPeriodic(sweep),
		}})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	for range 2 {
		nodePool := pool
		if direct {
			// Each gateway process has a pool of its own in production.
			nodePool, err = db.NewPool(context.Background(), db.PoolConfig{URL: url, MaxConns: db.DefaultMaxConns})
			require.NoError(t, err)
			t.Cleanup(nodePool.Close)
		}
		b.nodes = append(b.nodes, b.startNode(t, nodePool))
	}
	return b
}

// redisClient returns a client of its own for one part of the bundle:
// through the proxy, or straight to the test Redis in a direct bundle.
func (b *bundle) redisClient(t testing.TB) *redis.Client {
	if b.redisProxy != nil {
		return proxiedRedis(t, b.redisProxy)
	}
	c := redis.NewClient(b.rdb.Options())
	t.Cleanup(func() { c.Close() })
	return c
}

func (b *bundle) startNode(t testing.TB, pool *pgxpool.Pool) *node {
	t.Helper()
	nodeRedis := b.redisClient(t)
	hub := fanout.NewHub(nodeRedis, fanout.HubConfig{Keys: b.keys, Logger: b.logger})
	store, err := attachments.NewDir(t.TempDir())
	require.NoError(t, err)
	srv, err := gateway.New(pool, fanout.New(nodeRedis, fanout.Config{Keys: b.keys}), hub, gateway.Config{
		Addr: "127.0.0.1:0", Auth: b.auth, Logger: b.logger, MaxContentBytes: 1000,
		Attachments: store, AttachmentMaxBytes: 64 << 10, Sealer: keyring.NewSealer(testKeys),
		DBTimeout: 2 * time.Second, ShutdownTimeout: 3 * time.Second,
	})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		_ = hub.Close()
	})
	checked.Serve(srv.Addr(), apitest.Gateway(t))
	return &node{srv: srv, base: "http://" + srv.Addr()}
}

func (b *bundle) token(t testing.TB, user uuid.UUID) string {
	t.Helper()
	tok, err := b.auth.Mint(user, time.Hour)
	require.NoError(t, err)
	return tok
}

func do(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	return resp.StatusCode, out
}

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(raw)
}

func (b *bundle) post(t *testing.T, n int, token string, body any) (int, map[string]any) {
	return do(t, http.MethodPost, b.nodes[n].base+"/v1/messages", token, body)
}

type client struct {
	t      *testing.T
	c      *websocket.Conn
	frames chan map[string]any
	closed chan error
}

// dial connects a websocket to node n and waits for its "ready" frame.
func (b *bundle) dial(t *testing.T, n int, token string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(b.nodes[n].base, "http", "ws", 1)+"/v1/ws?token="+token, nil)
	require.NoError(t, err)
	c.SetReadLimit(1 << 22)
	cl := &client{t: t, c: c, frames: make(chan map[string]any, 10000), closed: make(chan error, 1)}
	go func() {
		for {
			_, raw, err := c.Read(context.Background())
			if err != nil {
				cl.closed <- err
				return
			}
			var f map[string]any
			if json.Unmarshal(raw, &f) == nil {
				if f["type"] != "burst" && f["type"] != "bulk" { // published raw by writer_test
					apitest.Gateway(t).Schema(t, "ServerFrame", raw)
				}
				cl.frames <- f
			}
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	cl.expect("ready", nil)
	return cl
}

// with returns c reporting its failures to t, for use in a subtest; both
// read the same socket.
func (c *client) with(t *testing.T) *client {
	d := *c
	d.t = t
	return &d
}

func (c *client) write(v any) {
	c.t.Helper()
	var raw []byte
	if s, ok := v.(string); ok {
		raw = []byte(s) // as written: hostile frames come this way
	} else {
		var err error
		raw, err = json.Marshal(v)
		require.NoError(c.t, err)
		apitest.Gateway(c.t).Schema(c.t, "ClientFrame", raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(c.t, c.c.Write(ctx, websocket.MessageText, raw))
}

// expect returns the next frame of type typ that matches (skipping others).
func (c *client) expect(typ string, match func(map[string]any) bool) map[string]any {
	c.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f := <-c.frames:
			if f["type"] == typ && (match == nil || match(f)) {
				return f
			}
		case err := <-c.closed:
			c.t.Fatalf("connection closed while waiting for %s: %v", typ, err)
		case <-deadline:
			c.t.Fatalf("no %s frame within 20s", typ)
		}
	}
}

// quiet asserts no frame of type typ arrives within d.
func (c *client) quiet(typ string, d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f := <-c.frames:
			require.NotEqual(c.t, typ, f["type"], "unexpected frame %v", f)
		case <-deadline:
			return
		}
	}
}

// sweepPastBackstop stands for DefaultDeliveryBackstop passing: it moves
// message id's created_at back by more than the backstop, as if that time
// had gone by, then waits until a deliver-pending sweep that started after
// the move has finished, one that would take the message if it were still
// pending.
func (b *bundle) sweepPastBackstop(t *testing.T, id uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	tag, err := b.pool.Exec(ctx, `UPDATE messages SET created_at = created_at - $2::interval WHERE id = $1`,
		id, (outbox.DefaultDeliveryBackstop + time.Second).String())
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	// Read after the update committed: a sweep attempted later sees it.
	var moved time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&moved))
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'deliver-pending' AND attempted_at > $1 AND finalized_at IS NOT NULL`, moved) > 0
	}, 30*time.Second, 20*time.Millisecond, "a deliver-pending sweep ran after the message passed the backstop")
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func msgBody(conv, to uuid.UUID, content string) map[string]any {
	return map[string]any{"conversation_id": conv.String(), "recipient_id": to.String(), "content": content}
}

func TestMessageReachesRecipientOnAnotherNode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	bobWS := b.dial(t, 1, b.token(t, bob))

	code, res := b.post(t, 0, b.token(t, alice), msgBody(conv, bob, "hello bob"))
	require.Equal(t, http.StatusCreated, code, res)
	require.EqualValues(t, 1, res["seq"])
	require.Equal(t, "sent", res["status"], "published before answering")

	f := bobWS.expect("message", nil)
	require.Equal(t, res["id"], f["id"])
	require.Equal(t, "hello bob", f["content"])
	require.Equal(t, alice.String(), f["sender_id"])
	require.Equal(t, conv.String(), f["conversation_id"])
	require.EqualValues(t, 1, f["seq"])

	// Marked sent in a batch just after the answer.
	require.Eventually(t, func() bool {
		m, err := db.GetMessage(context.Background(), b.pool, uuid.MustParse(res["id"].(string)))
		require.NoError(t, err)
		return m.Status == db.MessageSent && m.SentAt != nil
	}, 5*time.Second, 10*time.Millisecond)

	code, metrics := getText(t, b.nodes[0].base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, metrics, `msgrunner_gateway_messages_total{result="sent"} 1`)
	require.Contains(t, metrics, `msgrunner_gateway_post_to_publish_seconds_count 1`)
	_, metrics = getText(t, b.nodes[1].base+"/metrics")
	require.Contains(t, metrics, "msgrunner_gateway_connections 1")
	require.Contains(t, metrics, `msgrunner_gateway_frames_sent_total{source="live"} `, "live frames are counted (the message, and maybe already its in-app notification)")

	// The gateway published it: no send-message job, and the
	// deliver-pending sweep, which runs all along, publishes nothing more
	// once the message is past the backstop: the next message frame bob
	// gets is the one sent after that sweep.
	require.Zero(t, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'send-message'`))
	b.sweepPastBackstop(t, uuid.MustParse(res["id"].(string)))
	code, res = b.post(t, 0, b.token(t, alice), msgBody(conv, bob, "after the sweep"))
	require.Equal(t, http.StatusCreated, code, res)
	require.Equal(t, "after the sweep", bobWS.expect("message", nil)["content"], "no second frame of the first message")
	require.Positive(t, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'deliver-pending' AND state = 'completed'`))
}

func TestAcksBecomeReceiptsAndStateOnlyMovesForward(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceWS := b.dial(t, 0, b.token(t, alice))
	bobWS := b.dial(t, 1, b.token(t, bob))

	aliceWS.write(map[string]any{"type": "send", "ref": "r1", "conversation_id": conv, "recipient_id": bob, "content": "ping"})
	sent := aliceWS.expect("sent", nil)
	require.Equal(t, "r1", sent["ref"])
	msg := bobWS.expect("message", nil)
	require.Equal(t, sent["id"], msg["id"])

	bobWS.write(map[string]any{"type": "ack", "message_id": msg["id"], "status": "delivered"})
	r := aliceWS.expect("receipt", nil)
	require.Equal(t, "delivered", r["status"])
	require.Equal(t, msg["id"], r["message_id"])

	bobWS.write(map[string]any{"type": "ack", "message_id": msg["id"], "status": "read"})
	r = aliceWS.expect("receipt", nil)
	require.Equal(t, "read", r["status"])

	id := uuid.MustParse(msg["id"].(string))
	m, err := db.GetMessage(context.Background(), b.pool, id)
	require.NoError(t, err)
	require.Equal(t, db.MessageRead, m.Status)
	require.NotNil(t, m.DeliveredAt)
	require.NotNil(t, m.ReadAt)
	readAt := *m.ReadAt

	// A late "delivered" and a duplicate "read" change nothing.
	bobWS.write(map[string]any{"type": "ack", "message_id": msg["id"], "status": "delivered"})
	bobWS.write(map[string]any{"type": "ack", "message_id": msg["id"], "status": "read"})
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'delivery-confirmation' AND state = 'completed'`) == 4
	}, 10*time.Second, 50*time.Millisecond)
	m, err = db.GetMessage(context.Background(), b.pool, id)
	require.NoError(t, err)
	require.Equal(t, db.MessageRead, m.Status)
	require.Equal(t, readAt, *m.ReadAt)
	aliceWS.quiet("receipt", 500*time.Millisecond)

	// Alice cannot ack a message sent to Bob.
	aliceWS.write(map[string]any{"type": "ack", "message_id": msg["id"], "status": "read", "ref": "x"})
	e := aliceWS.expect("error", nil)
	require.Equal(t, "not_found", e["code"])
	require.Equal(t, "x", e["ref"])
}

func TestResumeDeliversEverythingMissedInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, carol := uuid.New(), uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	other := gateway.DirectConversationID(carol, bob)
	aliceTok, carolTok := b.token(t, alice), b.token(t, carol)

	for i := range 50 {
		code, res := b.post(t, i%2, aliceTok, msgBody(conv, bob, "m"+strconv.Itoa(i+1)))
		require.Equal(t, http.StatusCreated, code, res)
	}
	code, _ := b.post(t, 0, carolTok, msgBody(other, bob, "from carol"))
	require.Equal(t, http.StatusCreated, code)

	bobWS := b.dial(t, 1, b.token(t, bob))
	bobWS.write(map[string]any{"type": "resume", "after": map[string]int64{}})
	seen := map[string]bool{}
	var seqs []float64
	for range 51 {
		f := bobWS.expect("message", nil)
		require.False(t, seen[f["id"].(string)], "message %v twice", f["id"])
		seen[f["id"].(string)] = true
		if f["conversation_id"] == conv.String() {
			seqs = append(seqs, f["seq"].(float64))
			require.Equal(t, "m"+strconv.Itoa(len(seqs)), f["content"])
		}
	}
	require.Len(t, seqs, 50)
	for i, s := range seqs {
		require.EqualValues(t, i+1, s)
	}
	done := bobWS.expect("resumed", nil)
	require.EqualValues(t, 51, done["messages"])

	// From a position: only what comes after it.
	bobWS.write(map[string]any{"type": "resume", "after": map[string]int64{conv.String(): 45, other.String(): 1}})
	for want := 46; want <= 50; want++ {
		f := bobWS.expect("message", nil)
		require.EqualValues(t, want, f["seq"])
	}
	done = bobWS.expect("resumed", nil)
	require.EqualValues(t, 5, done["messages"])

	// Carol resumes only her own conversation.
	carolWS := b.dial(t, 0, carolTok)
	carolWS.write(map[string]any{"type": "resume", "after": map[string]int64{}})
	f := carolWS.expect("message", nil)
	require.Equal(t, "from carol", f["content"])
	require.EqualValues(t, 1, carolWS.expect("resumed", nil)["messages"])
}

func TestHistoryAndUnreadUseTheCacheWithPostgresBehind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, eve := uuid.New(), uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok, bobTok := b.token(t, alice), b.token(t, bob)
	var ids []string
	for i := range 3 {
		_, res := b.post(t, 0, aliceTok, msgBody(conv, bob, "h"+strconv.Itoa(i)))
		ids = append(ids, res["id"].(string))
	}

	url := b.nodes[1].base + "/v1/conversations/" + conv.String() + "/messages"
	code, res := do(t, http.MethodGet, url, bobTok, nil)
	require.Equal(t, http.StatusOK, code, res)
	msgs := res["messages"].([]any)
	require.Len(t, msgs, 3)
	for i, m := range msgs {
		require.Equal(t, ids[i], m.(map[string]any)["id"])
	}
	require.Equal(t, true, res["cached"], "published messages fill the recent cache")

	code, res = do(t, http.MethodGet, url+"?after=2&limit=5", bobTok, nil)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, res["messages"].([]any), 1)
	require.EqualValues(t, 3, res["next_after"])

	// With the cache gone, Postgres answers and refills it.
	require.NoError(t, b.rdb.Del(context.Background(), b.keys.Prefix+"recent:{"+conv.String()+"}").Err())
	code, res = do(t, http.MethodGet, url, bobTok, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, false, res["cached"])
	require.Len(t, res["messages"].([]any), 3)
	_, res = do(t, http.MethodGet, url, bobTok, nil)
	require.Equal(t, true, res["cached"])

	code, _ = do(t, http.MethodGet, url, b.token(t, eve), nil)
	require.Equal(t, http.StatusForbidden, code, "only participants read history")
	code, res = do(t, http.MethodGet, url+"?limit=500", bobTok, nil)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "limit", res["error"].(map[string]any)["field"])

	unread := func() float64 {
		code, res := do(t, http.MethodGet, b.nodes[0].base+"/v1/unread", bobTok, nil)
		require.Equal(t, http.StatusOK, code)
		return res["total"].(float64)
	}
	require.EqualValues(t, 3, unread())
	require.EqualValues(t, 3, unread(), "served from the cache")

	bobWS := b.dial(t, 1, bobTok)
	bobWS.write(map[string]any{"type": "ack", "message_id": ids[0], "status": "read"})
	require.Eventually(t, func() bool { return unread() == 2 }, 10*time.Second, 50*time.Millisecond,
		"a read receipt invalidates the cached count")
	_, res = b.post(t, 0, aliceTok, msgBody(conv, bob, "one more"))
	require.Equal(t, "sent", res["status"])
	require.EqualValues(t, 3, unread(), "a new message invalidates it too")
}

func TestRetriedSendWithTheSameIDIsStoredOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, eve := uuid.New(), uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	id := uuid.New().String()
	body := map[string]any{"id": id, "conversation_id": conv, "recipient_id": bob, "content": "once"}
	code, first := b.post(t, 0, b.token(t, alice), body)
	require.Equal(t, http.StatusCreated, code, first)
	code, again := b.post(t, 1, b.token(t, alice), body)
	require.Equal(t, http.StatusCreated, code, again)
	require.Equal(t, first["id"], again["id"])
	require.Equal(t, first["seq"], again["seq"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM messages`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'send-notification'`), "one set of jobs")

	// Someone else's id is not theirs to replay.
	code, res := b.post(t, 0, b.token(t, eve), map[string]any{"id": id, "conversation_id": gateway.DirectConversationID(eve, bob), "recipient_id": bob, "content": "x"})
	require.Equal(t, http.StatusConflict, code, res)
	require.Equal(t, "id", res["error"].(map[string]any)["field"])
	code, _ = b.post(t, 0, b.token(t, alice), map[string]any{"id": "not-a-uuid", "conversation_id": conv, "recipient_id": bob, "content": "x"})
	require.Equal(t, http.StatusBadRequest, code)
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	body := msgBody(gateway.DirectConversationID(alice, bob), bob, "x")
	other, _ := auth.New([]byte(strings.Repeat("z", 32)))
	forged, _ := other.Mint(alice, time.Hour)

	cases := map[string]string{"missing": "", "garbage": "abc.def.ghi", "forged": forged}
	for name, tok := range cases {
		// Not parallel: the count of messages at the end needs them done.
		t.Run(name, func(t *testing.T) {
			code, res := b.post(t, 0, tok, body)
			require.Equal(t, http.StatusUnauthorized, code)
			require.Equal(t, "unauthorized", res["error"].(map[string]any)["code"])
		})
	}

	req, _ := http.NewRequest(http.MethodPost, b.nodes[0].base+"/v1/messages", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Basic abc")
	hresp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	hresp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, hresp.StatusCode)
	require.Contains(t, hresp.Header.Get("WWW-Authenticate"), "Bearer")

	// ?token= is accepted only for the websocket.
	code, _ := do(t, http.MethodPost, b.nodes[0].base+"/v1/messages?token="+b.token(t, alice), "", body)
	require.Equal(t, http.StatusUnauthorized, code)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, strings.Replace(b.nodes[0].base, "http", "ws", 1)+"/v1/ws", nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	_, resp, err = websocket.Dial(ctx, strings.Replace(b.nodes[0].base, "http", "ws", 1)+"/v1/ws?token="+forged, nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Zero(t, b.count(t, `SELECT count(*) FROM messages`))
}

func TestExpiredTokenIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice := uuid.New()
	// Minted by the gateway's secret on a clock an expiry and the leeway
	// behind the gateway's, so it reaches the gateway already expired.
	past, err := auth.New(secret, auth.WithClock(func() time.Time { return time.Now().Add(-time.Second - auth.Leeway - time.Second) }))
	require.NoError(t, err)
	tok, err := past.Mint(alice, time.Second)
	require.NoError(t, err)
	code, res := do(t, http.MethodGet, b.nodes[0].base+"/v1/unread", tok, nil)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "token expired", res["error"].(map[string]any)["message"])
}

func TestBadInputGetsAClearErrorAndWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, eve := uuid.New(), uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok := b.token(t, alice)
	code, _ := b.post(t, 0, aliceTok, msgBody(conv, bob, "first"))
	require.Equal(t, http.StatusCreated, code)
	before := b.count(t, `SELECT count(*) FROM messages`)

	cases := []struct {
		name   string
		token  string
		body   any
		status int
		code   string
		field  string
	}{
		{"malformed json", aliceTok, `{"conversation_id": `, 400, "bad_json", ""},
		{"two objects", aliceTok, `{} {}`, 400, "bad_json", ""},
		{"unknown field", aliceTok, `{"conversation_id":"` + conv.String() + `","recipient_id":"` + bob.String() + `","content":"x","colour":"red"}`, 400, "invalid_field", "colour"},
		{"wrong type", aliceTok, `{"conversation_id":"` + conv.String() + `","recipient_id":"` + bob.String() + `","content":42}`, 400, "invalid_field", "content"},
		{"conversation not a uuid", aliceTok, msgBody(uuid.Nil, bob, "x"), 400, "invalid_field", "conversation_id"},
		{"recipient not a uuid", aliceTok, map[string]any{"conversation_id": conv.String(), "recipient_id": "bob", "content": "x"}, 400, "invalid_field", "recipient_id"},
		{"empty content", aliceTok, msgBody(conv, bob, "  "), 400, "invalid_field", "content"},
		{"content over limit", aliceTok, msgBody(conv, bob, strings.Repeat("x", 1001)), 400, "invalid_field", "content"},
		{"body over limit", aliceTok, msgBody(conv, bob, strings.Repeat("x", 8000)), 413, "body_too_large", ""},
		{"unknown priority", aliceTok, map[string]any{"conversation_id": conv.String(), "recipient_id": bob.String(), "content": "x", "priority": "asap"}, 400, "invalid_field", "priority"},
		{"foreign conversation", b.token(t, eve), msgBody(conv, bob, "let me in"), 403, "not_participant", ""},
		{"message to self", aliceTok, msgBody(conv, alice, "me"), 400, "invalid_field", "recipient_id"},
		{"encrypted but empty", aliceTok, map[string]any{"conversation_id": conv.String(), "recipient_id": bob.String(), "content": " ", "requires_encryption": true}, 400, "invalid_field", "content"},
	}
	// Not parallel: "nothing written" below needs every case done.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, res := b.post(t, 0, tc.token, tc.body)
			require.Equal(t, tc.status, code, "%v", res)
			e := res["error"].(map[string]any)
			require.Equal(t, tc.code, e["code"])
			require.NotEmpty(t, e["message"])
			if tc.field != "" {
				require.Equal(t, tc.field, e["field"])
			}
		})
	}
	require.Equal(t, before, b.count(t, `SELECT count(*) FROM messages`), "nothing written")

	// Nobody can create the conversation of two other users.
	carol, dave := uuid.New(), uuid.New()
	code, res := b.post(t, 0, b.token(t, eve), msgBody(gateway.DirectConversationID(carol, dave), carol, "mine now"))
	require.Equal(t, http.StatusForbidden, code, res)
	require.Equal(t, "conversation_id", res["error"].(map[string]any)["field"])
	require.Zero(t, b.count(t, `SELECT count(*) FROM conversations WHERE id = $1`, gateway.DirectConversationID(carol, dave)))

	// Bad frames get error frames; the connection stays healthy.
	ws := b.dial(t, 0, aliceTok)
	frames := []struct {
		name  string
		raw   any
		code  string
		field string
	}{
		{"not json", "not json", "bad_json", ""},
		{"unknown type", map[string]any{"type": "teleport"}, "unknown_type", "type"},
		{"no type", map[string]any{"no": "type"}, "invalid_field", "type"},
		{"ack of a bad id", map[string]any{"type": "ack", "message_id": "nope", "status": "read"}, "invalid_field", "message_id"},
		{"ack of an unknown status", map[string]any{"type": "ack", "message_id": uuid.New(), "status": "seen"}, "invalid_field", "status"},
		{"ack of an unknown message", map[string]any{"type": "ack", "message_id": uuid.New(), "status": "read"}, "not_found", "message_id"},
		{"resume after a non-number", map[string]any{"type": "resume", "after": map[string]any{"x": 1}}, "invalid_field", "after"},
		{"send with an unknown field", map[string]any{"type": "send", "conversation_id": conv, "recipient_id": bob, "content": "x", "extra": 1}, "invalid_field", "extra"},
		{"send to a non-participant", map[string]any{"type": "send", "conversation_id": conv, "recipient_id": eve, "content": "x"}, "not_participant", ""},
		{"frame over limit", map[string]any{"type": "send", "conversation_id": conv, "recipient_id": bob, "content": strings.Repeat("y", 300<<10)}, "frame_too_large", ""},
	}
	// In order, on one socket: each error frame answers the frame before.
	for _, f := range frames {
		t.Run("frame "+f.name, func(t *testing.T) {
			ws := ws.with(t)
			raw := f.raw
			if m, ok := raw.(map[string]any); ok {
				// Refused on purpose: written as text, not checked against ClientFrame.
				b, err := json.Marshal(m)
				require.NoError(t, err)
				raw = string(b)
			}
			ws.write(raw)
			e := ws.expect("error", nil)
			require.Equal(t, f.code, e["code"], "%v", f.raw)
			if f.field != "" {
				require.Equal(t, f.field, e["field"], "%v", f.raw)
			}
		})
	}
	ws.write(map[string]any{"type": "ping", "ref": "still-alive"})
	require.Equal(t, "still-alive", ws.expect("pong", nil)["ref"])
	require.Equal(t, before, b.count(t, `SELECT count(*) FROM messages`), "nothing written")
}

func TestRedisOutageLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok, bobTok := b.token(t, alice), b.token(t, bob)
	// Bob stays connected through the outage.
	steady := b.dial(t, 1, bobTok)

	b.redisProxy.Sever()
	code, res := b.post(t, 0, aliceTok, msgBody(conv, bob, "during the outage"))
	require.Equal(t, http.StatusCreated, code, res)
	require.Equal(t, "pending", res["status"], "stored, not yet published")
	id := uuid.MustParse(res["id"].(string))

	// The deliver-pending sweep finds it once the backstop delay is over,
	// cannot publish, and leaves it pending for its next run.
	b.sweepPastBackstop(t, id)
	m, err := db.GetMessage(context.Background(), b.pool, id)
	require.NoError(t, err)
	require.Equal(t, db.MessagePending, m.Status)
	require.Zero(t, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'deliver-pending' AND state <> 'completed' AND finalized_at IS NOT NULL`), "no sweep failed")

	b.redisProxy.Restore()
	require.Eventually(t, func() bool {
		m, err := db.GetMessage(context.Background(), b.pool, id)
		return err == nil && m.Status == db.MessageSent
	}, 30*time.Second, 100*time.Millisecond, "delivery resumes when Redis returns")
	// The node subscribed again and tells the socket that was open
	// through the outage to catch up; from then on frames reach it live.
	steady.expect("resync", nil)

	bobWS := b.dial(t, 1, bobTok)
	bobWS.write(map[string]any{"type": "resume", "after": map[string]int64{}})
	require.Equal(t, "during the outage", bobWS.expect("message", nil)["content"])

	// Live delivery works again end to end, on both sockets.
	require.Eventually(t, func() bool {
		_, res := b.post(t, 0, aliceTok, msgBody(conv, bob, "after"))
		return res["status"] == "sent"
	}, 20*time.Second, 200*time.Millisecond)
	require.Equal(t, "after", bobWS.expect("message", func(f map[string]any) bool { return f["content"] == "after" })["content"])
	require.Equal(t, "after", steady.expect("message", func(f map[string]any) bool { return f["content"] == "after" })["content"])
}

func TestSocketsAreToldToResumeAfterARedisReconnect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ws := b.dial(t, 1, b.token(t, uuid.New()))
	b.redisProxy.Sever()
	time.Sleep(300 * time.Millisecond)
	b.redisProxy.Restore()
	f := ws.expect("resync", nil)
	require.Contains(t, f["reason"], "resume")
	// The node counts the channels it subscribed again, for alerts.
	_, metrics := getText(t, b.nodes[1].base+"/metrics")
	require.Regexp(t, `(?m)^msgrunner_gateway_redis_resubscribes_total [1-9]`, metrics)
	_, metrics = getText(t, b.nodes[0].base+"/metrics")
	require.Contains(t, metrics, "msgrunner_gateway_redis_resubscribes_total 0", "node 0 held no socket")
}

func TestPostgresDownIs503AndWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg, err := pgx.ParseConfig(b.dbURL)
	require.NoError(t, err)
	pgProxy := dbtest.NewProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	proxied := strings.Replace(b.dbURL, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), pgProxy.Addr(), 1)
	pool, err := db.NewPool(context.Background(), db.PoolConfig{URL: proxied, MaxConns: 4, ConnectTimeout: time.Second})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	n := b.startNode(t, pool)

	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	pgProxy.Sever()
	code, res := do(t, http.MethodPost, n.base+"/v1/messages", b.token(t, alice), msgBody(conv, bob, "x"))
	require.Equal(t, http.StatusServiceUnavailable, code, res)
	require.Equal(t, "database_unavailable", res["error"].(map[string]any)["code"])
	code, _ = do(t, http.MethodGet, n.base+"/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code)

	pgProxy.Restore()
	require.Zero(t, b.count(t, `SELECT count(*) FROM messages`))
	require.Eventually(t, func() bool {
		code, _ := do(t, http.MethodPost, n.base+"/v1/messages", b.token(t, alice), msgBody(conv, bob, "y"))
		return code == http.StatusCreated
	}, 10*time.Second, 100*time.Millisecond)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM messages`))
}

func TestShutdownClosesSocketsWithGoingAway(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ws := b.dial(t, 0, b.token(t, uuid.New()))
	require.NoError(t, b.nodes[0].srv.Shutdown(context.Background()))
	select {
	case err := <-ws.closed:
		require.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err))
	case <-time.After(5 * time.Second):
		t.Fatal("socket not closed on shutdown")
	}
	_, err := http.Get(b.nodes[0].base + "/healthz")
	var opErr *net.OpError
	require.True(t, errors.As(err, &opErr), "listener closed: %v", err)
}
