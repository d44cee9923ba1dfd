// Package apitest checks servers against the OpenAPI documents of package
// api in tests: every route echo serves is documented and every documented
// route is served, and real requests, responses and websocket frames
// validate against the document (pb33f/libopenapi-validator, a JSON Schema
// 2020-12 validator for OpenAPI 3.1).
package apitest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/msgrunner/msgrunner/api"
)

// Doc is one OpenAPI document, ready to check against.
type Doc struct {
	name   string
	model  *v3.Document
	mu     sync.Mutex // the validators are not safe for concurrent use
	http   validator.Validator
	schema schema_validation.SchemaValidator
	// unchecked are path prefixes served by another party's code, which
	// the document leaves out.
	unchecked []string
}

var (
	gateway = sync.OnceValues(func() (*Doc, error) { return load("gateway.yaml", api.GatewayYAML()) })
	admin   = sync.OnceValues(func() (*Doc, error) {
		d, err := load("admin.yaml", api.AdminYAML())
		if d != nil {
			// River UI's own pages and API, served under /river/.
			d.unchecked = []string{"/river/"}
		}
		return d, err
	})
)

// Gateway returns the gateway's document.
func Gateway(t testing.TB) *Doc { return must(t, gateway) }

// Admin returns the admin server's document.
func Admin(t testing.TB) *Doc { return must(t, admin) }

func must(t testing.TB, get func() (*Doc, error)) *Doc {
	t.Helper()
	d, err := get()
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return d
}

func load(name string, spec []byte) (*Doc, error) {
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("%s: building the model: %w", name, err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", name, errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %s", name, describe(verrs))
	}
	return &Doc{name: name, model: &m.Model, http: v, schema: schema_validation.NewSchemaValidator()}, nil
}

func describe(errs []*liberrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  %s: %s", e.Message, e.Reason)
		for _, s := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n    at %s: %s", s.FieldPath, s.Reason)
		}
	}
	return b.String()
}

// Operations returns "METHOD /path" for every operation the document
// describes, paths in echo's style (/v1/messages/:id), sorted.
func (d *Doc) Operations() []string {
	var out []string
	for path, item := range d.model.Paths.PathItems.FromOldest() {
		echoPath := templateParam.ReplaceAllString(path, ":$1")
		for method := range item.GetOperations().FromOldest() {
			out = append(out, strings.ToUpper(method)+" "+echoPath)
		}
	}
	sort.Strings(out)
	return out
}

var templateParam = regexp.MustCompile(`\{([^}]+)\}`)

// CheckRoutes fails t unless the routes e serves and the operations the
// document describes are the same, leaving out routes matching skip
// ("METHOD /path" with echo's path, or "* /path" for every method).
func (d *Doc) CheckRoutes(t testing.TB, e *echo.Echo, skip ...string) {
	t.Helper()
	skipped := func(op string) bool {
		_, path, _ := strings.Cut(op, " ")
		return slices.Contains(skip, op) || slices.Contains(skip, "* "+path)
	}
	var served []string
	for _, r := range e.Routes() {
		op := r.Method + " " + r.Path
		if strings.HasPrefix(r.Method, "echo_route_") || skipped(op) || slices.Contains(served, op) {
			continue
		}
		served = append(served, op)
	}
	sort.Strings(served)
	documented := d.Operations()
	var missing, extra []string
	for _, op := range served {
		if !slices.Contains(documented, op) {
			missing = append(missing, op)
		}
	}
	for _, op := range documented {
		if !slices.Contains(served, op) && !skipped(op) {
			extra = append(extra, op)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s: routes served but not documented: %v", d.name, missing)
	}
	if len(extra) > 0 {
		t.Errorf("%s: operations documented but not served: %v", d.name, extra)
	}
}

// Response fails t when the response to req (whose body is body) does not
// match the document: its status must be one the operation lists, with
// that status's content type and schema. Requests to paths or methods the
// document does not describe are checked only to answer 404 or 405.
func (d *Doc) Response(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	for _, p := range d.unchecked {
		if strings.HasPrefix(req.URL.Path, p) {
			return
		}
	}
	if !d.describes(req) {
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %s %s is not documented and answered %d", d.name, req.Method, req.URL.Path, resp.StatusCode)
		}
		return
	}
	copied := *resp
	copied.Body = io.NopCloser(bytes.NewReader(body))
	d.mu.Lock()
	ok, errs := d.http.ValidateHttpResponse(req, &copied)
	d.mu.Unlock()
	if !ok {
		t.Errorf("%s: the answer %d to %s %s does not match the document: %s\nbody: %.500s",
			d.name, resp.StatusCode, req.Method, req.URL.EscapedPath(), describe(errs), body)
	}
}

// describes reports whether the document has an operation for req's
// method and path.
func (d *Doc) describes(req *http.Request) bool {
	for path, item := range d.model.Paths.PathItems.FromOldest() {
		if !pathMatches(path, req.URL.EscapedPath()) {
			continue
		}
		for method := range item.GetOperations().FromOldest() {
			if strings.EqualFold(method, req.Method) {
				return true
			}
		}
	}
	return false
}

// pathMatches reports whether a concrete path fits a template.
func pathMatches(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if strings.HasPrefix(ts[i], "{") {
			if ps[i] == "" {
				return false
			}
			continue
		}
		if ts[i] != ps[i] {
			return false
		}
	}
	return true
}

// Schema fails t when data does not validate against the named schema of
// the document's components (for websocket frames: "ServerFrame",
// "ClientFrame").
func (d *Doc) Schema(t testing.TB, name string, data []byte) {
	t.Helper()
	proxy := d.model.Components.Schemas.GetOrZero(name)
	if proxy == nil {
		t.Fatalf("%s has no schema %s", d.name, name)
	}
	d.mu.Lock()
	ok, errs := d.schema.ValidateSchemaBytes(proxy.Schema(), data)
	d.mu.Unlock()
	if !ok {
		t.Errorf("%s: this does not validate against %s: %s\n%.500s", d.name, name, describe(errs), data)
	}
}

// Checking is an http.RoundTripper that checks every answer from the
// servers registered with Serve against their document, so a test suite
// validates all the traffic its tests make. Failures are kept for
// Failures (TestMain reports them), as the round trip knows no test.
type Checking struct {
	next http.RoundTripper

	mu       sync.Mutex
	servers  map[string]*Doc // host:port → its document
	failures []string
}

// Install puts a Checking in front of http.DefaultTransport and returns it.
func Install() *Checking {
	c := &Checking{next: http.DefaultTransport, servers: map[string]*Doc{}}
	http.DefaultTransport = c
	return c
}

// Serve registers addr (host:port) as a server answering doc's API.
func (c *Checking) Serve(addr string, doc *Doc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.servers[addr] = doc
}

// RoundTrip implements http.RoundTripper.
func (c *Checking) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, err
	}
	c.mu.Lock()
	doc := c.servers[req.URL.Host]
	c.mu.Unlock()
	if doc == nil {
		return resp, nil
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil // the caller sees the short body and fails on it
	}
	rec := &recorder{}
	doc.Response(rec, req, resp, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if len(rec.errs) > 0 {
		c.mu.Lock()
		c.failures = append(c.failures, rec.errs...)
		c.mu.Unlock()
	}
	return resp, nil
}

// Failures returns what did not match, one entry per answer.
func (c *Checking) Failures() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.failures)
}

// recorder is the testing.TB that Response reports to inside RoundTrip.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
