package runner_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
