package adminapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func (b *bundle) post(t *testing.T, path, token, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	b.serve(t, rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// An operator switches a conversation to encrypted (flag and job in one
// transaction) and asks for an export; bad input and viewers write
// nothing.
func TestEncryptAndExportRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	conv := uuid.New()
	b.exec(t, `INSERT INTO conversations (id) VALUES ($1)`, conv)
	jobsOf := func(op string) int {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'encrypt-decrypt' AND args->>'operation' = $1`, op)
	}

	code, body := b.post(t, "/conversations/"+conv.String()+"/encrypt", operatorToken, "")
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, "encrypt", body["operation"])
	require.NotZero(t, body["job_id"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM conversations WHERE id = $1 AND encrypted`, conv))
	require.Equal(t, 1, jobsOf("encrypt"))
	require.Contains(t, b.audit.String(), `"action":"encrypt"`)

	requester := uuid.New()
	code, body = b.post(t, "/conversations/"+conv.String()+"/export", operatorToken, `{"requested_by":"`+requester.String()+`"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'encrypt-decrypt' AND args->>'operation' = 'decrypt' AND args->>'requested_by' = $1`, requester.String()))

	cases := []struct {
		name, path, token, body string
		status                  int
		code, field             string
	}{
		{"viewer encrypt", "/conversations/" + conv.String() + "/encrypt", viewerToken, "", http.StatusForbidden, "forbidden", ""},
		{"viewer export", "/conversations/" + conv.String() + "/export", viewerToken, `{"requested_by":"` + requester.String() + `"}`, http.StatusForbidden, "forbidden", ""},
		{"bad id", "/conversations/nope/encrypt", operatorToken, "", http.StatusBadRequest, "invalid_field", "id"},
		{"unknown conversation", "/conversations/" + uuid.NewString() + "/encrypt", operatorToken, "", http.StatusNotFound, "conversation_not_found", ""},
		{"export of unknown conversation", "/conversations/" + uuid.NewString() + "/export", operatorToken, `{"requested_by":"` + requester.String() + `"}`, http.StatusNotFound, "conversation_not_found", ""},
		{"export without requester", "/conversations/" + conv.String() + "/export", operatorToken, `{}`, http.StatusBadRequest, "invalid_field", "requested_by"},
		{"export with unknown field", "/conversations/" + conv.String() + "/export", operatorToken, `{"requested_by":"` + requester.String() + `","path":"/etc"}`, http.StatusBadRequest, "invalid_field", "path"},
		{"export with bad JSON", "/conversations/" + conv.String() + "/export", operatorToken, `{"requested_by":`, http.StatusBadRequest, "bad_json", ""},
		{"export body too large", "/conversations/" + conv.String() + "/export", operatorToken, `{"requested_by":"` + strings.Repeat("a", 70<<10) + `"}`, http.StatusRequestEntityTooLarge, "body_too_large", ""},
	}
	// Not parallel: the counts of jobs below need every case done.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := b.post(t, tc.path, tc.token, tc.body)
			require.Equal(t, tc.status, code, "%v", body)
			e, _ := body["error"].(map[string]any)
			require.Equal(t, tc.code, e["code"])
			if tc.field != "" {
				require.Equal(t, tc.field, e["field"])
			}
		})
	}
	require.Equal(t, 1, jobsOf("encrypt"), "refused requests enqueue nothing")
	require.Equal(t, 1, jobsOf("decrypt"), "refused requests enqueue nothing")
}
