package adminapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/api/apitest"
	"github.com/msgrunner/msgrunner/internal/adminapi"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/jobs"
)

const (
	operatorToken = "operator-token-0123456789"
	viewerToken   = "viewer-token-0123456789"
)

type bundle struct {
	pool   *pgxpool.Pool
	server *adminapi.Server
	audit  *strings.Builder
}

func setup(t *testing.T, edit func(*adminapi.Config)) *bundle {
	t.Helper()
	pool := dbtest.Pool(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	audit := &strings.Builder{}
	cfg := adminapi.Config{
		Addr: "127.0.0.1:0", OperatorToken: operatorToken, ViewerToken: viewerToken,
		Queues: []string{jobs.QueueMessageDelivery, jobs.QueueMessageNotification},
		Logger: slog.New(slog.NewJSONHandler(&syncWriter{b: audit}, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := adminapi.New(pool, client, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, srv.Start(ctx, false))
	t.Cleanup(func() { cancel(); _ = srv.Shutdown(context.Background()) })
	return &bundle{pool: pool, server: srv, audit: audit}
}

// syncWriter lets the server's goroutines log into one builder.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (b *bundle) do(t *testing.T, method, path, token string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	b.serve(t, rec, req)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

// job inserts a real River job in queue and moves it to state.
func (b *bundle) job(t *testing.T, queue, state string) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	require.NoError(t, b.pool.QueryRow(ctx, `
		INSERT INTO river_job (kind, queue, args, max_attempts, priority, state, attempt, attempted_at, scheduled_at, finalized_at, errors)
		VALUES ('send-message', $1, jsonb_build_object('message_id', gen_random_uuid()), 5, 2, $2::river_job_state,
			CASE WHEN $2 IN ('available', 'scheduled') THEN 0 ELSE 5 END,
			CASE WHEN $2 IN ('available', 'scheduled') THEN NULL ELSE now() END,
			CASE WHEN $2 IN ('scheduled', 'retryable') THEN now() + interval '1 hour' ELSE now() END,
			CASE WHEN $2 IN ('completed', 'discarded', 'cancelled') THEN now() ELSE NULL END,
			CASE WHEN $2 IN ('discarded', 'retryable') THEN ARRAY[jsonb_build_object('at', now(), 'attempt', 5, 'error', 'provider said no', 'trace', '')] ELSE NULL END)
		RETURNING id`, queue, state).Scan(&id))
	return id
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

func (b *bundle) state(t *testing.T, id int64) string {
	t.Helper()
	var s string
	err := b.pool.QueryRow(context.Background(), `SELECT state::text FROM river_job WHERE id = $1`, id).Scan(&s)
	if err == pgx.ErrNoRows {
		return "gone"
	}
	require.NoError(t, err)
	return s
}

// The oldest waiting job's age per queue is a gauge, for alerts on a
// backlog that stopped moving.
func TestOldestWaitingAgeIsExported(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.exec(t, `INSERT INTO river_job (kind, queue, args, max_attempts, state, scheduled_at)
		VALUES ('send-message', 'slow-q', '{}', 1, 'available', now() - interval '90 seconds'),
		       ('send-message', 'slow-q', '{}', 1, 'available', now() - interval '10 seconds'),
		       ('send-message', 'slow-q', '{}', 1, 'scheduled', now() - interval '900 seconds')`)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	rec := httptest.NewRecorder()
	b.serve(t, rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	m := regexp.MustCompile(`msgrunner_queue_oldest_waiting_seconds\{queue="slow-q"\} ([0-9.e+]+)`).FindStringSubmatch(rec.Body.String())
	require.NotNil(t, m, rec.Body.String())
	age, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	require.InDelta(t, 95, age, 15, "the oldest available job, not the scheduled one")
}

func TestQueueMetricsMatchAHandCount(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	want := map[string]int{"available": 3, "running": 2, "completed": 4, "discarded": 2, "scheduled": 1, "retryable": 2, "cancelled": 1}
	for state, n := range want {
		for range n {
			b.job(t, jobs.QueueMessageDelivery, state)
		}
	}
	b.job(t, "paused-q", "available")
	b.job(t, "paused-q", "available")
	b.exec(t, `INSERT INTO river_queue (name, created_at, metadata, paused_at, updated_at) VALUES ('paused-q', now(), '{}', now(), now())`)

	code, body := b.do(t, http.MethodGet, "/queue/metrics", viewerToken)
	require.Equal(t, http.StatusOK, code, body)
	q := body["queues"].(map[string]any)
	d := q[jobs.QueueMessageDelivery].(map[string]any)
	require.EqualValues(t, 3, d["waiting"])
	require.EqualValues(t, 2, d["active"])
	require.EqualValues(t, 4, d["completed"])
	require.EqualValues(t, 2, d["failed"])
	require.EqualValues(t, 3, d["delayed"], "scheduled + retryable")
	require.EqualValues(t, 0, d["paused"])
	require.EqualValues(t, 1, d["cancelled"])
	p := q["paused-q"].(map[string]any)
	require.EqualValues(t, 0, p["waiting"])
	require.EqualValues(t, 2, p["paused"])
	n := q[jobs.QueueMessageNotification].(map[string]any)
	require.EqualValues(t, 0, n["waiting"], "configured queues appear even when empty")
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	rec := httptest.NewRecorder()
	b.serve(t, rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `msgrunner_queue_jobs{queue="message-delivery",state="failed"} 2`)
	require.Contains(t, rec.Body.String(), `msgrunner_queue_jobs{queue="paused-q",state="paused"} 2`)
	require.Contains(t, rec.Body.String(), `msgrunner_queue_metrics_up 1`)
	require.Contains(t, rec.Body.String(), `msgrunner_queue_oldest_waiting_seconds{queue="message-notification"} 0`, "none waits")
	require.Contains(t, rec.Body.String(), `msgrunner_queue_oldest_waiting_seconds{queue="paused-q"} 0`+"\n", "a paused queue's jobs are not waiting")

	totals := body["totals"].(map[string]any)
	require.EqualValues(t, 3, totals["waiting"])
	require.EqualValues(t, 2, totals["paused"])
	require.NotEmpty(t, body["timestamp"])
}

func TestHealthThresholdsFlipTheStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	q := jobs.QueueMessageDelivery
	status := func() (string, map[string]any) {
		code, body := b.do(t, http.MethodGet, "/queue/health/"+q, viewerToken)
		if body["status"] == "unhealthy" {
			require.Equal(t, http.StatusServiceUnavailable, code, "unhealthy answers 503: %v", body)
		} else {
			require.Equal(t, http.StatusOK, code, body)
		}
		return body["status"].(string), body
	}
	for range 19 {
		b.job(t, q, "completed")
	}
	s, body := status()
	require.Equal(t, "healthy", s)
	require.EqualValues(t, 0, body["failure_rate"])

	b.job(t, q, "discarded") // 1 of 20 = 5%
	s, body = status()
	require.Equal(t, "degraded", s)
	require.InDelta(t, 0.05, body["failure_rate"], 1e-9)

	for range 4 {
		b.job(t, q, "discarded") // 5 of 24 > 20%
	}
	s, _ = status()
	require.Equal(t, "unhealthy", s)

	// Failures older than the window no longer count.
	b.exec(t, `UPDATE river_job SET finalized_at = now() - interval '2 hours' WHERE state = 'discarded'`)
	s, _ = status()
	require.Equal(t, "healthy", s)

	// A job waiting for 2 minutes degrades, for 10 unhealthies.
	id := b.job(t, q, "available")
	b.exec(t, `UPDATE river_job SET scheduled_at = now() - interval '2 minutes' WHERE id = $1`, id)
	s, body = status()
	require.Equal(t, "degraded", s)
	require.EqualValues(t, 1, body["waiting"])
	require.InDelta(t, 120, body["oldest_waiting_age_seconds"], 5)
	b.exec(t, `UPDATE river_job SET scheduled_at = now() - interval '10 minutes' WHERE id = $1`, id)
	s, _ = status()
	require.Equal(t, "unhealthy", s)

	code, all := b.do(t, http.MethodGet, "/queue/health", viewerToken)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "unhealthy", all["status"], "the worst queue's status")
	require.Equal(t, "healthy", all["queues"].(map[string]any)[jobs.QueueMessageNotification].(map[string]any)["status"])

	code, _ = b.do(t, http.MethodGet, "/queue/health/no-such-queue", viewerToken)
	require.Equal(t, http.StatusNotFound, code)
}

func TestFailedJobsPaginateNewestFirstWithoutGapsOrRepeats(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	q := jobs.QueueMessageDelivery
	var ids []int64
	for i := range 25 {
		id := b.job(t, q, "discarded")
		b.exec(t, `UPDATE river_job SET finalized_at = now() - make_interval(secs => $2) WHERE id = $1`, id, 100-i)
		ids = append(ids, id)
	}
	b.job(t, q, "completed")
	b.job(t, jobs.QueueMessageNotification, "discarded")

	var got []int64
	cursor := ""
	for page := 0; ; page++ {
		path := "/queue/" + q + "/failed?limit=10"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		code, body := b.do(t, http.MethodGet, path, viewerToken)
		require.Equal(t, http.StatusOK, code, body)
		for _, j := range body["jobs"].([]any) {
			jm := j.(map[string]any)
			got = append(got, int64(jm["id"].(float64)))
			require.Equal(t, "discarded", jm["state"])
			errs := jm["errors"].([]any)
			require.Equal(t, "provider said no", errs[0].(map[string]any)["error"])
			require.EqualValues(t, 5, jm["attempt"])
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
		require.Less(t, page, 5)
	}
	want := make([]int64, len(ids))
	for i, id := range ids {
		want[len(ids)-1-i] = id // newest first
	}
	require.Equal(t, want, got)

	code, body := b.do(t, http.MethodGet, "/queue/"+q+"/failed?kind=index-message", viewerToken)
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, body["jobs"])
	code, body = b.do(t, http.MethodGet, "/queue/"+q+"/failed?cursor=garbage", viewerToken)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "cursor", body["error"].(map[string]any)["field"])
	code, _ = b.do(t, http.MethodGet, "/queue/nope/failed", viewerToken)
	require.Equal(t, http.StatusNotFound, code)
}

func TestJobAndQueueActionsChangeRiversRows(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	q := jobs.QueueMessageDelivery
	failed := b.job(t, q, "discarded")
	waiting := b.job(t, q, "available")
	running := b.job(t, q, "running")
	done := b.job(t, q, "completed")

	code, body := b.do(t, http.MethodPost, fmt.Sprintf("/jobs/%d/retry", failed), operatorToken)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "available", b.state(t, failed))

	code, _ = b.do(t, http.MethodPost, fmt.Sprintf("/jobs/%d/cancel", waiting), operatorToken)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "cancelled", b.state(t, waiting))

	code, body = b.do(t, http.MethodDelete, fmt.Sprintf("/jobs/%d", running), operatorToken)
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, "job_running", body["error"].(map[string]any)["code"])
	require.Equal(t, "running", b.state(t, running))

	code, _ = b.do(t, http.MethodDelete, fmt.Sprintf("/jobs/%d", done), operatorToken)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "gone", b.state(t, done))

	for _, p := range []string{"/jobs/999999/retry", "/jobs/999999/cancel"} {
		t.Run("unknown job "+p, func(t *testing.T) {
			code, body := b.do(t, http.MethodPost, p, operatorToken)
			require.Equal(t, http.StatusNotFound, code)
			require.Equal(t, "job_not_found", body["error"].(map[string]any)["code"])
		})
	}
	code, _ = b.do(t, http.MethodPost, "/jobs/abc/retry", operatorToken)
	require.Equal(t, http.StatusBadRequest, code)
	code, body = b.do(t, http.MethodGet, fmt.Sprintf("/jobs/%d", failed), viewerToken)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "send-message", body["kind"])

	// Pause and resume a queue River knows.
	b.exec(t, `INSERT INTO river_queue (name, created_at, metadata, updated_at) VALUES ($1, now(), '{}', now())`, q)
	code, _ = b.do(t, http.MethodPost, "/queue/"+q+"/pause", operatorToken)
	require.Equal(t, http.StatusOK, code)
	var paused bool
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT paused_at IS NOT NULL FROM river_queue WHERE name = $1`, q).Scan(&paused))
	require.True(t, paused)
	code, _ = b.do(t, http.MethodPost, "/queue/"+q+"/resume", operatorToken)
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT paused_at IS NOT NULL FROM river_queue WHERE name = $1`, q).Scan(&paused))
	require.False(t, paused)
	code, _ = b.do(t, http.MethodPost, "/queue/never-seen/pause", operatorToken)
	require.Equal(t, http.StatusNotFound, code)

	// Each mutation left an audit line naming who, what and which.
	log := b.audit.String()
	for _, want := range []string{`"action":"retry"`, `"action":"cancel"`, `"action":"delete"`, `"action":"pause"`, `"action":"resume"`} {
		require.Contains(t, log, want)
	}
	require.Contains(t, log, fmt.Sprintf(`"job_id":%d`, failed))
	require.Contains(t, log, `"role":"operator"`)
}

func TestRetryFailedInBulk(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	q := jobs.QueueMessageDelivery
	for range 7 {
		b.job(t, q, "discarded")
	}
	other := b.job(t, q, "discarded")
	b.exec(t, `UPDATE river_job SET kind = 'delivery-confirmation' WHERE id = $1`, other)

	code, body := b.do(t, http.MethodPost, "/queue/"+q+"/retry-failed?kind=send-message&limit=5", operatorToken)
	require.Equal(t, http.StatusOK, code, body)
	require.EqualValues(t, 5, body["retried"])
	code, body = b.do(t, http.MethodPost, "/queue/"+q+"/retry-failed?kind=send-message", operatorToken)
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 2, body["retried"])
	require.Equal(t, "discarded", b.state(t, other), "the kind filter held")
	code, _ = b.do(t, http.MethodPost, "/queue/"+q+"/retry-failed?limit=0", operatorToken)
	require.Equal(t, http.StatusBadRequest, code)
}

func TestEveryRouteIsGuarded(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	id := b.job(t, jobs.QueueMessageDelivery, "discarded")
	type route struct {
		method, path string
		mutates      bool
	}
	// The discarded job makes its queue unhealthy: health answers 503.
	unhealthy := map[string]bool{"/queue/health": true, "/queue/health/" + jobs.QueueMessageDelivery: true}
	routes := []route{
		{http.MethodGet, "/queue/metrics", false},
		{http.MethodGet, "/queue/health", false},
		{http.MethodGet, "/queue/health/" + jobs.QueueMessageDelivery, false},
		{http.MethodGet, "/queue/" + jobs.QueueMessageDelivery + "/failed", false},
		{http.MethodGet, fmt.Sprintf("/jobs/%d", id), false},
		{http.MethodGet, "/river/", false},
		{http.MethodGet, "/reports", false},
		{http.MethodGet, "/reports/delivery", false},
		{http.MethodGet, "/metrics", false},
		{http.MethodGet, "/river/api/jobs?state=discarded", false},
		{http.MethodPost, fmt.Sprintf("/jobs/%d/retry", id), true},
		{http.MethodPost, fmt.Sprintf("/jobs/%d/cancel", id), true},
		{http.MethodDelete, fmt.Sprintf("/jobs/%d", 424242), true},
		{http.MethodPost, "/queue/" + jobs.QueueMessageDelivery + "/retry-failed", true},
		{http.MethodPost, "/queue/" + jobs.QueueMessageDelivery + "/pause", true},
		{http.MethodPost, "/queue/" + jobs.QueueMessageDelivery + "/resume", true},
		{http.MethodPost, "/river/api/jobs/retry", true},
	}
	// In order: the operator's calls change the job the next routes see.
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			for _, tok := range []string{"", "wrong-token-0123456789"} {
				code, _ := b.do(t, r.method, r.path, tok)
				require.Equal(t, http.StatusUnauthorized, code, "with %q", tok)
			}
			code, _ := b.do(t, r.method, r.path, viewerToken)
			switch {
			case r.mutates:
				require.Equal(t, http.StatusForbidden, code, "viewer")
			case unhealthy[r.path]:
				require.Equal(t, http.StatusServiceUnavailable, code, "viewer")
			default:
				require.Equal(t, http.StatusOK, code, "viewer")
			}
			code, _ = b.do(t, r.method, r.path, operatorToken)
			require.NotEqual(t, http.StatusUnauthorized, code, "operator")
			require.NotEqual(t, http.StatusForbidden, code, "operator")
		})
	}

	code, _ := b.do(t, http.MethodGet, "/healthz", "")
	require.Equal(t, http.StatusOK, code, "health needs no token")

	// A cross-site form post riding on a browser's cached basic auth is
	// refused; the same post from the server's own pages, or with a bearer
	// token, is not.
	for _, tc := range []struct{ name, header, value string }{
		{"cross-site fetch", "Sec-Fetch-Site", "cross-site"},
		{"foreign origin", "Origin", "https://evil.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/jobs/%d/retry", id), nil)
			req.SetBasicAuth("ops", operatorToken)
			req.Header.Set(tc.header, tc.value)
			rec := httptest.NewRecorder()
			b.serve(t, rec, req)
			require.Equal(t, http.StatusForbidden, rec.Code)
			require.Contains(t, rec.Body.String(), "cross_site")
		})
	}
	req0 := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/jobs/%d/retry", id), nil)
	req0.SetBasicAuth("ops", operatorToken)
	req0.Header.Set("Sec-Fetch-Site", "same-origin")
	rec0 := httptest.NewRecorder()
	b.serve(t, rec0, req0)
	require.Equal(t, http.StatusOK, rec0.Code)

	// Browsers: basic auth with the token as password.
	req := httptest.NewRequest(http.MethodGet, "/queue/metrics", nil)
	req.SetBasicAuth("alice", viewerToken)
	rec := httptest.NewRecorder()
	b.serve(t, rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	req = httptest.NewRequest(http.MethodGet, "/river/", nil)
	rec = httptest.NewRecorder()
	b.serve(t, rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Basic")
}

func TestStartRequiresATokenUnlessInsecureDev(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = adminapi.New(pool, client, adminapi.Config{Addr: ":0", Logger: logger})
	require.ErrorIs(t, err, adminapi.ErrNoToken)

	var logs strings.Builder
	srv, err := adminapi.New(pool, client, adminapi.Config{Addr: ":0", InsecureDev: true, Logger: slog.New(slog.NewTextHandler(&syncWriter{b: &logs}, nil))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, srv.Start(ctx, false))
	defer srv.Shutdown(context.Background()) //nolint:errcheck
	require.Contains(t, logs.String(), "ADMIN SERVER IS OPEN")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/jobs/1/retry", nil))
	require.Equal(t, http.StatusNotFound, rec.Code, "served as an operator: the job is simply unknown")
}

func TestReportsPageAndJSON(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.exec(t, `INSERT INTO conversations (id, last_seq) VALUES ('00000000-0000-4000-8000-0000000000c1', 1)`)
	b.exec(t, `INSERT INTO messages (id, conversation_id, sender_id, recipient_id, seq, content, status, created_at, sent_at)
		VALUES (gen_random_uuid(), '00000000-0000-4000-8000-0000000000c1', gen_random_uuid(), gen_random_uuid(), 1, 'x', 'sent', now() - interval '1 hour', now() - interval '1 hour')`)
	b.job(t, jobs.QueueMessageDelivery, "discarded")

	req := httptest.NewRequest(http.MethodGet, "/reports", nil)
	req.SetBasicAuth("ops", viewerToken)
	rec := httptest.NewRecorder()
	b.serve(t, rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	page := rec.Body.String()
	require.Contains(t, page, "<svg")
	for _, title := range []string{"Delivery funnel", "Jobs per kind", "Most frequent job errors", "Notifications by channel", "Broadcasts"} {
		require.Contains(t, page, title)
	}
	require.Contains(t, page, "provider said no")
	require.NotContains(t, page, "cdn", "no external assets")

	code, body := b.do(t, http.MethodGet, "/reports/failures", viewerToken)
	require.Equal(t, http.StatusOK, code, body)
	rows := body["rows"].([]any)
	require.Len(t, rows, 1)
	require.Equal(t, "provider said no", rows[0].(map[string]any)["error"])
	code, body = b.do(t, http.MethodGet, "/reports/delivery?interval=30m", viewerToken)
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 1800, body["interval_seconds"])

	code, _ = b.do(t, http.MethodGet, "/reports/everything", viewerToken)
	require.Equal(t, http.StatusNotFound, code)
	code, body = b.do(t, http.MethodGet, "/reports/delivery?from=yesterday", viewerToken)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "from", body["error"].(map[string]any)["field"])
}

// A queue holding jobs that River has not recorded (no runner works it) is
// in the metrics, the health report and the per-queue routes, instead of
// being a 404: it is the queue most in need of attention.
func TestQueueWithJobsButNoRunnerIsReported(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.job(t, "orphan-queue", "available")
	id := b.job(t, "orphan-queue", "discarded")
	b.exec(t, `UPDATE river_job SET scheduled_at = now() - interval '10 minutes' WHERE state = 'available'`)

	code, body := b.do(t, http.MethodGet, "/queue/metrics", viewerToken)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body["queues"], "orphan-queue")

	code, body = b.do(t, http.MethodGet, "/queue/health", viewerToken)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	orphan := body["queues"].(map[string]any)["orphan-queue"].(map[string]any)
	require.Equal(t, "unhealthy", orphan["status"], "a job waiting 10 minutes")
	require.Equal(t, "unhealthy", body["status"])

	code, body = b.do(t, http.MethodGet, "/queue/health/orphan-queue", viewerToken)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	code, body = b.do(t, http.MethodGet, "/queue/orphan-queue/failed", viewerToken)
	require.Equal(t, http.StatusOK, code, body)
	require.Len(t, body["jobs"], 1)
	require.EqualValues(t, id, body["jobs"].([]any)[0].(map[string]any)["id"])

	code, _ = b.do(t, http.MethodGet, "/queue/health/no-such-queue", viewerToken)
	require.Equal(t, http.StatusNotFound, code)
}

// The periodic sweeps do not dilute a queue's failure rate: a queue is
// judged by its worst real kind, and a sweep by whether it still
// completes.
func TestHealthJudgesTheWorstKindAndStaleSweeps(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	q := jobs.QueueMessageIndexing
	health := func() (int, map[string]any) {
		code, body := b.do(t, http.MethodGet, "/queue/health/"+q, viewerToken)
		return code, body
	}
	// A sweep that completes every second, and one failed index-message.
	for range 100 {
		id := b.job(t, q, "completed")
		b.exec(t, `UPDATE river_job SET kind = $2 WHERE id = $1`, id, jobs.KindIndexPending)
	}
	failed := b.job(t, q, "discarded")
	b.exec(t, `UPDATE river_job SET kind = $2 WHERE id = $1`, failed, jobs.KindIndexMessage)

	code, body := health()
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Equal(t, "unhealthy", body["status"])
	require.EqualValues(t, 1, body["failure_rate"], "one failed index-message out of one, not 1 of 101")
	kinds := body["kinds"].(map[string]any)
	require.Equal(t, true, kinds[jobs.KindIndexPending].(map[string]any)["periodic"])
	require.EqualValues(t, 100, kinds[jobs.KindIndexPending].(map[string]any)["completed"])
	require.EqualValues(t, 1, kinds[jobs.KindIndexMessage].(map[string]any)["failed"])
	require.Empty(t, body["stale_sweeps"])

	// The failure is fixed (older than the window); then the sweep stops
	// completing for more than three of its 1 s intervals: degraded.
	b.exec(t, `UPDATE river_job SET finalized_at = now() - interval '2 hours' WHERE id = $1`, failed)
	code, body = health()
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "healthy", body["status"])
	b.exec(t, `UPDATE river_job SET finalized_at = now() - interval '10 seconds' WHERE kind = $1`, jobs.KindIndexPending)
	code, body = health()
	require.Equal(t, http.StatusOK, code, "degraded is still 200")
	require.Equal(t, "degraded", body["status"])
	require.Equal(t, []any{jobs.KindIndexPending}, body["stale_sweeps"])
}

// A paused queue's jobs are paused, not waiting, and their age is not
// held against it.
func TestPausedQueueHealthCountsPausedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for range 2 {
		id := b.job(t, "paused-q", "available")
		b.exec(t, `UPDATE river_job SET scheduled_at = now() - interval '10 minutes' WHERE id = $1`, id)
	}
	code, body := b.do(t, http.MethodGet, "/queue/health/paused-q", viewerToken)
	require.Equal(t, http.StatusServiceUnavailable, code, "waiting 10 minutes while the queue runs: %v", body)

	b.exec(t, `INSERT INTO river_queue (name, created_at, metadata, paused_at, updated_at) VALUES ('paused-q', now(), '{}', now(), now())`)
	code, body = b.do(t, http.MethodGet, "/queue/health/paused-q", viewerToken)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "healthy", body["status"])
	require.EqualValues(t, 0, body["waiting"])
	require.EqualValues(t, 2, body["paused"])
	require.EqualValues(t, 0, body["oldest_waiting_age_seconds"])
}

// serve runs req through the server into rec and checks the answer against
// api/admin.yaml.
func (b *bundle) serve(t *testing.T, rec *httptest.ResponseRecorder, req *http.Request) {
	t.Helper()
	b.server.Handler().ServeHTTP(rec, req)
	apitest.Admin(t).Response(t, req, rec.Result(), rec.Body.Bytes())
}

// TestRoutesMatchTheDocument: every route the admin server serves is in
// api/admin.yaml and every operation there is served. River UI is mounted
// under /river for every method; the document describes its entry page.
func TestRoutesMatchTheDocument(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	e, ok := b.server.Handler().(*echo.Echo)
	require.True(t, ok)
	skip := []string{"* /river/*"}
	for _, m := range []string{"CONNECT", "DELETE", "HEAD", "OPTIONS", "PATCH", "POST", "PROPFIND", "PUT", "REPORT", "TRACE"} {
		skip = append(skip, m+" /river")
	}
	apitest.Admin(t).CheckRoutes(t, e, skip...)
}

// TestOpenAPIDocumentIsServed: GET /openapi.json answers the document to
// anyone.
func TestOpenAPIDocumentIsServed(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	status, doc := b.do(t, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "3.1.0", doc["openapi"])
	require.Contains(t, doc["paths"], "/queue/health")
}

// A running long job's progress record shows on GET /jobs/:id.
func TestJobShowsItsProgress(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	id := b.job(t, jobs.QueueBatchMessageSending, "running")
	b.exec(t, `UPDATE river_job SET metadata = '{"progress":{"percentage":30,"step":"chunk","totalSteps":10,"currentStep":3}}' WHERE id = $1`, id)
	code, body := b.do(t, http.MethodGet, "/jobs/"+strconv.FormatInt(id, 10), viewerToken)
	require.Equal(t, http.StatusOK, code, body)
	p := body["progress"].(map[string]any)
	require.EqualValues(t, 30, p["percentage"])
	require.EqualValues(t, 3, p["currentStep"])

	other := b.job(t, jobs.QueueBatchMessageSending, "running")
	_, body = b.do(t, http.MethodGet, "/jobs/"+strconv.FormatInt(other, 10), viewerToken)
	require.NotContains(t, body, "progress", "a job without a record shows none")
}
