package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/gateway"
)

func upload(t *testing.T, url, token, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func TestAttachmentsAndConversationDeletion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, eve := uuid.New(), uuid.New(), uuid.New()
	aliceTok, bobTok := b.token(t, alice), b.token(t, bob)
	url := b.nodes[0].base + "/v1/attachments"

	code, res := upload(t, url, aliceTok, "text/plain; charset=utf-8", []byte("hello file"))
	require.Equal(t, http.StatusCreated, code, res)
	require.EqualValues(t, 10, res["size"])
	id := res["id"].(string)

	code, body := fetch(t, url+"/"+id, aliceTok)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "hello file", body)
	code, _ = do(t, http.MethodGet, url+"/"+id, bobTok, nil)
	require.Equal(t, http.StatusNotFound, code, "only the owner")

	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 32)...)
	cases := []struct {
		name   string
		ct     string
		body   []byte
		status int
		code   string
	}{
		{"executable", "application/x-msdownload", []byte("MZ..."), 415, "unsupported_type"},
		{"text sent as png", "image/png", []byte("not a png at all"), 415, "type_mismatch"},
		{"over the size limit", "text/plain", []byte(strings.Repeat("x", 65<<10)), 413, "too_large"},
		{"empty", "text/plain", nil, 400, "empty"},
	}
	// Not parallel: the count of attachments below needs every case done.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, res := upload(t, url, aliceTok, tc.ct, tc.body)
			require.Equal(t, tc.status, code, "%s: %v", tc.ct, res)
			require.Equal(t, tc.code, res["error"].(map[string]any)["code"])
		})
	}
	code, _ = upload(t, url, aliceTok, "image/png", png)
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM attachments`), "refused uploads wrote nothing")

	// Deleting a conversation: for one side, then for everyone.
	conv := gateway.DirectConversationID(alice, bob)
	code, _ = b.post(t, 0, aliceTok, msgBody(conv, bob, "soon gone"))
	require.Equal(t, http.StatusCreated, code)
	code, _ = do(t, http.MethodDelete, b.nodes[0].base+"/v1/conversations/"+conv.String(), b.token(t, eve), nil)
	require.Equal(t, http.StatusForbidden, code)
	code, res = do(t, http.MethodDelete, b.nodes[0].base+"/v1/conversations/"+conv.String(), aliceTok, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, false, res["deleted_for_everyone"])
	_, res = do(t, http.MethodDelete, b.nodes[0].base+"/v1/conversations/"+conv.String(), bobTok, nil)
	require.Equal(t, true, res["deleted_for_everyone"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM conversations WHERE id = $1 AND deleted_at IS NOT NULL`, conv))
	code, _ = b.post(t, 0, aliceTok, msgBody(conv, bob, "too late"))
	require.Equal(t, http.StatusForbidden, code, "no new messages into a conversation everyone deleted")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM messages WHERE conversation_id = $1`, conv))
}

// fetch GETs an attachment as token's user and returns the status and body.
func fetch(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestMessagesCarryAttachmentsToTheirRecipient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, eve := uuid.New(), uuid.New(), uuid.New()
	aliceTok, bobTok, eveTok := b.token(t, alice), b.token(t, bob), b.token(t, eve)
	base := b.nodes[0].base
	conv := gateway.DirectConversationID(alice, bob)

	code, up := upload(t, base+"/v1/attachments", aliceTok, "text/plain; charset=utf-8", []byte("the plans"))
	require.Equal(t, http.StatusCreated, code, up)
	att := up["id"].(string)
	code, _ = fetch(t, base+"/v1/attachments/"+att, bobTok)
	require.Equal(t, http.StatusNotFound, code, "not Bob's until a message carries it to him")

	bobWS := b.dial(t, 1, bobTok)
	body := msgBody(conv, bob, "see attached")
	body["attachment_ids"], body["id"] = []string{att}, uuid.NewString()
	code, res := b.post(t, 0, aliceTok, body)
	require.Equal(t, http.StatusCreated, code, res)
	msgID := res["id"].(string)
	// A retry of the same send (same id) is answered from the stored
	// message, attachments and all.
	code, again := b.post(t, 0, aliceTok, body)
	require.Equal(t, http.StatusCreated, code, again)
	require.Equal(t, msgID, again["id"])
	fr := bobWS.expect("message", func(f map[string]any) bool { return f["id"] == msgID })
	require.Equal(t, []any{map[string]any{"id": att, "content_type": "text/plain", "size": float64(9)}}, fr["attachments"])

	code, got := fetch(t, base+"/v1/attachments/"+att, bobTok)
	require.Equal(t, http.StatusOK, code, "the recipient may read it")
	require.Equal(t, "the plans", got)
	code, _ = fetch(t, base+"/v1/attachments/"+att, aliceTok)
	require.Equal(t, http.StatusOK, code, "and its owner still")
	code, _ = fetch(t, base+"/v1/attachments/"+att, eveTok)
	require.Equal(t, http.StatusNotFound, code, "nobody else")

	// History shows the attachments too.
	code, hist := do(t, http.MethodGet, base+"/v1/conversations/"+conv.String()+"/messages", bobTok, nil)
	require.Equal(t, http.StatusOK, code, hist)
	msgs := hist["messages"].([]any)
	require.Len(t, msgs, 1)
	require.Equal(t, fr["attachments"], msgs[0].(map[string]any)["attachments"])

	// An attachment goes with one message only; bad lists write nothing.
	before := b.count(t, `SELECT count(*) FROM messages WHERE conversation_id = $1`, conv)
	_, eveUp := upload(t, base+"/v1/attachments", eveTok, "text/plain", []byte("eve's"))
	for name, ids := range map[string][]string{
		"already sent":   {att},
		"someone else's": {eveUp["id"].(string)},
		"unknown":        {uuid.NewString()},
		"not an id":      {"nope"},
		"listed twice":   {up["id"].(string), up["id"].(string)},
		"more than 10":   {uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()},
	} {
		body := msgBody(conv, bob, "again")
		body["attachment_ids"] = ids
		code, res := b.post(t, 0, aliceTok, body)
		require.Equal(t, http.StatusBadRequest, code, "%s: %v", name, res)
		require.Equal(t, "attachment_ids", res["error"].(map[string]any)["field"], name)
	}
	body = msgBody(conv, bob, "later")
	body["attachment_ids"], body["delay_ms"] = []string{att}, 60000
	code, res = b.post(t, 0, aliceTok, body)
	require.Equal(t, http.StatusBadRequest, code, res)
	require.Equal(t, "attachment_ids", res["error"].(map[string]any)["field"])
	require.Equal(t, before, b.count(t, `SELECT count(*) FROM messages WHERE conversation_id = $1`, conv), "nothing was written")

	// Once the sender deletes the message, the recipient loses access.
	code, _ = do(t, http.MethodDelete, base+"/v1/messages/"+msgID, aliceTok, nil)
	require.Equal(t, http.StatusNoContent, code)
	code, _ = fetch(t, base+"/v1/attachments/"+att, bobTok)
	require.Equal(t, http.StatusNotFound, code)
}
