package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
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
	// Credential is sent as "Authorization: Bearer <Credential>". Required.
	// (Real FCM wants a short-lived OAuth 2 access token: refreshing it is
	// not built; see the README.)
	Credential string
	// Timeout bounds one request; DefaultTimeout when zero.
	Timeout time.Duration
}

// FCM pushes through an FCM HTTP v1-compatible API. It is safe for
// concurrent use.
type FCM struct {
	endpoint   string
	credential string
	client     *http.Client
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
	case cfg.Credential == "" || strings.ContainsAny(cfg.Credential, "\r\n"):
		return nil, errors.New("Credential is required and must be one line")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &FCM{
		endpoint:   base + "/v1/projects/" + url.PathEscape(cfg.ProjectID) + "/messages:send",
		credential: cfg.Credential,
		client:     newHTTPClient(cfg.Timeout),
	}, nil
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
	req.Header.Set("Authorization", "Bearer "+p.credential)
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
	return "", e
}
