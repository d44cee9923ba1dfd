// Package gateway is a websocket node and the public message API: clients
// post messages (stored with their jobs in one transaction through the
// outbox), read history, and hold a websocket over which they receive their
// messages and receipts live and resume from Postgres after any gap.
package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"go.opentelemetry.io/otel/trace"

	"github.com/msgrunner/msgrunner/api"
	jsclient "github.com/msgrunner/msgrunner/clients/js"
	"github.com/msgrunner/msgrunner/internal/attachments"
	"github.com/msgrunner/msgrunner/internal/auth"
	"github.com/msgrunner/msgrunner/internal/broadcast"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/groups"
	"github.com/msgrunner/msgrunner/internal/httpserve"
	"github.com/msgrunner/msgrunner/internal/keyring"
	"github.com/msgrunner/msgrunner/internal/ratelimit"
	"github.com/msgrunner/msgrunner/internal/tracing"
	"github.com/msgrunner/msgrunner/outbox"
)

// Defaults for Config fields left zero.
const (
	DefaultSendBuffer      = 256
	DefaultShutdownTimeout = 10 * time.Second
	DefaultDBTimeout       = 5 * time.Second
	DefaultMaxFrameBytes   = 256 << 10
)

// Config configures a Server.
type Config struct {
	// Addr is the listen address (":0" picks a free port). Required.
	Addr string
	// Auth verifies bearer tokens. Required.
	Auth *auth.Authority
	// MaxContentBytes caps message content; outbox.DefaultMaxContentBytes
	// when zero.
	MaxContentBytes int
	// SendBuffer is how many frames may wait for a slow socket before the
	// gateway closes it (the client then resumes). Default 256. The queue
	// grows as frames wait: an idle socket holds none of it.
	SendBuffer int
	// MaxFrameBytes caps a client frame; bigger ones get an error frame.
	// Default 256 KiB. Frames over 4× this close the connection.
	MaxFrameBytes int
	// DBTimeout bounds each request's database work. Default 5s.
	DBTimeout time.Duration
	// ShutdownTimeout bounds draining on Shutdown. Default 10s.
	ShutdownTimeout time.Duration
	// AllowedOrigins lists extra websocket Origin host patterns (same-origin
	// is always allowed), e.g. "app.example.com" or "*.example.com".
	AllowedOrigins []string
	// Logger receives structured logs. Required.
	Logger *slog.Logger
	// Replica, when set, serves the reads that tolerate lag (search) from
	// a streaming standby while it keeps up; every other read, and every
	// read while it is bypassed, goes to the pool. Optional; the caller
	// closes it.
	Replica *db.Replica
	// Sealer encrypts messages sent with requires_encryption and decrypts
	// them for their participants; such sends answer 501 when nil.
	Sealer *keyring.Sealer
	// Attachments stores uploads; POST /v1/attachments answers 501 when
	// nil.
	Attachments attachments.Store
	// AttachmentMaxBytes caps an upload (default 10 MiB), AttachmentTTL is
	// how long it is kept (default 30 days), AttachmentTypes are the
	// accepted content types (default DefaultAttachmentTypes).
	AttachmentMaxBytes int64
	AttachmentTTL      time.Duration
	AttachmentTypes    []string
	// GroupMaxMembers caps a group's members (GROUP_MAX_MEMBERS);
	// groups.DefaultMaxMembers when zero.
	GroupMaxMembers int
	// SearchLanguage is the text-search configuration queries are parsed
	// with; "simple" when empty. It should match the runner's.
	SearchLanguage string
	// Registry receives the node's Prometheus metrics, served on /metrics;
	// a new registry when nil (never the global one).
	Registry *prometheus.Registry
	// MetricsToken, when set, is required as "Authorization: Bearer
	// <token>" on GET /metrics (compared in constant time).
	MetricsToken string
	// MetricsAddr, when set, serves /metrics on a listener of its own
	// (such as 127.0.0.1:9091) and not on Addr. MetricsOff serves it
	// nowhere. With neither and no MetricsToken, /metrics on Addr is open:
	// for tests and private networks only (cmd/gateway never does this).
	MetricsAddr string
	MetricsOff  bool
	// RateLimiter limits each user's requests and websocket frames that do
	// work; nil means no limit. When it cannot answer (Redis down) requests
	// go ahead: see rateLimit.
	RateLimiter *ratelimit.Limiter
	// Tracer, when set, traces each API request (tracing.Echo: method,
	// route and status only) and the job inserts it makes, whose trace
	// context travels in the jobs' metadata to the runner's work spans.
	// Each websocket frame that does work is a span of its own
	// (tracing.Frame); health checks, /metrics and the websocket
	// connection itself are not traced. Off when nil.
	Tracer trace.TracerProvider
}

// Server is one gateway node.
type Server struct {
	cfg         Config
	pool        *pgxpool.Pool
	river       *river.Client[pgx.Tx]
	outbox      *outbox.Outbox
	bcast       *broadcast.Service
	groups      *groups.Service
	fanout      *fanout.Fanout
	delivery    *delivery.Deliverer // the fast path: publish after commit, mark sent in batches
	hub         *fanout.Hub
	logger      *slog.Logger
	metrics     *gatewayMetrics
	echo        *echo.Echo
	http        *httpserve.Server
	metricsHTTP *httpserve.Server

	mu      sync.Mutex
	conns   map[*conn]struct{}
	connSeq int // connections accepted, for their ping slots
	// stopPinger stops the node's pinger; nil while it is not running
	// (it runs while there are connections).
	stopPinger func()
	draining   bool
	connWG     sync.WaitGroup
}

// New builds a gateway on pool (messages) and the Redis fan-out; nothing
// listens until Start.
func New(pool *pgxpool.Pool, fo *fanout.Fanout, hub *fanout.Hub, cfg Config) (*Server, error) {
	switch {
	case cfg.Addr == "":
		return nil, errors.New("gateway: Config.Addr is required")
	case cfg.Auth == nil:
		return nil, errors.New("gateway: Config.Auth is required")
	case cfg.Logger == nil:
		return nil, errors.New("gateway: Config.Logger is required")
	case pool == nil || fo == nil || hub == nil:
		return nil, errors.New("gateway: pool, fanout and hub are required")
	case cfg.SendBuffer < 0 || cfg.MaxFrameBytes < 0 || cfg.GroupMaxMembers < 0:
		return nil, errors.New("gateway: Config sizes and durations must not be negative")
	}
	cfg.SendBuffer = cmp.Or(cfg.SendBuffer, DefaultSendBuffer)
	cfg.MaxFrameBytes = cmp.Or(cfg.MaxFrameBytes, DefaultMaxFrameBytes)
	cfg.DBTimeout = cmp.Or(cfg.DBTimeout, DefaultDBTimeout)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	cfg.MaxContentBytes = cmp.Or(cfg.MaxContentBytes, outbox.DefaultMaxContentBytes)
	cfg.SearchLanguage = cmp.Or(cfg.SearchLanguage, "simple")
	cfg.AttachmentMaxBytes = cmp.Or(cfg.AttachmentMaxBytes, 10<<20)
	cfg.AttachmentTTL = cmp.Or(cfg.AttachmentTTL, 30*24*time.Hour)
	if len(cfg.AttachmentTypes) == 0 {
		cfg.AttachmentTypes = DefaultAttachmentTypes
	}

	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: cfg.Logger, Middleware: tracing.RiverMiddleware(cfg.Tracer)})
	if err != nil {
		return nil, fmt.Errorf("gateway: creating River client: %w", err)
	}
	ob, err := outbox.New(rc, outbox.Config{MaxContentBytes: cfg.MaxContentBytes, Sealer: cfg.Sealer})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	gs, err := groups.New(pool, groups.Config{MaxMembers: cfg.GroupMaxMembers})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	metrics, err := newGatewayMetrics(cfg.Registry, hub)
	if err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	s := &Server{
		cfg: cfg, pool: pool, river: rc, outbox: ob, bcast: broadcast.New(pool, ob, rc, broadcast.Options{}), fanout: fo, hub: hub, logger: cfg.Logger,
		groups: gs, metrics: metrics, conns: map[*conn]struct{}{},
		delivery: delivery.New(pool, fo, delivery.Config{DeferMarks: true, Logger: cfg.Logger}),
	}
	s.echo = s.routes()
	return s, nil
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.httpErrorHandler
	e.Use(tracing.Echo(s.cfg.Tracer, func(path string) bool {
		switch path {
		case "/healthz", "/readyz", "/metrics", "/v1/ws":
			return true
		}
		return false
	}))
	e.GET("/", s.demoPage)
	e.GET("/client.js", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", jsclient.Module)
	})
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/v1/openapi.json", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, api.GatewayJSON()) })
	if s.cfg.MetricsAddr == "" && !s.cfg.MetricsOff {
		e.GET("/metrics", echo.WrapHandler(s.metricsHandler()))
	}
	// The middleware goes on each route rather than on the group: a group
	// with middleware answers every unmatched path under it, wrong methods
	// included, with 404, where the router answers a known path's wrong
	// method with 405 and its Allow header.
	v1 := e.Group("/v1")
	mw := []echo.MiddlewareFunc{s.authenticate, s.rateLimit}
	v1.POST("/messages", s.postMessage, mw...)
	v1.PATCH("/messages/:id", s.editMessage, mw...)
	v1.DELETE("/messages/:id", s.deleteMessage, mw...)
	v1.GET("/search", s.search, mw...)
	v1.GET("/conversations", s.listConversations, mw...)
	v1.POST("/conversations", s.createGroup, mw...)
	v1.GET("/conversations/:id", s.getConversation, mw...)
	v1.PATCH("/conversations/:id", s.renameGroup, mw...)
	v1.DELETE("/conversations/:id", s.deleteConversation, mw...)
	v1.PUT("/conversations/:id/settings", s.putConversationSettings, mw...)
	v1.POST("/conversations/:id/members", s.addMembers, mw...)
	v1.PUT("/conversations/:id/members/:user_id", s.setMemberRole, mw...)
	v1.DELETE("/conversations/:id/members/:user_id", s.removeMember, mw...)
	v1.GET("/conversations/:id/messages/:message_id/receipts", s.groupReceipts, mw...)
	v1.GET("/me/profile", s.getProfile, mw...)
	v1.PUT("/me/profile", s.putProfile, mw...)
	v1.DELETE("/me/profile", s.deleteProfile, mw...)
	v1.GET("/me/notification-preferences", s.getPreferences, mw...)
	v1.PUT("/me/notification-preferences", s.putPreferences, mw...)
	v1.POST("/me/devices", s.registerDevice, mw...)
	v1.DELETE("/me/devices/:id", s.deleteDevice, mw...)
	v1.POST("/attachments", s.postAttachment, mw...)
	v1.GET("/attachments/:id", s.getAttachment, mw...)
	v1.POST("/broadcasts", s.postBroadcast, mw...)
	v1.GET("/broadcasts/:id", s.getBroadcast, mw...)
	v1.DELETE("/broadcasts/:id", s.cancelBroadcast, mw...)
	v1.GET("/conversations/:id/messages", s.history, mw...)
	v1.GET("/unread", s.unread, mw...)
	v1.GET("/dm/:peer", s.directConversation, mw...)
	v1.GET("/scheduled", s.listScheduled, mw...)
	v1.DELETE("/scheduled/:id", s.cancelScheduled, mw...)
	v1.GET("/ws", s.websocket, mw...)
	return e
}

// Handler returns the gateway's HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Start listens on Config.Addr (and Config.MetricsAddr when set) and
// serves in the background.
func (s *Server) Start() error {
	srv, err := httpserve.Listen(s.cfg.Addr, s.echo, s.logger, "gateway")
	if err != nil {
		return err
	}
	if s.cfg.MetricsAddr != "" && !s.cfg.MetricsOff {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metricsHandler())
		if s.metricsHTTP, err = httpserve.Listen(s.cfg.MetricsAddr, mux, s.logger, "gateway metrics"); err != nil {
			_ = srv.Close()
			return err
		}
	}
	s.http = srv
	return nil
}

// MetricsAddr returns the address of the separate metrics listener, or ""
// when there is none.
func (s *Server) MetricsAddr() string { return s.metricsHTTP.Addr() }

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.http.Addr() }

// Shutdown stops accepting requests, closes every websocket with "going
// away" (clients reconnect elsewhere and resume), waits for in-flight
// requests, and marks sent the messages they published (a mark still
// queued when the time is up is left to the runner's deliver-pending
// sweep, which publishes the message again), all within
// Config.ShutdownTimeout. A server used only through Handler must be
// shut down too, for those marks.
func (s *Server) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	s.mu.Lock()
	s.draining = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		// Each close waits for the client's close frame (up to 5s); close
		// them all at once.
		go c.close(websocket.StatusGoingAway, "server shutting down: reconnect and resume")
	}
	err := s.http.Shutdown(ctx)
	_ = s.metricsHTTP.Close()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	// Every request is over: mark what was published (a mark left
	// undone costs the recipient a duplicate frame from the sweep).
	if merr := s.delivery.Close(ctx); err == nil && merr != nil {
		err = fmt.Errorf("gateway: marking published messages sent: %w", merr)
	}
	return err
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok"}
	status := http.StatusOK
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		checks["gateway"], status = "draining", http.StatusServiceUnavailable
	}
	if err := s.pool.Ping(ctx); err != nil {
		checks["postgres"], status = "unreachable", http.StatusServiceUnavailable
	}
	body := map[string]any{"status": "ready", "checks": checks}
	if status != http.StatusOK {
		body["status"] = "not ready"
	}
	return c.JSON(status, body)
}
