package runner_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/internal/tracing"
)

func TestJobWorkIsTracedWhenTracingIsOn(t *testing.T) {
	t.Parallel()
	var posts atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" && r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()

	tp, err := tracing.NewProvider(context.Background(), tracing.Config{Endpoint: collector.URL, ServiceName: "runner-test"})
	require.NoError(t, err)
	b := setup(t)
	r := b.newRunner(t, &testWorker{pool: b.pool}, func(c *runner.Config) { c.Tracer = tp })
	require.NoError(t, r.Start(context.Background()))
	b.insert(t, r, 5)
	b.requireAllWorkedOnce(t, 5)
	require.NoError(t, r.Shutdown(context.Background()))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tp.Shutdown(ctx)) // flushes the batch
	require.Positive(t, posts.Load(), "spans reached the collector")

	_, err = tracing.NewProvider(context.Background(), tracing.Config{Endpoint: "collector:4318", ServiceName: "x"})
	require.ErrorContains(t, err, "http(s) URL")
}

// TestWorkSpansLinkToTheRequestThatInsertedTheJob inserts jobs inside a
// span, through a client with the inserting side's middleware (as the
// gateway and the admin server do), and checks that the runner's work
// spans link back to that span.
func TestWorkSpansLinkToTheRequestThatInsertedTheJob(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	b := setup(t)
	r := b.newRunner(t, &testWorker{pool: b.pool}, func(c *runner.Config) { c.Tracer = tp })

	inserter, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{Middleware: tracing.RiverMiddleware(tp)})
	require.NoError(t, err)
	ctx, request := tp.Tracer("test").Start(context.Background(), "POST /v1/messages")
	_, err = inserter.InsertMany(ctx, []river.InsertManyParams{{Args: testArgs{N: 1}}, {Args: testArgs{N: 2}}})
	require.NoError(t, err)
	request.End()

	require.NoError(t, r.Start(context.Background()))
	b.requireAllWorkedOnce(t, 2)
	require.NoError(t, r.Shutdown(context.Background()))

	var work []tracetest.SpanStub
	for _, s := range spans.GetSpans() {
		if strings.HasPrefix(s.Name, "river.work") {
			work = append(work, s)
		}
	}
	require.Len(t, work, 2)
	for _, w := range work {
		var linked bool
		for _, l := range w.Links {
			linked = linked || l.SpanContext.TraceID() == request.SpanContext().TraceID()
		}
		require.True(t, linked, "work span %s links to the inserting request's trace", w.Name)
	}
}
