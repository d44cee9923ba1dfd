package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds one provider call when a config leaves it zero.
const DefaultTimeout = 10 * time.Second

// maxResponse bounds how much of a provider's answer is read.
const maxResponse = 64 << 10

// newHTTPClient returns a client that never follows redirects (a POST
// turned into a GET elsewhere is not a send) and gives up after timeout.
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		Transport:     http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// parseBaseURL checks a provider's base URL: http or https, a host, no
// credentials, query or fragment. The trailing slash is dropped.
func parseBaseURL(field, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s must be an http or https URL", field)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s must not carry credentials, a query or a fragment", field)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// post sends req and returns the status and (bounded) body. Failures to
// get an answer are transient; the error names the provider, never the
// request's credentials.
func post(ctx context.Context, client *http.Client, provider string, req *http.Request) (int, []byte, error) {
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		// url.Error quotes the URL, which carries no credentials.
		return 0, nil, fmt.Errorf("%s provider: %w", provider, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, fmt.Errorf("%s provider: reading the answer: %w", provider, err)
	}
	return resp.StatusCode, body, nil
}

// classifyStatus turns a non-2xx HTTP status into an *Error: 429 and 5xx
// are transient, the rest permanent.
func classifyStatus(provider string, status int, msg string) *Error {
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Provider: provider, Code: status, Msg: shorten(msg),
		Permanent: status != http.StatusTooManyRequests && status < 500}
}
