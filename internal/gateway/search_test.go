package gateway_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/gateway"
)

func (b *bundle) search(t *testing.T, token, q string, extra string) (int, map[string]any) {
	t.Helper()
	return do(t, http.MethodGet, b.nodes[0].base+"/v1/search?q="+url.QueryEscape(q)+extra, token, nil)
}

func ids(t *testing.T, body map[string]any) []string {
	t.Helper()
	var out []string
	for _, r := range body["results"].([]any) {
		out = append(out, r.(map[string]any)["id"].(string))
	}
	return out
}

// waitIndexed waits until the search backlog is empty and every index-message job has run.
func (b *bundle) waitIndexed(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM search_backlog`) == 0 &&
			b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'index-message' AND state NOT IN ('completed', 'cancelled', 'discarded')`) == 0
	}, 20*time.Second, 50*time.Millisecond)
}

func TestSearchRanksFiltersAndFollowsEdits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, carol, eve := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	ab := gateway.DirectConversationID(alice, bob)
	ac := gateway.DirectConversationID(alice, carol)
	aliceTok, bobTok, eveTok := b.token(t, alice), b.token(t, bob), b.token(t, eve)
	send := func(conv, to uuid.UUID, text string) string {
		code, res := b.post(t, 0, aliceTok, msgBody(conv, to, text))
		require.Equal(t, http.StatusCreated, code, res)
		return res["id"].(string)
	}
	strong := send(ab, bob, "pizza pizza pizza tonight?")
	weak := send(ab, bob, "pizza maybe, or sushi")
	send(ab, bob, "see you tomorrow")
	private := send(ac, carol, "pizza with carol <b>only</b>")
	b.waitIndexed(t)

	code, body := b.search(t, aliceTok, "pizza", "")
	require.Equal(t, http.StatusOK, code, body)
	got := ids(t, body)
	require.Len(t, got, 3)
	require.Equal(t, strong, got[0], "more occurrences rank higher")
	require.ElementsMatch(t, []string{weak, private}, got[1:], "equal ranks follow, ordered by id")
	snippet := body["results"].([]any)[0].(map[string]any)["snippet"].(string)
	require.Contains(t, snippet, "<mark>pizza</mark>")
	for _, r := range body["results"].([]any) {
		if r.(map[string]any)["id"] == private {
			require.Contains(t, r.(map[string]any)["snippet"], "&lt;b&gt;", "content is escaped in snippets")
		}
	}

	// Bob sees only his conversation; Eve sees nothing.
	_, body = b.search(t, bobTok, "pizza", "")
	require.ElementsMatch(t, []string{strong, weak}, ids(t, body))
	_, body = b.search(t, eveTok, "pizza", "")
	require.Empty(t, body["results"])
	_, body = b.search(t, aliceTok, "pizza", "&conversation_id="+ac.String())
	require.Equal(t, []string{private}, ids(t, body))

	// Pages without gaps or repeats.
	_, p1 := b.search(t, aliceTok, "pizza", "&limit=2")
	require.Equal(t, got[:2], ids(t, p1))
	cur := p1["next_cursor"].(string)
	_, p2 := b.search(t, aliceTok, "pizza", "&limit=2&cursor="+url.QueryEscape(cur))
	require.Equal(t, got[2:], ids(t, p2))
	require.Nil(t, p2["next_cursor"])

	// An edit by the sender is reflected; others cannot edit.
	code, _ = do(t, http.MethodPatch, b.nodes[0].base+"/v1/messages/"+weak, bobTok, map[string]any{"content": "hijack"})
	require.Equal(t, http.StatusNotFound, code)
	code, res := do(t, http.MethodPatch, b.nodes[0].base+"/v1/messages/"+weak, aliceTok, map[string]any{"content": "ramen instead"})
	require.Equal(t, http.StatusOK, code, res)
	b.waitIndexed(t)
	_, body = b.search(t, aliceTok, "ramen", "")
	require.Equal(t, []string{weak}, ids(t, body))
	_, body = b.search(t, aliceTok, "sushi", "")
	require.Empty(t, body["results"])

	// A delete removes it from search and marks it in history.
	code, _ = do(t, http.MethodDelete, b.nodes[0].base+"/v1/messages/"+strong, aliceTok, nil)
	require.Equal(t, http.StatusNoContent, code)
	code, _ = do(t, http.MethodDelete, b.nodes[0].base+"/v1/messages/"+strong, aliceTok, nil)
	require.Equal(t, http.StatusNotFound, code, "already deleted")
	b.waitIndexed(t)
	_, body = b.search(t, aliceTok, "pizza", "")
	require.Equal(t, []string{private}, ids(t, body))
	_, hist := do(t, http.MethodGet, b.nodes[0].base+"/v1/conversations/"+ab.String()+"/messages", bobTok, nil)
	msgs := hist["messages"].([]any)
	require.Equal(t, true, msgs[0].(map[string]any)["deleted"])
	require.Empty(t, msgs[0].(map[string]any)["content"])
	require.Equal(t, true, msgs[1].(map[string]any)["edited"])
	require.Equal(t, "ramen instead", msgs[1].(map[string]any)["content"])
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM message_search WHERE conversation_id = $1`, ab), "the deleted message left the index")
}

func TestHostileSearchQueriesNeverFail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	tok := b.token(t, alice)
	code, _ := b.post(t, 0, tok, msgBody(gateway.DirectConversationID(alice, bob), bob, "ünïcödé text 😀 and 'quotes' \"double\""))
	require.Equal(t, http.StatusCreated, code)
	b.waitIndexed(t)
	ok := []string{`"`, `'`, `"unterminated`, `!!!`, `a & b | !c`, `<->`, `foo:*`, `\`, `(((`, `-`, `OR`, `-pizza`, `ünïcödé`, `😀`,
		`'; DROP TABLE messages; --`, `%`, `_`, `\x00`, strings.Repeat("a ", 400)}
	for _, q := range ok {
		t.Run(fmt.Sprintf("accepted %.20q", q), func(t *testing.T) {
			code, body := b.search(t, tok, q, "")
			require.Equal(t, http.StatusOK, code, "%q: %v", q, body)
		})
	}
	_, body := b.search(t, tok, "ünïcödé", "")
	require.Len(t, body["results"], 1)
	for _, q := range []string{"", "   ", strings.Repeat("x", 10<<10), "a\x00b"} {
		t.Run(fmt.Sprintf("refused %.20q", q), func(t *testing.T) {
			code, body := b.search(t, tok, q, "")
			require.Equal(t, http.StatusBadRequest, code, "%q", q)
			require.Equal(t, "q", body["error"].(map[string]any)["field"])
		})
	}
	code, _ = b.search(t, tok, "x", "&cursor=bogus")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = b.search(t, tok, "x", "&conversation_id=nope")
	require.Equal(t, http.StatusBadRequest, code)
}
