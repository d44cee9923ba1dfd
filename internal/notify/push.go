package notify

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"
)

// DefaultPushBaseURL is FCM's API root.
const DefaultPushBaseURL = "https://fcm.googleapis.com"

// PushConfig configures an FCM HTTP v1-compatible push provider.
type PushConfig struct {
	// BaseURL is the API root; messages are POSTed to
	// {BaseURL}/v1/projects/{ProjectID}/messages:send.
	BaseURL string
	// ProjectID is the FCM project. Required.
	ProjectID string
	// Credential is sent as "Authorization: Bearer <Credential>": a fixed
	// credential, for FCM-compatible gateways that take one. Exactly one of
	// Credential and ServiceAccountJSON is required.
	Credential string
	// ServiceAccountJSON is a Google service account key (the JSON file
	// the Firebase or Cloud console downloads). The provider signs a JWT
	// with its private key, exchanges it at the key's token_uri for an
	// OAuth 2 access token (scope FCMScope), sends that, and mints a new one
	// shortly before it expires, or after FCM refuses it, as real FCM
	// requires.
	ServiceAccountJSON []byte
	// Timeout bounds one request; DefaultTimeout when zero.
	Timeout time.Duration
}

// FCMScope is the OAuth 2 scope of the access tokens minted from a
// service account: sending FCM messages.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCM pushes through an FCM HTTP v1-compatible API. It is safe for
// concurrent use.
type FCM struct {
	endpoint   string
	credential string // fixed credential; empty with a service account
	client     *http.Client

	account *jwt.Config // the service account; nil with a fixed credential
	tokenMu sync.Mutex
	tokens  oauth2.TokenSource // cached access tokens of account
}

// NewFCM checks cfg and returns the provider. Errors name the field.
func NewFCM(cfg PushConfig) (*FCM, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultPushBaseURL
	}
	base, err := parseBaseURL("BaseURL", cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.ProjectID == "" || strings.ContainsAny(cfg.ProjectID, "/?#% "):
		return nil, errors.New("ProjectID is required and must be a plain project id")
	case cfg.Credential != "" && len(cfg.ServiceAccountJSON) > 0:
		return nil, errors.New("Credential must be empty when ServiceAccountJSON is set: use one or the other")
	case len(cfg.ServiceAccountJSON) == 0 && (cfg.Credential == "" || strings.ContainsAny(cfg.Credential, "\r\n")):
		return nil, errors.New("Credential is required (or ServiceAccountJSON) and must be one line")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	p := &FCM{
		endpoint:   base + "/v1/projects/" + url.PathEscape(cfg.ProjectID) + "/messages:send",
		credential: cfg.Credential,
		client:     newHTTPClient(cfg.Timeout),
	}
	if len(cfg.ServiceAccountJSON) > 0 {
		account, err := parseServiceAccount(cfg.ServiceAccountJSON)
		if err != nil {
			return nil, err
		}
		p.account = account
		p.tokens = p.newTokenSource()
	}
	return p, nil
}

// parseServiceAccount reads a service account key and checks, without
// any request, that it can sign: a bad key fails at start, not at the
// first push. Errors never quote the key.
func parseServiceAccount(raw []byte) (*jwt.Config, error) {
	account, err := google.JWTConfigFromJSON(raw, FCMScope)
	if err != nil {
		return nil, errors.New("ServiceAccountJSON is not a Google service account key (a JSON object of type service_account)")
	}
	if account.Email == "" {
		return nil, errors.New("ServiceAccountJSON has no client_email")
	}
	// A key without token_uri gets Google's token endpoint.
	if _, err := parseBaseURL("token_uri", account.TokenURL); err != nil {
		return nil, fmt.Errorf("ServiceAccountJSON's %w", err)
	}
	block, _ := pem.Decode(account.PrivateKey)
	if block == nil {
		return nil, errors.New("ServiceAccountJSON's private_key is not a PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	}
	if _, ok := key.(*rsa.PrivateKey); err != nil || !ok {
		return nil, errors.New("ServiceAccountJSON's private_key is not an RSA private key")
	}
	return account, nil
}

// newTokenSource returns a fresh cache of the service account's access
// tokens (each reused until 10 s before it expires). Token requests go
// through the provider's client, so its timeout bounds them.
func (p *FCM) newTokenSource() oauth2.TokenSource {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, p.client)
	return p.account.TokenSource(ctx)
}

// authorize sets req's Authorization header: the fixed credential, or a
// current access token of the service account.
func (p *FCM) authorize(req *http.Request) error {
	if p.account == nil {
		req.Header.Set("Authorization", "Bearer "+p.credential)
		return nil
	}
	p.tokenMu.Lock()
	tokens := p.tokens
	p.tokenMu.Unlock()
	tok, err := tokens.Token()
	if err != nil {
		return &Error{Provider: "push", Msg: "getting an access token for the service account: " + tokenError(err)}
	}
	tok.SetAuthHeader(req)
	return nil
}

// dropToken forgets the cached access token, so the next push mints one:
// FCM refused it before it expired (revoked, or the key was rotated).
func (p *FCM) dropToken() {
	p.tokenMu.Lock()
	p.tokens = p.newTokenSource()
	p.tokenMu.Unlock()
}

// tokenError describes a failed token exchange by the token endpoint's
// error code and description (RFC 6749 5.2), or the transport's error.
func tokenError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code, desc := re.ErrorCode, re.ErrorDescription
		if code == "" {
			// The JWT flow leaves the error body unparsed.
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(re.Body, &body) == nil {
				code, desc = body.Error, body.Description
			}
		}
		msg := strings.TrimSpace(code + " " + desc)
		if msg == "" {
			msg = http.StatusText(re.Response.StatusCode)
		}
		return fmt.Sprintf("the token endpoint answered %d: %s", re.Response.StatusCode, shorten(msg))
	}
	return shorten(err.Error())
}

type fcmRequest struct {
	Message fcmMessage `json:"message"`
}

type fcmMessage struct {
	Token        string            `json:"token"`
	Notification fcmNotification   `json:"notification"`
	Data         map[string]string `json:"data,omitempty"`
	Android      *fcmAndroid       `json:"android,omitempty"`
	APNS         *fcmAPNS          `json:"apns,omitempty"`
}

type fcmNotification struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

type fcmAndroid struct {
	CollapseKey string `json:"collapse_key"`
}

type fcmAPNS struct {
	Headers map[string]string `json:"headers"`
}

// fcmError is FCM's error body (google.rpc.Status with FCM details).
type fcmError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

// Push sends m and returns FCM's message name. A token FCM calls
// UNREGISTERED, or INVALID_ARGUMENT naming the token, yields an error
// matching ErrInvalidToken (and ErrPermanent).
func (p *FCM) Push(ctx context.Context, m PushMessage) (string, error) {
	msg := fcmMessage{Token: m.Token, Notification: fcmNotification{Title: m.Title, Body: m.Body}, Data: m.Data}
	if m.CollapseKey != "" {
		if len(m.CollapseKey) > 64 {
			return "", &Error{Provider: "push", Permanent: true, Msg: "collapse key longer than 64 bytes"}
		}
		msg.Android = &fcmAndroid{CollapseKey: m.CollapseKey}
		msg.APNS = &fcmAPNS{Headers: map[string]string{"apns-collapse-id": m.CollapseKey}}
	}
	body, err := json.Marshal(fcmRequest{Message: msg})
	if err != nil {
		return "", fmt.Errorf("push: encoding the request: %w", err)
	}
	req, err := http.NewRequest(http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("push: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if err := p.authorize(req); err != nil {
		return "", err
	}
	if m.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", m.IdempotencyKey)
	}
	status, answer, err := post(ctx, p.client, "push", req)
	if err != nil {
		return "", err
	}
	if status/100 == 2 {
		var ok struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(answer, &ok) // accepted either way; the name is a bonus
		return ok.Name, nil
	}
	var fe fcmError
	_ = json.Unmarshal(answer, &fe)
	code := ""
	tokenField := false
	for _, d := range fe.Error.Details {
		if d.ErrorCode != "" {
			code = d.ErrorCode
		}
		for _, v := range d.FieldViolations {
			tokenField = tokenField || v.Field == "message.token"
		}
	}
	if code == "" {
		code = fe.Error.Status
	}
	e := classifyStatus("push", status, strings.TrimSpace(code+" "+fe.Error.Message))
	switch {
	case code == "UNREGISTERED":
		e.InvalidToken = true
	case code == "INVALID_ARGUMENT" && (tokenField || strings.Contains(strings.ToLower(fe.Error.Message), "registration token")):
		e.InvalidToken = true
	}
	e.Permanent = e.Permanent || e.InvalidToken
	if status == http.StatusUnauthorized && p.account != nil {
		// A minted token refused before its expiry: the retry mints
		// another, which may well be taken.
		p.dropToken()
		e.Permanent = false
	}
	return "", e
}
