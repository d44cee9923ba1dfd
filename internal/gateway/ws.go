package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/delivery"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/tracing"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/validation"
)

const (
	writeTimeout   = 10 * time.Second
	pingInterval   = 30 * time.Second
	resumePageSize = 500
)

// conn is one websocket connection of one user.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	user   uuid.UUID
	out    chan []byte // frames produced by this connection's own requests
	sub    *fanout.Subscription
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	// slot is the pinger's slot for this connection; pinging is set while
	// a ping of it is in flight.
	slot    int
	pinging atomic.Bool

	// wmu guards the writer's state: the writer goroutine runs only while
	// this connection has frames to write (see wake), so an idle
	// connection parks one goroutine, its reader, instead of two.
	wmu sync.Mutex
	// writing is set while a writer runs; at most one does.
	writing bool
	// ended is set when the connection is over: no writer starts after.
	ended bool
	// writers counts the running writer, for the connection's end to wait
	// for.
	writers sync.WaitGroup
}

// close closes the socket with code and reason, once. The close handshake
// comes first: cancelling the context of a pending Read would drop the
// connection without a close frame.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.once.Do(func() {
		_ = c.ws.Close(code, reason)
		c.cancel()
	})
}

func (s *Server) websocket(e echo.Context) error {
	user := userOf(e)
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		return newError(http.StatusServiceUnavailable, "draining", "this node is shutting down; connect to another")
	}
	ws, err := websocket.Accept(smallBuffers{e.Response()}, e.Request(), &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowedOrigins})
	if err != nil {
		// Accept has already answered the client.
		s.logger.Debug("websocket handshake failed", slog.String("error", err.Error()))
		return nil
	}
	ws.SetReadLimit(int64(s.cfg.MaxFrameBytes) * 4)
	ctx, cancel := context.WithCancel(context.WithoutCancel(e.Request().Context()))
	c := &conn{s: s, ws: ws, user: user, out: make(chan []byte, 16), ctx: ctx, cancel: cancel}

	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		c.close(websocket.StatusGoingAway, "server shutting down: reconnect and resume")
		return nil
	}
	s.conns[c] = struct{}{}
	s.connSeq++
	c.slot = s.connSeq % pingSlots
	if s.stopPinger == nil {
		stop := make(chan struct{})
		s.stopPinger = func() { close(stop) }
		go s.pinger(stop)
	}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.metrics.connections.Inc()
	// The handler returns at once and the connection lives on in a
	// goroutine of its own: net/http and echo then let go of the request,
	// its headers and the handler's deep stack, which an idle connection
	// would otherwise keep for its whole life.
	go c.serve()
	return nil
}

// serve runs a connection the handler registered: it subscribes the user,
// sends ready and reads the client's frames until the connection ends,
// then waits for its writer and unregisters it.
func (c *conn) serve() {
	s := c.s
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		if len(s.conns) == 0 && s.stopPinger != nil {
			s.stopPinger()
			s.stopPinger = nil
		}
		s.mu.Unlock()
		s.metrics.connections.Dec()
		s.connWG.Done()
	}()

	sub, err := s.hub.Subscribe(c.ctx, c.user, s.cfg.SendBuffer, c.wake)
	if sub == nil {
		c.close(websocket.StatusTryAgainLater, "node is shutting down")
		return
	}
	c.wmu.Lock()
	c.sub = sub
	c.wmu.Unlock()
	defer func() {
		sub.Close()
		c.wmu.Lock()
		c.ended = true
		c.wmu.Unlock()
		c.writers.Wait()
	}()

	c.wake()           // for frames that came while subscribing
	go c.markPresent() // at once; the pinger refreshes it
	if err != nil {
		s.logger.Warn("live delivery unavailable for a connection", slog.String("error", err.Error()))
		c.sendError("", &apiError{Code: "realtime_unavailable", Message: "live delivery is unavailable right now; send resume to catch up, and again later"})
	}
	c.send(map[string]any{"type": "ready", "user_id": c.user})
	c.readLoop()
}

// Sizes of a websocket's read and write buffers. net/http hands over its
// 4 KiB pair with a hijacked connection, which an idle websocket would keep
// for its whole life; these are enough for the frame headers and for
// typical frames, and larger payloads go past the buffers.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 1024
)

// smallBuffers is a ResponseWriter whose Hijack hands the websocket
// library buffers of wsReadBuffer and wsWriteBuffer bytes instead of
// net/http's. Bytes the client sent after its handshake may already sit in
// net/http's read buffer: then that reader is kept, so none are lost.
type smallBuffers struct {
	http.ResponseWriter
}

// Hijack takes over the connection as http.Hijacker does.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	r := brw.Reader
	if r.Buffered() == 0 {
		r = bufio.NewReaderSize(nc, wsReadBuffer)
	}
	return nc, bufio.NewReadWriter(r, bufio.NewWriterSize(nc, wsWriteBuffer)), nil
}

// Unwrap returns the ResponseWriter underneath, for
// http.ResponseController.
func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// presenceTTL is how long a connection keeps its user marked online
// without a refresh (refreshed every ping interval).
const presenceTTL = 3 * pingInterval

// pingSlots spreads a node's pings (and presence refreshes) over the ping
// interval: the pinger wakes every pingInterval/pingSlots and pings the
// connections of one slot.
const pingSlots = 30

// pinger checks every connection of this node is alive and keeps its
// user's presence fresh, one slot of connections per tick. One goroutine
// per node instead of one per connection (a parked goroutine's stack was
// a third of an idle connection's memory). Each ping runs in a goroutine
// of its own while it waits for its pong, which only the connection's
// reader takes in; the reader may itself be waiting for the writer, so a
// ping never blocks the writer or the pinger. It runs while the node has
// connections (startPinger/stopPinger under s.mu).
func (s *Server) pinger(stop <-chan struct{}) {
	tick := time.NewTicker(pingInterval / pingSlots)
	defer tick.Stop()
	slot := 0
	var due []*conn
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		slot = (slot + 1) % pingSlots
		due = due[:0]
		s.mu.Lock()
		for c := range s.conns {
			if c.slot == slot {
				due = append(due, c)
			}
		}
		s.mu.Unlock()
		for _, c := range due {
			if c.pinging.CompareAndSwap(false, true) {
				go c.ping()
			}
		}
	}
}

// ping refreshes presence and pings the peer once, closing the connection
// when no pong comes within the write timeout.
func (c *conn) ping() {
	defer c.pinging.Store(false)
	c.markPresent()
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil && c.ctx.Err() == nil {
		c.close(websocket.StatusGoingAway, "ping timed out")
	}
}

// markPresent refreshes the user's presence; Redis being down only means
// notifications may not be suppressed meanwhile.
func (c *conn) markPresent() {
	ctx, cancel := context.WithTimeout(c.ctx, time.Second)
	defer cancel()
	_ = c.s.fanout.SetPresence(ctx, c.user, presenceTTL)
}

// wake starts the writer unless one is running, the connection is over or
// not yet subscribed. Whoever queues a frame calls it afterwards; the
// writer checks for more frames with c.wmu held before it stops, so no
// frame is left behind. It never blocks.
func (c *conn) wake() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writing || c.ended || c.sub == nil {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.writeLoop()
}

// writeLoop is the only writer of data frames while it runs (wake starts
// it): it writes the connection's replies and live frames, alternating,
// each in its order, and returns when both queues are empty, or closes the
// connection when the hub dropped it for being slow or a write fails.
func (c *conn) writeLoop() {
	defer c.writers.Done()
	live, reply := c.s.metrics.frames.WithLabelValues("live"), c.s.metrics.frames.WithLabelValues("reply")
	write := func(b []byte, counter prometheus.Counter) bool {
		ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
		defer cancel()
		if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
			c.close(websocket.StatusPolicyViolation, "write timed out")
			return false
		}
		counter.Inc()
		return true
	}
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.sub.Dropped():
			c.close(websocket.StatusPolicyViolation, "too slow: frames dropped; reconnect and resume")
			return
		default:
		}
		wrote := false
		select {
		case b := <-c.out:
			if !write(b, reply) {
				return
			}
			wrote = true
		default:
		}
		if b, ok := c.sub.Next(); ok {
			if !write(c.revealLive(b), live) {
				return
			}
			wrote = true
		}
		if !wrote && c.stopWriting() {
			return
		}
	}
}

// stopWriting ends the writer's run unless a frame or the drop signal came
// in meanwhile; it reports whether the writer should return.
func (c *conn) stopWriting() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.sub.Dropped():
		return false
	default:
	}
	if len(c.out) > 0 || c.sub.Len() > 0 {
		return false
	}
	c.writing = false
	return true
}

// encryptedMarker is how an encrypted message frame looks on the wire.
var encryptedMarker = []byte(`"encrypted":true`)

// revealLive decrypts an encrypted message frame from Redis for this
// socket's user (the frame carries no content); other frames pass as they
// are.
func (c *conn) revealLive(b []byte) []byte {
	if !bytes.Contains(b, encryptedMarker) {
		return b
	}
	var fr fanout.MessageFrame
	// A group message's frame has no recipient: it reached this user's
	// channel because they are in its audience.
	if err := json.Unmarshal(b, &fr); err != nil || fr.Type != fanout.FrameMessage || (fr.RecipientID != c.user && fr.RecipientID != uuid.Nil) {
		return b
	}
	c.s.reveal(c.ctx, nil, &fr, nil)
	out, err := json.Marshal(fr)
	if err != nil {
		return b
	}
	return out
}

// send queues a frame of this connection's own; it waits while the client
// reads slowly, up to the write timeout, then gives up on the connection.
func (c *conn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.s.logger.Error("encoding frame", slog.String("error", err.Error()))
		return
	}
	select {
	case c.out <- b:
		c.wake()
		return
	default:
	}
	timer := time.NewTimer(writeTimeout)
	defer timer.Stop()
	select {
	case c.out <- b:
		c.wake()
	case <-c.ctx.Done():
	case <-timer.C:
		c.close(websocket.StatusPolicyViolation, "too slow: frames not read")
	}
}

type errorFrame struct {
	Type    string `json:"type"` // "error"
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Ref     string `json:"ref,omitempty"`
}

func (c *conn) sendError(ref string, err error) {
	e, unexpected := classify(err)
	if unexpected || e.Status >= 500 {
		c.s.logger.Error("websocket request failed", slog.String("code", e.Code), slog.String("error", err.Error()))
	}
	c.send(errorFrame{Type: "error", Code: e.Code, Message: e.Message, Field: e.Field, Ref: ref})
}

func (c *conn) readLoop() {
	defer c.close(websocket.StatusNormalClosure, "")
	for {
		typ, b, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.sendError("", newError(http.StatusBadRequest, "bad_frame", "frames must be JSON text"))
			continue
		}
		if len(b) > c.s.cfg.MaxFrameBytes {
			c.sendError("", newError(http.StatusRequestEntityTooLarge, "frame_too_large", "frame is over the size limit"))
			continue
		}
		c.handle(b)
	}
}

// clientFrame is a client frame, parsed and checked: Type is send, ack,
// resume or ping, and that type's fields are filled.
type clientFrame struct {
	Type string
	Ref  string
	// Send is a send frame's request.
	Send sendRequest
	// MessageID and Status are an ack's.
	MessageID uuid.UUID
	Status    string
	// After is a resume's last seen seq per conversation.
	After map[uuid.UUID]int64
}

// parseFrame decodes and checks a client frame without touching the
// database. Its errors are client errors naming the field at fault; Ref is
// filled whenever the frame is a JSON object with a string ref, so the
// error frame can echo it.
func parseFrame(b []byte) (clientFrame, error) {
	var env struct {
		Type string `json:"type"`
		Ref  string `json:"ref"`
	}
	if !utf8.Valid(b) {
		return clientFrame{}, newError(http.StatusBadRequest, "bad_json", "frame is not valid UTF-8 (JSON text must be UTF-8)")
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return clientFrame{}, newError(http.StatusBadRequest, "bad_json", "frame is not a valid JSON object")
	}
	f := clientFrame{Type: env.Type, Ref: env.Ref}
	switch env.Type {
	case "send":
		var in struct {
			Type string `json:"type"`
			Ref  string `json:"ref"`
			sendRequest
		}
		if err := decodeStrict(b, &in); err != nil {
			// Type errors name a field of an embedded struct with the
			// struct's Go name first; the client knows only the JSON name.
			var ve *validation.Error
			if errors.As(err, &ve) {
				ve.Field = strings.TrimPrefix(ve.Field, "sendRequest.")
			}
			return f, err
		}
		f.Send = in.sendRequest
	case "ack":
		var in struct {
			Type      string `json:"type"`
			Ref       string `json:"ref"`
			MessageID string `json:"message_id"`
			Status    string `json:"status"`
		}
		if err := decodeStrict(b, &in); err != nil {
			return f, err
		}
		id, err := parseID("message_id", in.MessageID)
		if err != nil {
			return f, err
		}
		if in.Status != jobs.ReceiptDelivered && in.Status != jobs.ReceiptRead {
			return f, validation.Errorf("status", `must be "delivered" or "read"`)
		}
		f.MessageID, f.Status = id, in.Status
	case "resume":
		var in struct {
			Type  string           `json:"type"`
			Ref   string           `json:"ref"`
			After map[string]int64 `json:"after"`
		}
		if err := decodeStrict(b, &in); err != nil {
			return f, err
		}
		f.After = make(map[uuid.UUID]int64, len(in.After))
		for k, v := range in.After {
			id, err := uuid.Parse(k)
			if err != nil {
				return f, validation.Errorf("after", "key %q is not a conversation UUID", k)
			}
			if v < 0 {
				return f, validation.Errorf("after", "seq for %s must not be negative", k)
			}
			f.After[id] = v
		}
	case "ping":
	case "":
		return f, validation.Errorf("type", "is required")
	default:
		return f, &apiError{Status: http.StatusBadRequest, Code: "unknown_type", Field: "type",
			Message: "unknown frame type (want send, ack, resume or ping)"}
	}
	return f, nil
}

func (c *conn) handle(b []byte) {
	f, err := parseFrame(b)
	ctx := c.ctx
	if err == nil && countsAgainstLimit(f.Type) {
		// A frame that does work is a span of its own (with a tracer).
		var end func(status int)
		ctx, end = tracing.Frame(ctx, c.s.cfg.Tracer, f.Type)
		defer func() {
			status := http.StatusOK
			if err != nil {
				e, _ := classify(err)
				status = e.Status
			}
			end(status)
		}()
		if limited := c.s.checkRate(ctx, c.user); limited != nil {
			err = limited.apiError
		}
	}
	if err == nil {
		switch f.Type {
		case "send":
			err = c.handleSend(ctx, f)
		case "ack":
			err = c.handleAck(ctx, f)
		case "resume":
			err = c.handleResume(ctx, f)
		case "ping":
			c.send(map[string]any{"type": "pong", "ref": f.Ref})
		}
	}
	if err != nil {
		c.sendError(f.Ref, err)
	}
}

func (c *conn) handleSend(ctx context.Context, f clientFrame) error {
	if at, scheduled, err := f.Send.sendAt(time.Now()); err != nil {
		return err
	} else if scheduled {
		res, err := c.s.schedule(ctx, c.user, f.Send, at)
		if err != nil {
			return err
		}
		c.send(map[string]any{"type": "scheduled", "id": res.ID, "conversation_id": res.ConversationID, "send_at": res.SendAt, "ref": f.Ref})
		return nil
	}
	res, err := c.s.send(ctx, c.user, f.Send)
	if err != nil {
		return err
	}
	c.send(map[string]any{"type": "sent", "id": res.ID, "conversation_id": res.ConversationID, "seq": res.Seq, "status": res.Status, "ref": f.Ref})
	return nil
}

func (c *conn) handleAck(ctx context.Context, f clientFrame) error {
	ctx, cancel := context.WithTimeout(ctx, c.s.cfg.DBTimeout)
	defer cancel()
	_, err := db.RecipientOf(ctx, c.s.pool, f.MessageID, c.user)
	if errors.Is(err, db.ErrNotFound) {
		// A group message acks within the member's window.
		_, err = db.GroupMessageForMember(ctx, c.s.pool, f.MessageID, c.user)
	}
	if errors.Is(err, db.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Field: "message_id", Message: "no message with this id was sent to you"}
	}
	if err != nil {
		return err
	}
	_, err = c.s.river.Insert(ctx, jobs.DeliveryConfirmationArgs{
		MessageID: f.MessageID, UserID: c.user, Status: f.Status, At: time.Now().UTC(),
	}, nil)
	return err
}

func (c *conn) handleResume(ctx context.Context, f clientFrame) error {
	var cursor db.ResumeCursor
	total := 0
	op := c.s.opener()
	for {
		pageCtx, cancel := context.WithTimeout(ctx, c.s.cfg.DBTimeout)
		msgs, err := db.ResumeMessages(pageCtx, c.s.pool, c.user, f.After, cursor, resumePageSize)
		cancel()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			fr := delivery.Frame(m)
			fr.Status = string(m.Status)
			c.s.reveal(ctx, op, &fr, &m)
			c.send(fr)
		}
		total += len(msgs)
		if len(msgs) < resumePageSize {
			break
		}
		last := msgs[len(msgs)-1]
		cursor = db.ResumeCursor{ConversationID: last.ConversationID, Seq: last.Seq}
	}
	c.send(map[string]any{"type": "resumed", "messages": total, "ref": f.Ref})
	return nil
}
