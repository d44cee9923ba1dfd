package gateway_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/gateway"
)

// Deleting a conversation on one's side hides its messages so far from
// one's history, resume, search and unread counts, and only from one's
// own; a message that arrives later shows as usual.
func TestDeletedConversationIsHiddenFromTheDeleterOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	aliceTok, bobTok := b.token(t, alice), b.token(t, bob)
	conv := gateway.DirectConversationID(alice, bob)
	for _, text := range []string{"walrus one", "walrus two", "walrus three"} {
		code, res := b.post(t, 0, aliceTok, msgBody(conv, bob, text))
		require.Equal(t, http.StatusCreated, code, res)
	}
	search := func(tok string) int {
		_, res := do(t, http.MethodGet, b.nodes[0].base+"/v1/search?q="+url.QueryEscape("walrus"), tok, nil)
		return len(res["results"].([]any))
	}
	require.Eventually(t, func() bool { return search(bobTok) == 3 }, 20*time.Second, 50*time.Millisecond, "indexed")
	history := func(n int, tok string) []any {
		code, res := do(t, http.MethodGet, b.nodes[n].base+"/v1/conversations/"+conv.String()+"/messages", tok, nil)
		require.Equal(t, http.StatusOK, code, res)
		return res["messages"].([]any)
	}
	unread := func(tok string) float64 {
		_, res := do(t, http.MethodGet, b.nodes[0].base+"/v1/unread", tok, nil)
		return res["total"].(float64)
	}
	require.Len(t, history(0, bobTok), 3) // fills the recent cache
	require.EqualValues(t, 3, unread(bobTok))

	code, _ := do(t, http.MethodDelete, b.nodes[0].base+"/v1/conversations/"+conv.String(), bobTok, nil)
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, history(0, bobTok), "hidden from the cache path")
	require.Empty(t, history(1, bobTok))
	require.Zero(t, search(bobTok))
	require.Zero(t, unread(bobTok))
	ws := b.dial(t, 1, bobTok)
	ws.write(map[string]any{"type": "resume", "after": map[string]any{}})
	require.EqualValues(t, 0, ws.expect("resumed", nil)["messages"])
	// Alice still has everything.
	require.Len(t, history(0, aliceTok), 3)
	require.Equal(t, 3, search(aliceTok))

	// A later message shows for Bob, alone.
	code, res := b.post(t, 0, aliceTok, msgBody(conv, bob, "walrus four"))
	require.Equal(t, http.StatusCreated, code, res)
	msgs := history(0, bobTok)
	require.Len(t, msgs, 1)
	require.Equal(t, "walrus four", msgs[0].(map[string]any)["content"])
	require.Eventually(t, func() bool { return search(bobTok) == 1 }, 20*time.Second, 50*time.Millisecond)
	require.EqualValues(t, 1, unread(bobTok))
	ws.write(map[string]any{"type": "resume", "after": map[string]any{}})
	require.Equal(t, "walrus four", ws.expect("message", func(f map[string]any) bool { return f["content"] == "walrus four" })["content"])
	require.EqualValues(t, 1, ws.expect("resumed", nil)["messages"])
}
