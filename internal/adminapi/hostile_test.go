package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/jobs"
)

// riverFingerprint sums up every row the admin API's mutations can
// touch: jobs, queues and conversations (encrypt flips a flag on them).
func (b *bundle) riverFingerprint(t *testing.T) string {
	t.Helper()
	var jobsSum, queues, convs *string
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT md5(string_agg(id::text || state::text || attempt::text || coalesce(finalized_at::text, ''), ',' ORDER BY id)) FROM river_job`).Scan(&jobsSum))
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT md5(string_agg(name || coalesce(paused_at::text, ''), ',' ORDER BY name)) FROM river_queue`).Scan(&queues))
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM conversations c`).Scan(&convs))
	s := func(p *string) string {
		if p == nil {
			return "<empty>"
		}
		return *p
	}
	return s(jobsSum) + "/" + s(queues) + "/" + s(convs)
}

func TestHostileInputToMutatingAdminRoutesIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	q := jobs.QueueMessageDelivery
	failed := b.job(t, q, "discarded")
	b.job(t, q, "available")
	b.exec(t, `INSERT INTO river_queue (name, created_at, metadata, updated_at) VALUES ($1, now(), '{}', now())`, q)
	conv := uuid.New()
	b.exec(t, `INSERT INTO conversations (id) VALUES ($1)`, conv)
	before := b.riverFingerprint(t)

	type hostile struct {
		method, path string
		body         []byte
		status       int
		code, field  string
	}
	var cases []hostile
	for _, name := range []string{"%00", "a%00b", "%ff%fe", "x%27%3B%20DROP%20TABLE%20river_job%3B--", "..%2f..%2fetc%2fpasswd",
		"..", strings.Repeat("q", 10_000), "message-delivery%00"} {
		for _, action := range []string{"pause", "resume", "retry-failed"} {
			cases = append(cases, hostile{http.MethodPost, "/queue/" + name + "/" + action, nil, 404, "queue_not_found", ""})
		}
	}
	for _, v := range []string{"-1", "0", "1e309", "9223372036854775808", "1%3B--", "%00"} {
		cases = append(cases, hostile{http.MethodPost, "/queue/" + q + "/retry-failed?limit=" + v, nil, 400, "invalid_field", "limit"})
	}
	for _, kind := range []string{"%00", "send-message%00", "%ff", strings.Repeat("k", 300)} {
		cases = append(cases, hostile{http.MethodPost, "/queue/" + q + "/retry-failed?kind=" + kind, nil, 400, "invalid_field", "kind"})
	}
	for _, id := range []string{"-1", "0", "9223372036854775808", "1e309", "1%3B%20DELETE%20FROM%20river_job", "%00", "..%2f1", "0x10"} {
		cases = append(cases,
			hostile{http.MethodPost, "/jobs/" + id + "/retry", nil, 400, "invalid_field", "id"},
			hostile{http.MethodPost, "/jobs/" + id + "/cancel", nil, 400, "invalid_field", "id"},
			hostile{http.MethodDelete, "/jobs/" + id, nil, 400, "invalid_field", "id"})
	}
	for _, id := range []string{"%00", "%ff", "..%2f..%2fetc%2fpasswd", "1%27%3B--", "00000000-0000-0000-0000-000000000000", strings.Repeat("c", 10_000)} {
		cases = append(cases,
			hostile{http.MethodPost, "/conversations/" + id + "/encrypt", nil, 400, "invalid_field", "id"},
			hostile{http.MethodPost, "/conversations/" + id + "/export", []byte(`{"requested_by":"` + uuid.NewString() + `"}`), 400, "invalid_field", "id"})
	}
	export := "/conversations/" + conv.String() + "/export"
	cases = append(cases,
		hostile{http.MethodPost, export, bytes.Repeat([]byte("x"), 10<<20), 413, "body_too_large", ""},
		hostile{http.MethodPost, export, bytes.Repeat([]byte("["), 100_000), 413, "body_too_large", ""},
		hostile{http.MethodPost, export, []byte(strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000)), 400, "bad_json", ""},
		hostile{http.MethodPost, export, []byte("{\"requested_by\":\"\xff\"}"), 400, "bad_json", ""},
		hostile{http.MethodPost, export, []byte(`{"requested_by":"\u0000"}`), 400, "invalid_field", "requested_by"},
		hostile{http.MethodPost, export, []byte(`{"requested_by":"'; DROP TABLE river_job; --"}`), 400, "invalid_field", "requested_by"},
		hostile{http.MethodPost, export, []byte(`{"requested_by":1e309}`), 400, "invalid_field", "requested_by"},
		hostile{http.MethodPost, export, []byte(`{"requested_by":"` + uuid.NewString() + `","path":"../../etc/passwd"}`), 400, "invalid_field", "path"},
		hostile{http.MethodPost, export, []byte(`[]`), 400, "bad_json", ""},
	)
	// Bodies are not read by these routes: a 10 MB or malformed one
	// changes nothing about the answer.
	tenMB := bytes.Repeat([]byte("["), 10<<20)
	cases = append(cases,
		hostile{http.MethodPost, "/queue/nope/pause", tenMB, 404, "queue_not_found", ""},
		hostile{http.MethodPost, "/jobs/9223372036854775807/retry", tenMB, 404, "job_not_found", ""},
	)

	// In order, not parallel: the fingerprint below needs every case done.
	for _, tc := range cases {
		name := tc.method + " " + tc.path
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, bytes.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+operatorToken)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			b.serve(t, rec, req)
			var body map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), "%.200s", rec.Body.String())
			require.Equal(t, tc.status, rec.Code, "%v", body)
			e, _ := body["error"].(map[string]any)
			require.NotNil(t, e, "%v", body)
			require.Equal(t, tc.code, e["code"], "%v", e)
			require.NotEmpty(t, e["message"])
			if tc.field != "" {
				require.Equal(t, tc.field, e["field"], "%v", e)
			}
		})
	}
	require.Equal(t, before, b.riverFingerprint(t), "a refused request changed a job or a queue")

	// The one route with a body wants JSON.
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; =;"} {
		t.Run("export as "+ct, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, export, strings.NewReader(`{"requested_by":"`+uuid.NewString()+`"}`))
			req.Header.Set("Authorization", "Bearer "+operatorToken)
			req.Header.Set("Content-Type", ct)
			rec := httptest.NewRecorder()
			b.serve(t, rec, req)
			require.Equal(t, http.StatusUnsupportedMediaType, rec.Code, "%s", rec.Body.String())
			require.Contains(t, rec.Body.String(), `"unsupported_type"`)
			require.Contains(t, rec.Body.String(), `"field":"Content-Type"`)
		})
	}
	require.Equal(t, before, b.riverFingerprint(t), "a refused export enqueued a job")

	// SQL in a filter is only a kind nobody has.
	code, body := b.do(t, http.MethodPost, "/queue/"+q+"/retry-failed?kind=x%27%20OR%201%3D1--", operatorToken)
	require.Equal(t, http.StatusOK, code, body)
	require.EqualValues(t, 0, body["retried"])
	require.Equal(t, before, b.riverFingerprint(t))

	// Still healthy: a real retry works.
	code, body = b.do(t, http.MethodPost, "/jobs/"+strconv.FormatInt(failed, 10)+"/retry", operatorToken)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "available", b.state(t, failed))
}
