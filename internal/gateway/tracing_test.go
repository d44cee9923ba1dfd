package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/gateway"
)

// TestAPIRequestsAndTheirJobsAreTraced checks that with a tracer a POST is
// a server span continuing the caller's trace, that the job insert is its
// child, that the jobs carry the trace to the runner in their metadata,
// and that nothing of the request's content or query reaches a span.
func TestAPIRequestsAndTheirJobsAreTraced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: dbtest.URL(t), MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	rdb, prefix := dbtest.Redis(t)
	keys := fanout.Keys{Prefix: prefix}
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { _ = hub.Close() })
	a, err := auth.New(secret)
	require.NoError(t, err)
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	srv, err := gateway.New(pool, fanout.New(rdb, fanout.Config{Keys: keys}), hub, gateway.Config{
		Addr: "127.0.0.1:0", Auth: a, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Tracer: tp,
	})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Shutdown(ctx) })
	base := "http://" + srv.Addr()

	alice, bob := uuid.New(), uuid.New()
	tok, err := a.Mint(alice, time.Hour)
	require.NoError(t, err)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := `{"conversation_id":"` + gateway.DirectConversationID(alice, bob).String() + `","recipient_id":"` + bob.String() + `","content":"secret plans"}`
	req, err := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(raw))
	var created struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(raw, &created))

	// A search (content in the query) and an error (a bad id), then
	// requests that are not traced.
	code, _ := do(t, http.MethodGet, base+"/v1/search?q=secret+plans", tok, nil)
	require.Equal(t, http.StatusOK, code)
	code, _ = do(t, http.MethodDelete, base+"/v1/messages/not-an-id", tok, nil)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = do(t, http.MethodGet, base+"/healthz", "", nil)
	require.Equal(t, http.StatusOK, code)

	// A websocket frame that does work is a trace of its own, with the
	// job insert inside it.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(wctx, "ws://"+srv.Addr()+"/v1/ws?token="+tok, nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	require.NoError(t, ws.Write(wctx, websocket.MessageText, []byte(`{"type":"send","ref":"r1","conversation_id":"`+
		gateway.DirectConversationID(alice, bob).String()+`","recipient_id":"`+bob.String()+`","content":"more secret plans"}`)))
	for {
		_, raw, err := ws.Read(wctx)
		require.NoError(t, err)
		if strings.Contains(string(raw), `"type":"sent"`) {
			break
		}
		require.NotContains(t, string(raw), `"type":"error"`)
	}

	// The frame's span ends just after its answer is queued.
	require.Eventually(t, func() bool {
		for _, s := range spans.GetSpans() {
			if s.Name == "WS send" {
				return true
			}
		}
		return false
	}, 5*time.Second, 5*time.Millisecond, "the websocket frame's span ends")

	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		byName[s.Name] = s
		for _, kv := range s.Attributes {
			v := kv.Value.Emit()
			require.NotContains(t, v, "secret", "span %s attribute %s", s.Name, kv.Key)
			require.NotContains(t, v, tok, "span %s attribute %s", s.Name, kv.Key)
		}
	}
	post, ok := byName["POST /v1/messages"]
	require.True(t, ok, "spans: %v", names(spans.GetSpans()))
	require.Equal(t, traceID, post.SpanContext.TraceID().String(), "the caller's trace continues")
	require.Contains(t, post.Attributes, attrInt("http.response.status_code", 201))
	childInsert := func(parent tracetest.SpanStub) bool {
		for _, s := range spans.GetSpans() {
			if strings.HasPrefix(s.Name, "river.insert") && s.Parent.SpanID() == parent.SpanContext.SpanID() {
				return true
			}
		}
		return false
	}
	require.True(t, childInsert(post), "the job insert is the request's child; spans: %v", names(spans.GetSpans()))
	require.Contains(t, byName, "GET /v1/search")
	del := byName["DELETE /v1/messages/:id"]
	require.Contains(t, del.Attributes, attrInt("http.response.status_code", 400), "the status the client got")
	require.NotContains(t, byName, "GET /healthz")
	require.NotContains(t, byName, "GET /v1/ws", "a websocket is not a span")
	frame, ok := byName["WS send"]
	require.True(t, ok, "spans: %v", names(spans.GetSpans()))
	require.Contains(t, frame.Attributes, attrInt("http.response.status_code", 200))
	require.True(t, childInsert(frame), "the frame's job insert is its child")

	// The jobs carry the trace to the runner.
	var parents []string
	rows, err := pool.Query(ctx, `SELECT metadata->>'traceparent' FROM river_job WHERE args->>'message_id' = $1`, created.ID)
	require.NoError(t, err)
	for rows.Next() {
		var p *string
		require.NoError(t, rows.Scan(&p))
		require.NotNil(t, p, "every job of the message carries the trace")
		parents = append(parents, *p)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, parents)
	for _, p := range parents {
		require.Contains(t, p, traceID)
	}
}

func attrInt(k string, v int) attribute.KeyValue { return attribute.Int(k, v) }

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}
