package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// Websocket timing.
const (
	dialTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	// pingInterval is how often the client checks that the gateway still
	// answers; a ping unanswered within pingTimeout drops the connection.
	pingInterval = 20 * time.Second
	pingTimeout  = 10 * time.Second
	// maxFrame bounds a frame read (the gateway's own limit is 1 MiB).
	maxFrame = 4 << 20
)

// conversation is what Run knows of one conversation.
type conversation struct {
	// cursor is the seq up to which messages were handed to OnMessage.
	cursor int64
	// held are live messages that arrived ahead of cursor+1, each with the
	// number of resumes the client had sent before it arrived.
	held map[int64]heldMessage
}

type heldMessage struct {
	msg           Message
	resumesBefore int64
}

// ackFrame is an ack the client sends.
type ackFrame struct {
	Type      string    `json:"type"` // "ack"
	MessageID uuid.UUID `json:"message_id"`
	Status    string    `json:"status"`
}

// resumeFrame is a resume the client sends; an empty After asks for
// everything ("after": {}).
type resumeFrame struct {
	Type  string              `json:"type"` // "resume"
	Ref   string              `json:"ref"`
	After map[uuid.UUID]int64 `json:"after"`
}

// session is one websocket connection.
type session struct {
	c        *Client
	conn     *websocket.Conn
	endpoint string
	ready    bool

	resumeNum    int64 // the number (Stats().Resumes) of the last resume sent here
	inFlight     bool  // that resume awaits its resumed frame
	again        bool  // another resume is wanted once it ends
	retryResume  <-chan time.Time
	resumeErrors int
}

// Run connects to a gateway and hands what arrives to the callbacks of
// Config until ctx ends (it then returns ctx's error) or a gateway refuses
// the token (ErrUnauthorized). A dropped connection is made again, to the
// next endpoint, after a jittered exponential backoff; after every ready
// and resync Run resumes from the cursors. Run runs at most once at a
// time per Client.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("client: Run is already running")
	}
	defer c.running.Store(false)
	if err := c.loadCursors(ctx); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		u := c.endpoint()
		s, err := c.dial(ctx, u)
		if err == nil {
			err = s.run(ctx)
			if s.ready {
				attempt = 0
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.stats.reconnects.Add(1)
		c.setState(State{Endpoint: u.String(), Err: err})
		if errors.Is(err, ErrUnauthorized) {
			return err
		}
		c.log.Debug("client: connection ended; reconnecting", "endpoint", u.String(), "err", err)
		c.failover(u)
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return err
		}
	}
}

// loadCursors reads the cursor store into the conversations map.
func (c *Client) loadCursors(ctx context.Context) error {
	saved, err := c.cfg.Cursors.Load(ctx)
	if err != nil {
		return fmt.Errorf("client: loading cursors: %w", err)
	}
	for conv, seq := range saved {
		cv := c.conv(conv)
		cv.cursor = max(cv.cursor, seq)
	}
	return nil
}

func (c *Client) conv(id uuid.UUID) *conversation {
	cv := c.convs[id]
	if cv == nil {
		cv = &conversation{}
		c.convs[id] = cv
	}
	return cv
}

func (c *Client) setState(s State) {
	if c.cfg.OnState != nil {
		c.cfg.OnState(s)
	}
}

// dial opens a websocket to u.
func (c *Client) dial(ctx context.Context, u *url.URL) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	tok, err := c.cfg.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: getting the token: %w", err)
	}
	target := *u
	target.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	target.Path += "/v1/ws"
	conn, resp, err := websocket.Dial(ctx, target.String(), &websocket.DialOptions{
		HTTPClient: c.http,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}},
	})
	if resp != nil && resp.StatusCode == http.StatusUnauthorized {
		return nil, ErrUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("client: connecting to %s: %w", u, err)
	}
	conn.SetReadLimit(maxFrame)
	return &session{c: c, conn: conn, endpoint: u.String()}, nil
}

// inbound is a frame read, or the error that ended reading.
type inbound struct {
	data []byte
	err  error
}

// run reads the connection until it ends.
func (s *session) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.conn.CloseNow()
	defer s.c.detach(s)

	frames := make(chan inbound, 64)
	go func() {
		for {
			_, data, err := s.conn.Read(ctx)
			select {
			case frames <- inbound{data, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	go s.keepAlive(ctx)

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.retryResume:
			s.retryResume = nil
			if err := s.resume(ctx); err != nil {
				return err
			}
		case in := <-frames:
			if in.err != nil {
				return in.err
			}
			if err := s.handle(ctx, in.data); err != nil {
				return err
			}
		}
	}
}

// keepAlive pings the gateway, and drops the connection when a ping goes
// unanswered (a gateway gone without closing it).
func (s *session) keepAlive(ctx context.Context) {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := s.conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				s.conn.CloseNow()
				return
			}
		}
	}
}

// write sends one frame.
func (s *session) write(ctx context.Context, f any) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, data)
}

// serverFrame is the envelope of every frame the gateway sends.
type serverFrame struct {
	Type    string `json:"type"`
	Ref     string `json:"ref"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handle acts on one frame.
func (s *session) handle(ctx context.Context, data []byte) error {
	var f serverFrame
	if err := json.Unmarshal(data, &f); err != nil {
		s.c.log.Warn("client: ignoring a frame that is not JSON", "endpoint", s.endpoint)
		return nil
	}
	switch f.Type {
	case "ready":
		s.ready = true
		s.c.stats.connects.Add(1)
		if err := s.c.attach(ctx, s); err != nil {
			return err
		}
		s.c.setState(State{Connected: true, Endpoint: s.endpoint})
		return s.resume(ctx)
	case "resync":
		return s.resume(ctx)
	case "message":
		var m Message
		if err := json.Unmarshal(data, &m); err != nil || m.ConversationID == uuid.Nil || m.Seq <= 0 {
			s.c.log.Warn("client: ignoring a message frame without conversation or seq", "endpoint", s.endpoint)
			return nil
		}
		m.Raw = append(json.RawMessage(nil), data...)
		return s.message(ctx, m)
	case "resumed":
		if f.Ref == resumeRef(s.resumeNum) && s.inFlight {
			s.inFlight, s.resumeErrors = false, 0
			s.releaseHeld(ctx, s.resumeNum)
			if s.again {
				return s.resume(ctx)
			}
		}
	case "receipt":
		var r Receipt
		if json.Unmarshal(data, &r) == nil && s.c.cfg.OnReceipt != nil {
			s.c.cfg.OnReceipt(r)
		}
	case "notification":
		var n Notification
		if json.Unmarshal(data, &n) == nil && s.c.cfg.OnNotification != nil {
			s.c.cfg.OnNotification(n)
		}
	case "error":
		if f.Ref == resumeRef(s.resumeNum) && s.inFlight {
			// The resume failed (say the database was briefly away): try
			// it again after a backoff.
			s.inFlight = false
			s.retryResume = time.After(s.c.backoff(s.resumeErrors))
			s.resumeErrors++
		}
		s.c.log.Warn("client: the gateway refused a frame", "endpoint", s.endpoint, "code", f.Code, "message", f.Message, "ref", f.Ref)
	}
	return nil
}

// resume asks for everything after the cursors, or marks that another
// resume is wanted when one is in flight.
func (s *session) resume(ctx context.Context) error {
	if s.inFlight {
		s.again = true
		return nil
	}
	after := make(map[uuid.UUID]int64, len(s.c.convs))
	for id, cv := range s.c.convs {
		if cv.cursor > 0 {
			after[id] = cv.cursor
		}
	}
	s.resumeNum = s.c.stats.resumes.Add(1)
	s.inFlight, s.again = true, false
	return s.write(ctx, resumeFrame{Type: "resume", Ref: resumeRef(s.resumeNum), After: after})
}

// resumeRef is the ref of the client's resume number n.
func resumeRef(n int64) string { return "resume-" + strconv.FormatInt(n, 10) }

// message places one message frame: handed over when it is the next of
// its conversation or comes from a resume, dropped when already handed
// over, held (and a resume asked for) when it is ahead.
func (s *session) message(ctx context.Context, m Message) error {
	cv := s.c.conv(m.ConversationID)
	switch {
	case m.Seq <= cv.cursor:
		s.c.stats.duplicates.Add(1)
	case m.Seq == cv.cursor+1 || m.Status != "":
		// A resumed message is the next one the user may see in its
		// conversation (history it deleted, or messages removed by
		// retention, leave gaps no resume fills).
		s.c.deliver(ctx, cv, m)
		s.c.drain(ctx, cv)
	default:
		if cv.held == nil {
			cv.held = map[int64]heldMessage{}
		}
		if _, dup := cv.held[m.Seq]; dup {
			s.c.stats.duplicates.Add(1)
			return nil
		}
		cv.held[m.Seq] = heldMessage{msg: m, resumesBefore: s.c.stats.resumes.Load()}
		s.c.stats.gaps.Add(1)
		return s.resume(ctx)
	}
	return nil
}

// releaseHeld hands over, in seq order, the held messages that arrived
// before resume number done was sent: that resume read everything
// committed after their cursors, so what it did not bring does not exist
// for the user.
func (s *session) releaseHeld(ctx context.Context, done int64) {
	for _, cv := range s.c.convs {
		if len(cv.held) == 0 {
			continue
		}
		seqs := make([]int64, 0, len(cv.held))
		for seq, h := range cv.held {
			if h.resumesBefore < done {
				seqs = append(seqs, seq)
			}
		}
		slices.Sort(seqs)
		for _, seq := range seqs {
			h, ok := cv.held[seq]
			if !ok {
				continue
			}
			delete(cv.held, seq)
			if seq <= cv.cursor {
				s.c.stats.duplicates.Add(1)
				continue
			}
			s.c.deliver(ctx, cv, h.msg)
			s.c.drain(ctx, cv)
		}
	}
}

// deliver hands m to OnMessage and moves its conversation's cursor.
func (c *Client) deliver(ctx context.Context, cv *conversation, m Message) {
	cv.cursor = m.Seq
	for seq := range cv.held {
		if seq <= cv.cursor {
			delete(cv.held, seq)
			c.stats.duplicates.Add(1)
		}
	}
	c.stats.delivered.Add(1)
	if c.cfg.OnMessage != nil {
		c.cfg.OnMessage(m)
	}
	if err := c.cfg.Cursors.Save(ctx, m.ConversationID, m.Seq); err != nil {
		c.log.Warn("client: saving a cursor failed; a restart may receive this message again", "err", err)
	}
}

// drain hands over held messages that follow the cursor.
func (c *Client) drain(ctx context.Context, cv *conversation) {
	for {
		h, ok := cv.held[cv.cursor+1]
		if !ok {
			return
		}
		delete(cv.held, cv.cursor+1)
		c.deliver(ctx, cv, h.msg)
	}
}

// Ack tells the sender that message id was delivered to or read by the
// user ("delivered" or "read"). Sent on the websocket when connected, and
// otherwise kept (up to 10,000) and sent after the next ready. An ack
// written just before a connection dropped may be lost with it; acks are
// idempotent, so acking again is always safe.
func (c *Client) Ack(ctx context.Context, id uuid.UUID, status string) error {
	if status != "delivered" && status != "read" {
		return fmt.Errorf("client: ack status must be delivered or read, got %q", status)
	}
	f := ackFrame{Type: "ack", MessageID: id, Status: status}
	c.mu.Lock()
	s := c.live
	if s == nil {
		if len(c.acks) >= maxQueuedAcks {
			c.mu.Unlock()
			return errors.New("client: not connected and 10,000 acks are already waiting")
		}
		c.acks = append(c.acks, f)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if err := s.write(ctx, f); err != nil {
		c.mu.Lock()
		if len(c.acks) < maxQueuedAcks {
			c.acks = append(c.acks, f)
		}
		c.mu.Unlock()
	}
	return nil
}

// attach makes s the live session and sends the acks kept meanwhile.
func (c *Client) attach(ctx context.Context, s *session) error {
	c.mu.Lock()
	c.live = s
	acks := c.acks
	c.acks = nil
	c.mu.Unlock()
	for i, f := range acks {
		if err := s.write(ctx, f); err != nil {
			c.mu.Lock()
			c.acks = append(acks[i:], c.acks...)
			c.mu.Unlock()
			return err
		}
	}
	return nil
}

// detach clears the live session when s ends.
func (c *Client) detach(s *session) {
	c.mu.Lock()
	if c.live == s {
		c.live = nil
	}
	c.mu.Unlock()
}
