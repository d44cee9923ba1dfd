package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves the registry, behind Config.MetricsToken when set.
func (s *Server) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})
	if s.cfg.MetricsToken == "" {
		return h
	}
	want := sha256.Sum256([]byte(s.cfg.MetricsToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		// Digests of equal length: the comparison takes the same time
		// whatever the token's length or contents.
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="msgrunner metrics"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"GET /metrics needs Authorization: Bearer <METRICS_TOKEN>"}}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// rateLimitTimeout bounds the limiter's Redis round trip: past it, the
// request goes ahead unlimited.
const rateLimitTimeout = 250 * time.Millisecond

// rateLimit refuses a user's request with 429 and Retry-After once the
// user has spent their budget (Config.RateLimiter), shared by every node
// through Redis. It runs after authenticate.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.checkRate(c.Request().Context(), userOf(c)); err != nil {
			c.Response().Header().Set("Retry-After", strconv.Itoa(err.retryAfter))
			return err.apiError
		}
		return next(c)
	}
}

// rateLimitedError is 429 rate_limited, with the Retry-After seconds.
type rateLimitedError struct {
	*apiError
	retryAfter int
}

// checkRate counts one request of user and returns an error when it is
// over the limit. When the limiter cannot answer (Redis unreachable or
// slower than rateLimitTimeout) the request is allowed: a chat must not
// stop sending because its limiter is down. Such requests are counted in
// msgrunner_gateway_rate_limit_total{result="unavailable"}.
func (s *Server) checkRate(ctx context.Context, user uuid.UUID) *rateLimitedError {
	l := s.cfg.RateLimiter
	if l == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, rateLimitTimeout)
	defer cancel()
	res, err := l.Allow(ctx, user.String())
	switch {
	case err != nil:
		s.metrics.rateLimit.WithLabelValues("unavailable").Inc()
		s.logger.Debug("rate limiter unavailable; request allowed", slog.String("error", err.Error()))
		return nil
	case res.Allowed:
		return nil
	}
	s.metrics.rateLimit.WithLabelValues("limited").Inc()
	secs := res.RetryAfterSeconds()
	return &rateLimitedError{
		apiError: newError(http.StatusTooManyRequests, "rate_limited", fmt.Sprintf(
			"rate limit exceeded: %d requests per second per user (burst %d); retry after %d s", l.PerSecond(), l.Burst(), secs)),
		retryAfter: secs,
	}
}

// countsAgainstLimit reports whether a websocket frame type is counted
// against the rate limit, as an HTTP request is: those that write or read
// the database. Pings are free.
func countsAgainstLimit(frameType string) bool {
	switch frameType {
	case "send", "ack", "resume":
		return true
	}
	return false
}
