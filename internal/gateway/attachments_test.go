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

	resp, err := http.NewRequest(http.MethodGet, url+"/"+id, nil)
	require.NoError(t, err)
	resp.Header.Set("Authorization", "Bearer "+aliceTok)
	got, err := http.DefaultClient.Do(resp)
	require.NoError(t, err)
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	require.Equal(t, "hello file", string(body))
	code, _ = do(t, http.MethodGet, url+"/"+id, bobTok, nil)
	require.Equal(t, http.StatusNotFound, code, "only the owner")

	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 32)...)
	cases := []struct {
		ct     string
		body   []byte
		status int
		code   string
	}{
		{"application/x-msdownload", []byte("MZ..."), 415, "unsupported_type"},
		{"image/png", []byte("not a png at all"), 415, "type_mismatch"},
		{"text/plain", []byte(strings.Repeat("x", 65<<10)), 413, "too_large"},
		{"text/plain", nil, 400, "empty"},
	}
	for _, tc := range cases {
		code, res := upload(t, url, aliceTok, tc.ct, tc.body)
		require.Equal(t, tc.status, code, "%s: %v", tc.ct, res)
		require.Equal(t, tc.code, res["error"].(map[string]any)["code"])
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
