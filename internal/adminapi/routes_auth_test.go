package adminapi_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
)

// TestEveryRegisteredRouteRefusesStrangersAndViewersCannotMutate walks the
// routes the server actually registers (not a hand-kept list), so a route
// added later without protection fails here. The only public routes are
// GET /healthz and GET /openapi.json.
func TestEveryRegisteredRouteRefusesStrangersAndViewersCannotMutate(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	e, ok := b.server.Handler().(*echo.Echo)
	require.True(t, ok, "the admin handler is an *echo.Echo")
	public := []string{"GET /healthz", "GET /openapi.json"}

	// Concrete paths for the patterns: River UI's API and page under the
	// wildcard, a job id and a queue that do not exist (a refusal must
	// come before any lookup).
	param := regexp.MustCompile(`:[a-z_]+`)
	concrete := func(pattern string) []string {
		p := param.ReplaceAllStringFunc(pattern, func(name string) string {
			if name == ":id" {
				return "424242"
			}
			return "no-such-queue"
		})
		if strings.HasSuffix(p, "/*") {
			base := strings.TrimSuffix(p, "*")
			return []string{base, base + "api/jobs", base + "api/queues/no-such-queue/pause", base + "jobs/1"}
		}
		return []string{p}
	}
	send := func(method, path string, auth func(*http.Request)) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if auth != nil {
			auth(req)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(user, pass string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	wrong := map[string]func(*http.Request){
		"no credentials":              nil,
		"empty bearer":                bearer(""),
		"wrong bearer":                bearer("wrong-token-0123456789"),
		"operator token plus a byte":  bearer(operatorToken + "x"),
		"operator token minus a byte": bearer(operatorToken[:len(operatorToken)-1]),
		"viewer token in upper case":  bearer(strings.ToUpper(viewerToken)),
		"token as basic user name":    basic(operatorToken, ""),
		"wrong basic password":        basic("ops", "wrong-token-0123456789"),
		"unknown scheme":              func(r *http.Request) { r.Header.Set("Authorization", "Token "+operatorToken) },
		"token in the query":          func(r *http.Request) { r.URL.RawQuery = "token=" + operatorToken },
	}

	seen := 0
	var publicSeen []string
	for _, rt := range e.Routes() {
		key := rt.Method + " " + rt.Path
		if slices.Contains(public, key) {
			publicSeen = append(publicSeen, key)
			continue
		}
		mutating := rt.Method != http.MethodGet && rt.Method != http.MethodHead && rt.Method != http.MethodOptions
		for _, path := range concrete(rt.Path) {
			seen++
			// In order: the routes share one server and its data.
			t.Run(rt.Method+" "+path, func(t *testing.T) {
				for name, auth := range wrong {
					rec := send(rt.Method, path, auth)
					require.Equal(t, http.StatusUnauthorized, rec.Code, "with %s: %s", name, rec.Body)
					require.NotContains(t, rec.Body.String(), operatorToken, "refusals never echo a token")
				}
				rec := send(rt.Method, path, bearer(viewerToken))
				if mutating {
					require.Equal(t, http.StatusForbidden, rec.Code, "viewer: %s", rec.Body)
				} else {
					require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, rec.Code, "viewer may read")
				}
				for _, auth := range []func(*http.Request){bearer(operatorToken), basic("ops", operatorToken)} {
					rec = send(rt.Method, path, auth)
					require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, rec.Code, "operator: %s", rec.Body)
				}
			})
		}
	}
	require.ElementsMatch(t, public, publicSeen, "the public routes exist")
	require.Greater(t, seen, 20, "the walk saw the routes (River UI's methods included)")

	// The walk covers River UI and both /metrics-like routes.
	var paths []string
	for _, rt := range e.Routes() {
		paths = append(paths, rt.Path)
	}
	for _, p := range []string{"/river/*", "/metrics", "/queue/metrics"} {
		require.Contains(t, paths, p)
	}
}
