package notifytest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Answer is how a fake HTTP provider answers one request.
type Answer struct {
	// Status and Body are the response; a zero Status is the provider's
	// success answer.
	Status int
	Body   string
	// Hang makes the server not answer until the client gives up (or
	// HangFor passes): a timeout.
	Hang bool
}

// Answers a test can give.
var (
	// ServerError is a transient failure.
	ServerError = Answer{Status: http.StatusServiceUnavailable, Body: `{"error":{"code":503,"message":"try later","status":"UNAVAILABLE"}}`}
	// TooManyRequests is a transient failure.
	TooManyRequests = Answer{Status: http.StatusTooManyRequests, Body: `{"error":{"code":429,"message":"quota exceeded","status":"RESOURCE_EXHAUSTED"}}`}
	// Timeout hangs until the client gives up.
	Timeout = Answer{Hang: true}
	// Unregistered is FCM's answer for a token that is no longer valid.
	Unregistered = Answer{Status: http.StatusNotFound, Body: `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND",` +
		`"details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`}
	// InvalidToken is FCM's answer for a malformed token.
	InvalidToken = Answer{Status: http.StatusBadRequest, Body: `{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT",` +
		`"details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},` +
		`{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"Invalid registration token"}]}]}}`}
	// PushPayloadInvalid is a 400 about the payload, not the token.
	PushPayloadInvalid = Answer{Status: http.StatusBadRequest, Body: `{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}`}
	// SMSInvalidNumber is Twilio's answer for a number it cannot text.
	SMSInvalidNumber = Answer{Status: http.StatusBadRequest, Body: `{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`}
)

// hangLimit bounds a hanging answer, so a server always shuts down.
const hangLimit = time.Minute

// httpServer is what the push and SMS servers share.
type httpServer struct {
	srv *http.Server
	l   net.Listener
	// URL is the base URL to configure the client with.
	URL string

	mu      sync.Mutex
	answers map[string]Answer
	seq     int
	hangs   chan struct{}
}

func startHTTP(addr string, h http.Handler) (*httpServer, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &httpServer{l: l, URL: "http://" + l.Addr().String(), answers: map[string]Answer{}, hangs: make(chan struct{})}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Close stops the server, ending hanging answers.
func (s *httpServer) Close() error {
	s.mu.Lock()
	select {
	case <-s.hangs:
	default:
		close(s.hangs)
	}
	s.mu.Unlock()
	_ = s.l.Close() // Serve may not have taken the listener yet
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// answer returns how to answer key (a token or a number) and the next
// sequence number.
func (s *httpServer) answer(key string) (Answer, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.answers[key], s.seq
}

func (s *httpServer) set(key string, a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[key] = a
}

// respond writes a (the caller handled success).
func (s *httpServer) respond(w http.ResponseWriter, r *http.Request, a Answer) {
	if a.Hang {
		select {
		case <-r.Context().Done():
		case <-s.hangs:
		case <-time.After(hangLimit):
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.Status)
	_, _ = w.Write([]byte(a.Body))
}

// PushRequest is one request the push server received.
type PushRequest struct {
	Path           string
	Authorized     bool
	IdempotencyKey string
	Token          string
	Title, Body    string
	Data           map[string]string
	CollapseKey    string
	// Raw is the request body.
	Raw []byte
}

// PushServer is a local FCM HTTP v1-compatible API, and the OAuth 2 token
// endpoint of the service accounts it makes (NewServiceAccount).
type PushServer struct {
	*httpServer
	projectID, credential string
	reqs                  []PushRequest

	accounts   []serviceAccount
	accountSeq int
	tokens     map[string]time.Time // access token → expiry
	minted     int
}

// NewPushServer listens on addr (127.0.0.1:0 when empty) and accepts
// POST /v1/projects/{projectID}/messages:send with "Authorization: Bearer
// {credential}" (when credential is not empty) or with an access token
// minted for one of its service accounts. Close stops it.
func NewPushServer(addr, projectID, credential string) (*PushServer, error) {
	p := &PushServer{projectID: projectID, credential: credential}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", p.serveToken)
	mux.HandleFunc("/", p.serve)
	s, err := startHTTP(addr, mux)
	if err != nil {
		return nil, err
	}
	p.httpServer = s
	return p, nil
}

// authorized reports whether an Authorization header carries the fixed
// credential or a live access token.
func (p *PushServer) authorized(header string) bool {
	bearer, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || bearer == "" {
		return false
	}
	if p.credential != "" && subtle.ConstantTimeCompare([]byte(bearer), []byte(p.credential)) == 1 {
		return true
	}
	return p.tokenValid(bearer)
}

// Answer makes the server answer pushes to token with a.
func (p *PushServer) Answer(token string, a Answer) { p.set(token, a) }

// Requests returns the requests received, in order.
func (p *PushServer) Requests() []PushRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PushRequest(nil), p.reqs...)
}

func (p *PushServer) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg, "status": code}})
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/projects/"+p.projectID+"/messages:send" {
		fail(http.StatusNotFound, "NOT_FOUND", "no such method or project")
		return
	}
	var in struct {
		Message struct {
			Token        string `json:"token"`
			Notification struct {
				Title string `json:"title"`
				Body  string `json:"body"`
			} `json:"notification"`
			Data    map[string]string `json:"data"`
			Android struct {
				CollapseKey string `json:"collapse_key"`
			} `json:"android"`
		} `json:"message"`
	}
	raw, err := readBody(r)
	req := PushRequest{
		Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key"), Raw: raw,
		Authorized: p.authorized(r.Header.Get("Authorization")),
	}
	if err == nil {
		err = json.Unmarshal(raw, &in)
	}
	m := in.Message
	req.Token, req.Title, req.Body, req.Data, req.CollapseKey = m.Token, m.Notification.Title, m.Notification.Body, m.Data, m.Android.CollapseKey
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	switch {
	case !req.Authorized:
		fail(http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		return
	case err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		fail(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	case m.Token == "":
		fail(http.StatusBadRequest, "INVALID_ARGUMENT", "message.token is required")
		return
	}
	a, seq := p.answer(m.Token)
	if a.Status == 0 && !a.Hang {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"name": fmt.Sprintf("projects/%s/messages/%d", p.projectID, seq)})
		return
	}
	p.respond(w, r, a)
}

// SMSRequest is one request the SMS server received.
type SMSRequest struct {
	Path           string
	Authorized     bool
	IdempotencyKey string
	To, From, Body string
}

// SMSServer is a local Twilio-compatible Messages API.
type SMSServer struct {
	*httpServer
	sid, token string
	reqs       []SMSRequest
}

// NewSMSServer listens on addr (127.0.0.1:0 when empty) and accepts POST
// /2010-04-01/Accounts/{sid}/Messages.json with HTTP basic auth sid:token.
// Close stops it.
func NewSMSServer(addr, sid, token string) (*SMSServer, error) {
	s := &SMSServer{sid: sid, token: token}
	hs, err := startHTTP(addr, http.HandlerFunc(s.serve))
	if err != nil {
		return nil, err
	}
	s.httpServer = hs
	return s, nil
}

// Answer makes the server answer messages to the number to with a.
func (s *SMSServer) Answer(to string, a Answer) { s.set(to, a) }

// Requests returns the requests received, in order.
func (s *SMSServer) Requests() []SMSRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMSRequest(nil), s.reqs...)
}

func (s *SMSServer) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status, code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "status": status})
	}
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+s.sid+"/Messages.json" {
		fail(http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	user, pass, ok := r.BasicAuth()
	req := SMSRequest{Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key"),
		Authorized: ok && user == s.sid && subtle.ConstantTimeCompare([]byte(pass), []byte(s.token)) == 1}
	raw, err := readBody(r)
	var form url.Values
	if err == nil {
		form, err = url.ParseQuery(string(raw))
	}
	req.To, req.From, req.Body = form.Get("To"), form.Get("From"), form.Get("Body")
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	switch {
	case !req.Authorized:
		fail(http.StatusUnauthorized, 20003, "Authenticate")
		return
	case err != nil || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
		fail(http.StatusBadRequest, 21601, "The request body must be form-encoded")
		return
	case req.To == "" || req.From == "" || req.Body == "":
		fail(http.StatusBadRequest, 21604, "A 'To', 'From' and 'Body' are required")
		return
	}
	a, seq := s.answer(req.To)
	if a.Status == 0 && !a.Hang {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{"sid": fmt.Sprintf("SM%032x", seq), "status": "queued"})
		return
	}
	s.respond(w, r, a)
}

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 1<<20))
}
