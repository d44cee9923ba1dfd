package tracing_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/msgrunner/msgrunner/internal/tracing"
)

func TestEchoMiddlewareNamesSpansByRouteAndRecordsNoRequestData(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	e := echo.New()
	e.Use(tracing.Echo(tp, func(path string) bool { return path == "/healthz" }))
	var inside trace.SpanContext
	e.GET("/things/:id", func(c echo.Context) error {
		inside = trace.SpanContextFromContext(c.Request().Context())
		return c.String(http.StatusOK, "ok")
	})
	e.POST("/fail", func(echo.Context) error { return errors.New("boom") })
	e.GET("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusOK) })

	serve := func(method, target string, header http.Header) int {
		req := httptest.NewRequest(method, target, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusOK, serve(http.MethodGet, "/things/42?token=hunter2", http.Header{
		"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}))
	require.Equal(t, http.StatusInternalServerError, serve(http.MethodPost, "/fail", nil))
	require.Equal(t, http.StatusNotFound, serve(http.MethodGet, "/no/such/path/4242", nil))
	require.Equal(t, http.StatusMethodNotAllowed, serve("BREW", "/things/1", nil))
	require.Equal(t, http.StatusOK, serve(http.MethodGet, "/healthz", nil))

	got := spans.GetSpans()
	require.Len(t, got, 4, "the skipped path is not traced")
	things, fail, missing, brew := got[0], got[1], got[2], got[3]
	require.Equal(t, "_OTHER /things/:id", brew.Name, "an unknown method names no span")

	require.Equal(t, "GET /things/:id", things.Name)
	require.Equal(t, trace.SpanKindServer, things.SpanKind)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", things.SpanContext.TraceID().String(), "the caller's trace continues")
	require.Equal(t, "00f067aa0ba902b7", things.Parent.SpanID().String())
	require.Equal(t, things.SpanContext, inside, "the handler runs inside the span")
	require.ElementsMatch(t, []attribute.KeyValue{
		attribute.String("http.request.method", "GET"), attribute.String("http.route", "/things/:id"),
		attribute.Int("http.response.status_code", 200),
	}, things.Attributes, "method, route and status only: no ids, query or headers")

	require.Equal(t, "POST /fail", fail.Name)
	require.Contains(t, fail.Attributes, attribute.Int("http.response.status_code", 500))
	require.Equal(t, codes.Error, fail.Status.Code)
	require.False(t, fail.Parent.IsValid(), "no traceparent: a new trace")

	require.Equal(t, "GET unmatched", missing.Name, "an unmatched path does not name its span")
	require.Contains(t, missing.Attributes, attribute.Int("http.response.status_code", 404))
}

func TestEchoMiddlewareWithoutProviderOnlyPassesOn(t *testing.T) {
	t.Parallel()
	e := echo.New()
	e.Use(tracing.Echo(nil, nil))
	e.GET("/", func(c echo.Context) error {
		require.False(t, trace.SpanContextFromContext(c.Request().Context()).IsValid())
		return c.NoContent(http.StatusNoContent)
	})
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Nil(t, tracing.RiverMiddleware(nil))
}
