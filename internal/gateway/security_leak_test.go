package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/gateway"
	"github.com/msgrunner/msgrunner/internal/keyring"
)

// lockedBuffer is a log sink for several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// setupLogged is setup with the runner, River and both gateway nodes
// logging at debug level into one buffer.
func setupLogged(t *testing.T) (*bundle, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	return newBundle(t, nil, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))), logs
}

// TestSecurityEncryptedContentAndSecretsNeverLeak sends encrypted messages
// carrying a marker along every path (HTTP, websocket, to an offline user,
// through a Redis outage and the job's retry, refused sends, reads back),
// with the runner and gateways logging at debug level, then scans: the
// logs, every row of every table (river_job's args, metadata and errors
// included), every Redis key under the test prefix read by its type, and
// every pub/sub payload under the prefix. None holds the marker; the logs
// hold no token, signing secret, keyring key or database password.
func TestSecurityEncryptedContentAndSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	b, logs := setupLogged(t)
	ctx := context.Background()
	const marker = "PLAINTEXT-MARKER"
	content := func(n int) string { return fmt.Sprintf("the vault code is %s-%d", marker, n) }

	// Every pub/sub payload under the prefix, from before the first send.
	sniff := b.rdb.PSubscribe(ctx, b.keys.Prefix+"*")
	t.Cleanup(func() { sniff.Close() })
	_, err := sniff.Receive(ctx)
	require.NoError(t, err)
	var payloadMu sync.Mutex
	var payloads []string
	go func() {
		for m := range sniff.Channel() {
			payloadMu.Lock()
			payloads = append(payloads, m.Channel+" "+m.Payload)
			payloadMu.Unlock()
		}
	}()

	alice, bob, carol, eve := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	aliceTok, bobTok, carolTok, eveTok := b.token(t, alice), b.token(t, bob), b.token(t, carol), b.token(t, eve)
	ab, ac := gateway.DirectConversationID(alice, bob), gateway.DirectConversationID(alice, carol)
	enc := func(conv, to uuid.UUID, n int) map[string]any {
		return map[string]any{"conversation_id": conv, "recipient_id": to, "content": content(n), "requires_encryption": true}
	}
	aliceWS := b.dial(t, 0, aliceTok)
	bobWS := b.dial(t, 1, bobTok)

	// HTTP, to an online user.
	code, res := b.post(t, 0, aliceTok, enc(ab, bob, 1))
	require.Equal(t, http.StatusCreated, code, res)
	first := res["id"].(string)
	require.Equal(t, content(1), bobWS.expect("message", nil)["content"])
	// Websocket send frame, the other way.
	f := enc(ab, alice, 2)
	f["type"], f["ref"] = "send", "w"
	bobWS.write(f)
	bobWS.expect("sent", nil)
	require.Equal(t, content(2), aliceWS.expect("message", nil)["content"])
	// To a user who is offline (notification path).
	code, res = b.post(t, 1, aliceTok, enc(ac, carol, 3))
	require.Equal(t, http.StatusCreated, code, res)
	// Through a Redis outage: stored pending, delivered later by the job.
	b.redisProxy.Sever()
	code, res = b.post(t, 0, aliceTok, enc(ab, bob, 4))
	require.Equal(t, http.StatusCreated, code, res)
	require.Equal(t, "pending", res["status"])
	pending := uuid.MustParse(res["id"].(string))
	b.redisProxy.Restore()
	require.Eventually(t, func() bool {
		m, err := db.GetMessage(ctx, b.pool, pending)
		return err == nil && m.Status != db.MessagePending
	}, 30*time.Second, 100*time.Millisecond, "the job delivers it once Redis is back")

	// Refused: scheduled (unsupported encrypted), over the limit, someone
	// else's conversation, an edit of an encrypted message.
	over := enc(ab, bob, 5)
	over["content"] = strings.Repeat(content(5)+" ", 60)
	scheduled := enc(ab, bob, 6)
	scheduled["delay_ms"] = 3600000 // held sealed for the rest of the test
	for _, tc := range []struct {
		name string
		tok  string
		body map[string]any
		want int
	}{
		{"scheduled", aliceTok, scheduled, http.StatusAccepted},
		{"over the limit", aliceTok, over, http.StatusBadRequest},
		{"someone else's conversation", eveTok, enc(ab, bob, 7), http.StatusForbidden},
	} {
		// Not parallel: the scans below need every case done.
		t.Run(tc.name, func(t *testing.T) {
			code, res := b.post(t, 0, tc.tok, tc.body)
			require.Equal(t, tc.want, code, res)
			require.NotContains(t, fmt.Sprint(res), marker, "errors never echo content")
		})
	}
	code, _ = do(t, http.MethodPatch, b.nodes[0].base+"/v1/messages/"+first, aliceTok, map[string]any{"content": content(8)})
	require.Equal(t, http.StatusNotFound, code)

	// Read back: history, resume, acks.
	code, res = do(t, http.MethodGet, b.nodes[1].base+"/v1/conversations/"+ab.String()+"/messages", bobTok, nil)
	require.Equal(t, http.StatusOK, code, res)
	require.Len(t, res["messages"], 3)
	carolWS := b.dial(t, 0, carolTok)
	carolWS.write(map[string]any{"type": "resume", "after": map[string]int64{}})
	require.Equal(t, content(3), carolWS.expect("message", nil)["content"])
	bobWS.write(map[string]any{"type": "ack", "message_id": first, "status": "read"})
	aliceWS.expect("receipt", nil)

	// Tokens that fail, over HTTP and the websocket, so their refusals
	// are logged if anything is.
	other, err := auth.New([]byte(strings.Repeat("q", 32)))
	require.NoError(t, err)
	forged, err := other.Mint(alice, time.Hour)
	require.NoError(t, err)
	code, _ = b.post(t, 0, forged, enc(ab, bob, 9))
	require.Equal(t, http.StatusUnauthorized, code)
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, _, err = websocket.Dial(dctx, strings.Replace(b.nodes[1].base, "http", "ws", 1)+"/v1/ws?token="+forged, nil)
	cancel()
	require.Error(t, err)

	// Let every job of these messages finish.
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind NOT IN `+sweepKinds+` AND state NOT IN ('completed', 'discarded', 'cancelled') AND scheduled_at < now() + interval '30 seconds'`) == 0
	}, 40*time.Second, 200*time.Millisecond)
	require.Positive(t, b.count(t, `SELECT count(*) FROM river_job`))

	// Postgres: every row of every table, river_job's included.
	tables, err := b.pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(tables, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, names, "river_job")
	for _, name := range names {
		var dump string
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT coalesce(string_agg(to_jsonb(t)::text, E'\n'), '') FROM `+pgx.Identifier{name}.Sanitize()+` t`).Scan(&dump))
		require.NotContains(t, dump, marker, "table %s holds plaintext", name)
	}
	var jobText string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT string_agg(args::text || metadata::text || coalesce(errors::text, ''), E'\n') FROM river_job`).Scan(&jobText))
	require.NotContains(t, jobText, marker)

	// Redis: every key under the prefix, read as its type needs.
	var scanned int
	iter := b.rdb.Scan(ctx, 0, b.keys.Prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := b.rdb.Type(ctx, k).Result()
		require.NoError(t, err)
		var vals []string
		switch typ {
		case "string":
			vals = []string{b.rdb.Get(ctx, k).Val()}
		case "list":
			vals = b.rdb.LRange(ctx, k, 0, -1).Val()
		case "set":
			vals = b.rdb.SMembers(ctx, k).Val()
		case "zset":
			vals = b.rdb.ZRange(ctx, k, 0, -1).Val()
		case "hash":
			for f, v := range b.rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "stream":
			for _, m := range b.rdb.XRange(ctx, k, "-", "+").Val() {
				vals = append(vals, fmt.Sprint(m.Values))
			}
		case "none": // expired meanwhile
		default:
			t.Fatalf("key %s has type %s, which this scan cannot read", k, typ)
		}
		// DUMP may compress (LZF), so it is a second look, not the first.
		vals = append(vals, b.rdb.Dump(ctx, k).Val())
		for _, v := range vals {
			require.NotContains(t, v, marker, "Redis key %s (%s) holds plaintext", k, typ)
		}
		scanned++
	}
	require.NoError(t, iter.Err())
	require.Positive(t, scanned, "the recent cache and friends exist")

	// Pub/sub: every payload seen under the prefix. Redis hands a
	// subscriber messages in the order they were published, so once a
	// marker published now has arrived, so has everything before it.
	const last = "last payload of the test"
	require.NoError(t, b.rdb.Publish(ctx, b.keys.Prefix+"test:end", last).Err())
	require.Eventually(t, func() bool {
		payloadMu.Lock()
		defer payloadMu.Unlock()
		return slices.Contains(payloads, b.keys.Prefix+"test:end "+last)
	}, 10*time.Second, 10*time.Millisecond, "the sniffer saw the last payload")
	payloadMu.Lock()
	seen := append([]string(nil), payloads...)
	payloadMu.Unlock()
	require.GreaterOrEqual(t, len(seen)-1, 4, "the messages crossed Redis")
	for _, p := range seen {
		require.NotContains(t, p, marker, "pub/sub payload holds plaintext")
	}

	// Logs: no content, token, signing secret, key or database password.
	out := logs.String()
	require.NotEmpty(t, out)
	require.Contains(t, out, `"level":"DEBUG"`, "debug logs were captured")
	secrets := map[string]string{
		"content marker": marker, "AUTH_SECRET": string(secret),
		"alice's JWT": aliceTok, "bob's JWT": bobTok, "carol's JWT": carolTok, "eve's JWT": eveTok, "forged JWT": forged,
	}
	for i, b := range []byte{1, 2} {
		key := bytes.Repeat([]byte{b}, keyring.KeySize)
		secrets[fmt.Sprintf("keyring key k%d (base64)", i+1)] = base64.StdEncoding.EncodeToString(key)
		secrets[fmt.Sprintf("keyring key k%d (raw)", i+1)] = string(key)
	}
	if u, err := url.Parse(b.dbURL); err == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			secrets["database password"] = pw
		}
	}
	for name, s := range secrets {
		require.NotContains(t, out, s, "the logs hold the %s", name)
	}
	// A JWT's signature alone is enough to replay nothing, but its
	// header.payload is the token minus proof: look for that too.
	for _, tok := range []string{aliceTok, bobTok, forged} {
		require.NotContains(t, out, tok[:strings.LastIndex(tok, ".")])
	}
	t.Logf("scanned %d bytes of logs, %d tables, %d Redis keys, %d pub/sub payloads", len(out), len(names), scanned, len(seen))
}
