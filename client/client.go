// Package client is the Go client of the msgrunner gateway, for services
// and tools that send and receive messages as a user. It keeps the
// delivery promise of docs/api.md for its caller, so the caller writes no
// protocol code:
//
//   - Run holds a websocket to one of the gateways, reconnects with
//     jittered exponential backoff (moving to the next endpoint), and stops
//     only on its context or a 401.
//   - After every ready and resync it sends resume with the cursor of every
//     conversation it knows (CursorStore), so nothing published while it was
//     away is missed.
//   - It hands each message to Config.OnMessage exactly once and in seq
//     order per conversation: duplicates (live and resumed, or published
//     twice) are dropped, and a live message ahead of its conversation's
//     cursor is held while a resume fetches what lies between.
//   - Send gives the message an id first and retries with that id on
//     network errors, timeouts and 5xx answers until it is stored, its
//     context ends or the gateway refuses it (a 4xx, never retried), so a
//     retry never stores a message twice.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Defaults of Config.
const (
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	DefaultRequestTimeout = 10 * time.Second
)

// Config configures a Client.
type Config struct {
	// Endpoints are the gateways' base URLs (http:// or https://, as
	// http://127.0.0.1:8081). Requests and connections go to one and move
	// to the next when it fails. At least one is required.
	Endpoints []string
	// Token returns the user's bearer token; it is asked before every
	// request and connection, so it may refresh an expiring one.
	// Required.
	Token func(ctx context.Context) (string, error)
	// HTTPClient makes the requests; http.DefaultClient when nil. Each
	// attempt is bounded by RequestTimeout besides.
	HTTPClient *http.Client
	// RequestTimeout bounds one attempt of a request; DefaultRequestTimeout
	// when zero.
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential wait between
	// attempts (DefaultMinBackoff, DefaultMaxBackoff when zero).
	MinBackoff, MaxBackoff time.Duration
	// Cursors keeps the seq up to which each conversation was handed to
	// OnMessage; an in-memory store when nil. A store that persists makes
	// a restarted client resume where it stopped.
	Cursors CursorStore
	// OnMessage receives each message once, in seq order per conversation.
	// The callbacks run one at a time on Run's goroutine: a slow callback
	// slows the socket, never reorders it.
	OnMessage func(Message)
	// OnReceipt receives delivered and read receipts of the user's messages.
	OnReceipt func(Receipt)
	// OnNotification receives in-app notifications.
	OnNotification func(Notification)
	// OnState is told when the websocket is up (after ready) and when it
	// dropped, with why.
	OnState func(State)
	// OnRetry, when set, is told of every failed attempt of a request
	// that retries (an *APIError for a 5xx answer, else the transport
	// error or timeout), for metrics and logs.
	OnRetry func(err error)
	// Logger receives what the client recovers from; discarded when nil.
	Logger *slog.Logger
}

// Client talks to the gateways as one user. It is safe for concurrent use;
// Run runs at most once at a time.
type Client struct {
	cfg       Config
	endpoints []*url.URL
	next      atomic.Uint64 // the endpoint to try next
	http      *http.Client
	log       *slog.Logger

	running atomic.Bool
	stats   stats

	mu    sync.Mutex
	live  *session   // the connected session, nil while disconnected
	acks  []ackFrame // acks made while disconnected, sent after ready
	convs map[uuid.UUID]*conversation
}

// maxQueuedAcks bounds the acks kept while disconnected.
const maxQueuedAcks = 10000

// New checks cfg and returns a Client. Nothing connects until Run or a
// request.
func New(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("client: Config.Endpoints needs at least one gateway URL")
	}
	if cfg.Token == nil {
		return nil, errors.New("client: Config.Token is required")
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient, log: cfg.Logger, convs: map[uuid.UUID]*conversation{}}
	for _, e := range cfg.Endpoints {
		u, err := url.Parse(strings.TrimRight(e, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("client: endpoint %q is not an http:// or https:// URL", e)
		}
		c.endpoints = append(c.endpoints, u)
	}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.cfg.RequestTimeout <= 0 {
		c.cfg.RequestTimeout = DefaultRequestTimeout
	}
	if c.cfg.MinBackoff <= 0 {
		c.cfg.MinBackoff = DefaultMinBackoff
	}
	if c.cfg.MaxBackoff <= 0 {
		c.cfg.MaxBackoff = DefaultMaxBackoff
	}
	if c.cfg.MaxBackoff < c.cfg.MinBackoff {
		return nil, fmt.Errorf("client: MaxBackoff %s is below MinBackoff %s", c.cfg.MaxBackoff, c.cfg.MinBackoff)
	}
	if c.cfg.Cursors == nil {
		c.cfg.Cursors = NewMemoryCursors()
	}
	return c, nil
}

// APIError is an error answer of the gateway: the API's code (docs/api.md,
// "Errors"), the field it names, if any, and the HTTP status.
type APIError struct {
	Status  int
	Code    string
	Field   string
	Message string
	// RetryAfter is the wait a 429 asks for.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("gateway answered %d %s (%s): %s", e.Status, e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("gateway answered %d %s: %s", e.Status, e.Code, e.Message)
}

// ErrUnauthorized is Run's error when a gateway refuses the token (401):
// retrying with the same token cannot succeed.
var ErrUnauthorized = errors.New("client: the gateway refused the token (401)")

// retryable says whether a request that failed with err may succeed if
// sent again: transport errors, timeouts and 5xx answers other than 501
// (a feature the gateway lacks). 4xx answers never are.
func retryable(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status >= 500 && apiErr.Status != http.StatusNotImplemented
	}
	return true
}

// backoff returns the wait before attempt n (0 is the first retry): full
// jitter over an exponential ceiling, capped at MaxBackoff.
func (c *Client) backoff(n int) time.Duration {
	ceiling := c.cfg.MaxBackoff
	if n < 30 {
		if d := c.cfg.MinBackoff << n; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return ceiling/2 + rand.N(ceiling/2+1)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// endpoint returns the endpoint to use now.
func (c *Client) endpoint() *url.URL {
	return c.endpoints[c.next.Load()%uint64(len(c.endpoints))]
}

// failover moves to the next endpoint after u failed (unless another
// caller already moved on).
func (c *Client) failover(u *url.URL) {
	n := c.next.Load()
	if c.endpoints[n%uint64(len(c.endpoints))] == u {
		c.next.CompareAndSwap(n, n+1)
	}
}

// do sends one request, retrying retryable failures with backoff while
// ctx allows when retry is set, and decodes a 2xx answer into out (when
// not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any, retry bool) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return fmt.Errorf("client: encoding request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		u := c.endpoint()
		err := c.once(ctx, u, method, path, query, raw, out)
		if err == nil || !retry || !retryable(err) {
			return err
		}
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			c.failover(u) // the node is unreachable: try the next
		}
		c.stats.retries.Add(1)
		if c.cfg.OnRetry != nil {
			c.cfg.OnRetry(err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		}
		if serr := sleep(ctx, c.backoff(attempt)); serr != nil {
			return fmt.Errorf("%w (last attempt: %w)", serr, err)
		}
	}
}

// once is one attempt of do.
func (c *Client) once(ctx context.Context, u *url.URL, method, path string, query url.Values, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	tok, err := c.cfg.Token(ctx)
	if err != nil {
		return fmt.Errorf("client: getting the token: %w", err)
	}
	target := *u
	target.Path += path
	target.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), rd)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("client: reading the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return apiError(resp, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("client: decoding the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// apiError reads an error answer.
func apiError(resp *http.Response, data []byte) *APIError {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	e := &APIError{Status: resp.StatusCode}
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Field = body.Error.Code, body.Error.Message, body.Error.Field
	} else {
		e.Code, e.Message = "http_"+strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(data))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// Stats counts what the client recovered from since it was made.
type Stats struct {
	// Delivered is the messages handed to OnMessage.
	Delivered int64
	// Duplicates is the message frames dropped as already delivered.
	Duplicates int64
	// Gaps is the live messages that arrived ahead of their conversation's
	// cursor and were held for a resume.
	Gaps int64
	// Resumes is the resume frames sent.
	Resumes int64
	// Connects is the websockets that reached ready; Reconnects the
	// connection attempts that failed or ended.
	Connects, Reconnects int64
	// Retries is the request attempts sent again.
	Retries int64
}

type stats struct {
	delivered, duplicates, gaps, resumes, connects, reconnects, retries atomic.Int64
}

// Stats returns the counters so far.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{
		Delivered: s.delivered.Load(), Duplicates: s.duplicates.Load(), Gaps: s.gaps.Load(),
		Resumes: s.resumes.Load(), Connects: s.connects.Load(), Reconnects: s.reconnects.Load(),
		Retries: s.retries.Load(),
	}
}
