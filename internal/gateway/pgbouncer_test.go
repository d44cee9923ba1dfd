package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/gateway"
	"github.com/msgrunner/msgrunner/outbox"
)

// TestGatewayThroughPgBouncerInTransactionMode runs a gateway node whose
// every statement goes through PgBouncer in transaction pooling mode, with
// far fewer server connections (2) than the node's pool (16), so
// consecutive transactions of one client connection land on different
// server connections: concurrent sends with retries by the same id, edits,
// history, unread counts, search and resume all work, nothing is stored
// twice; while PgBouncer is stopped the node answers 503 and writes
// nothing, and once it is back the retried send succeeds by itself.
func TestGatewayThroughPgBouncerInTransactionMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	bouncer := dbtest.NewPgBouncer(t, b.dbURL, 2)
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: bouncer.URL(b.dbURL), MaxConns: 16, ConnectTimeout: time.Second})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b.nodes = append(b.nodes, b.startNode(t, pool))
	const viaBouncer = 2

	const senders, each = 8, 10
	bob := uuid.New()
	bobTok := b.token(t, bob)
	bobWS := b.dial(t, viaBouncer, bobTok)
	var wg sync.WaitGroup
	ids := make(chan uuid.UUID, senders*each)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			alice := uuid.New()
			tok := b.token(t, alice)
			conv := gateway.DirectConversationID(alice, bob)
			for k := range each {
				body := msgBody(conv, bob, fmt.Sprintf("through the pooler %d", k))
				body["id"] = uuid.NewString()
				code, res := do(t, http.MethodPost, b.nodes[viaBouncer].base+"/v1/messages", tok, body)
				if code != http.StatusCreated {
					t.Errorf("send: %d %v", code, res)
					return
				}
				// The same id again: the same message, not a second one.
				code, again := do(t, http.MethodPost, b.nodes[viaBouncer].base+"/v1/messages", tok, body)
				if code != http.StatusCreated || again["id"] != res["id"] || again["seq"] != res["seq"] {
					t.Errorf("retry: %d %v", code, again)
				}
				ids <- uuid.MustParse(res["id"].(string))
			}
		}()
	}
	wg.Wait()
	close(ids)
	require.False(t, t.Failed())
	require.Equal(t, senders*each, b.count(t, `SELECT count(*) FROM messages WHERE recipient_id = $1`, bob), "each stored once")
	// The gateway marks what it published sent, in batches, through the
	// pooler too: well before the runner's deliver-pending backstop
	// (outbox.DefaultDeliveryBackstop) would.
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM messages WHERE recipient_id = $1 AND status = 'sent'`, bob) == senders*each
	}, 10*time.Second, 20*time.Millisecond, "marked sent")
	require.Zero(t, b.count(t, `SELECT count(*) FROM messages WHERE recipient_id = $1 AND sent_at - created_at >= $2::interval`,
		bob, outbox.DefaultDeliveryBackstop.String()), "marked by the gateway, not by the backstop")

	got := map[string]bool{}
	for len(got) < senders*each {
		f := bobWS.expect("message", nil)
		got[f["id"].(string)] = true
	}
	for id := range ids {
		require.True(t, got[id.String()], "message %s delivered live", id)
	}

	// Reads and an edit through the pooler.
	code, unread := do(t, http.MethodGet, b.nodes[viaBouncer].base+"/v1/unread", bobTok, nil)
	require.Equal(t, http.StatusOK, code, unread)
	require.EqualValues(t, senders*each, unread["total"])
	alice := uuid.New()
	aliceTok := b.token(t, alice)
	conv := gateway.DirectConversationID(alice, bob)
	code, res := do(t, http.MethodPost, b.nodes[viaBouncer].base+"/v1/messages", aliceTok, msgBody(conv, bob, "draft"))
	require.Equal(t, http.StatusCreated, code, res)
	code, res = do(t, http.MethodPatch, b.nodes[viaBouncer].base+"/v1/messages/"+res["id"].(string), aliceTok, map[string]any{"content": "final wording"})
	require.Equal(t, http.StatusOK, code, res)
	code, hist := do(t, http.MethodGet, b.nodes[viaBouncer].base+"/v1/conversations/"+conv.String()+"/messages", aliceTok, nil)
	require.Equal(t, http.StatusOK, code, hist)
	require.Equal(t, "final wording", hist["messages"].([]any)[0].(map[string]any)["content"])
	require.Eventually(t, func() bool {
		code, found := do(t, http.MethodGet, b.nodes[viaBouncer].base+"/v1/search?q=wording", aliceTok, nil)
		return code == http.StatusOK && len(found["results"].([]any)) == 1
	}, 20*time.Second, 100*time.Millisecond, "indexed by the runner, found through the pooler")
	inConv := func(f map[string]any) bool { return f["conversation_id"] == conv.String() }
	require.Equal(t, "draft", bobWS.expect("message", inConv)["content"], "delivered live as sent")
	bobWS.write(map[string]any{"type": "resume", "after": map[string]int64{conv.String(): 0}})
	require.Equal(t, "final wording", bobWS.expect("message", inConv)["content"], "resumed as edited")

	// PgBouncer stops: 503, nothing written; it returns: the retry by the
	// same id succeeds.
	bouncer.Stop()
	body := msgBody(conv, bob, "while the pooler is down")
	body["id"] = uuid.NewString()
	before := b.count(t, `SELECT count(*) FROM messages`)
	code, res = do(t, http.MethodPost, b.nodes[viaBouncer].base+"/v1/messages", aliceTok, body)
	require.Equal(t, http.StatusServiceUnavailable, code, res)
	require.Equal(t, before, b.count(t, `SELECT count(*) FROM messages`), "nothing written")
	bouncer.Start()
	require.Eventually(t, func() bool {
		code, _ := do(t, http.MethodPost, b.nodes[viaBouncer].base+"/v1/messages", aliceTok, body)
		return code == http.StatusCreated
	}, 20*time.Second, 200*time.Millisecond)
	require.Equal(t, before+1, b.count(t, `SELECT count(*) FROM messages`))
}
