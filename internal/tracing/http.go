package tracing

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// knownMethods are the HTTP methods spans are named by; any other is
// "_OTHER".
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true,
	http.MethodDelete: true, http.MethodConnect: true, http.MethodOptions: true, http.MethodTrace: true,
}

// scope names the instrumentation in spans.
const scope = "github.com/msgrunner/msgrunner/internal/tracing"

// Echo returns middleware that traces each request as a server span named
// by its method and route ("POST /v1/messages"), continuing the caller's
// trace when the request carries W3C trace context (traceparent). Spans
// carry the method, the route, the status code and the error class, and
// nothing else from the request: not the path's ids, not the query (search
// text, tokens), not headers, not bodies. Requests whose path skip
// reports (health checks, websockets, which would make a span the length
// of the connection) are not traced. A nil provider returns middleware
// that only passes requests on.
func Echo(tp trace.TracerProvider, skip func(path string) bool) echo.MiddlewareFunc {
	if tp == nil {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	tracer := tp.Tracer(scope)
	prop := propagation.TraceContext{}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if skip != nil && skip(req.URL.Path) {
				return next(c)
			}
			route := c.Path() // the pattern, such as /v1/messages/:id
			if route == "" {
				route = "unmatched"
			}
			method := req.Method
			if !knownMethods[method] {
				method = "_OTHER" // a client's invention names no span
			}
			ctx := prop.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
			ctx, span := tracer.Start(ctx, method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("http.route", route)))
			defer span.End()
			c.SetRequest(req.WithContext(ctx))
			if err := next(c); err != nil {
				// Answer the error inside the span, so the span has the
				// status the client gets (the server's error handler
				// writes it, once).
				c.Error(err)
			}
			setStatus(span, c.Response().Status)
			return nil
		}
	}
}

// RiverMiddleware returns the River middleware of a client that inserts
// jobs inside traced requests: each insert is a span, and the inserted
// jobs carry its trace context in their metadata, so the runner's work
// spans link back to the request. Nil (no middleware) when tp is nil.
func RiverMiddleware(tp trace.TracerProvider) []rivertype.Middleware {
	if tp == nil {
		return nil
	}
	return []rivertype.Middleware{otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
		TracerProvider:         tp,
		MeterProvider:          noop.NewMeterProvider(), // metrics go to Prometheus
		EnableTracePropagation: true,
	})}
}

// Frame starts the span of one websocket frame that does work, named
// "WS <frameType>" ("WS send"): a trace of its own, since frames carry no
// trace context, with the frame type and, when end is called, the status
// the frame's answer maps to (an error answer's HTTP status, 200 for
// success) and nothing else from the frame. With a nil provider it
// returns ctx and an end that does nothing.
func Frame(ctx context.Context, tp trace.TracerProvider, frameType string) (context.Context, func(status int)) {
	if tp == nil {
		return ctx, func(int) {}
	}
	ctx, span := tp.Tracer(scope).Start(ctx, "WS "+frameType, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("websocket.frame.type", frameType)))
	return ctx, func(status int) {
		setStatus(span, status)
		span.End()
	}
}

// setStatus records the status an answer maps to on span, and marks a
// 5xx an error.
func setStatus(span trace.Span, status int) {
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
	}
}
