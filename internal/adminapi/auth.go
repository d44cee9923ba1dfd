package adminapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// Role is what a caller may do.
type Role string

// Roles.
const (
	RoleOperator Role = "operator" // reads and mutates
	RoleViewer   Role = "viewer"   // reads only
)

const callerKey = "caller"

// caller is who made a request, for audit lines.
type caller struct {
	Role Role
	Name string // the basic-auth user name, or "bearer"
}

func digest(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// tokenMatches compares in constant time (digests hide the length too).
func tokenMatches(given string, want *[32]byte) bool {
	if want == nil {
		return false
	}
	g := digest(given)
	return subtle.ConstantTimeCompare(g[:], want[:]) == 1
}

// authenticate admits operators and viewers by bearer token or by HTTP
// basic auth (any user name, the token as password: browsers prompt for
// it), and refuses viewers anything but GET and HEAD.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Path() == "/healthz" || c.Path() == "/openapi.json" {
			return next(c)
		}
		var who caller
		r := c.Request()
		// Browsers resend basic-auth credentials (and reach an open dev
		// server) on cross-site requests too; bearer tokens they never add.
		ambient := true
		switch {
		case s.insecure:
			who = caller{Role: RoleOperator, Name: "insecure-dev"}
		default:
			token, name := "", "bearer"
			if h := r.Header.Get("Authorization"); strings.HasPrefix(strings.ToLower(h), "bearer ") {
				token = strings.TrimSpace(h[len("bearer "):])
				ambient = false
			} else if u, p, ok := r.BasicAuth(); ok {
				token, name = p, u
			}
			switch {
			case token != "" && tokenMatches(token, s.operator):
				who = caller{Role: RoleOperator, Name: name}
			case token != "" && tokenMatches(token, s.viewer):
				who = caller{Role: RoleViewer, Name: name}
			default:
				c.Response().Header().Set("WWW-Authenticate", `Basic realm="msgrunner admin", charset="UTF-8"`)
				return newError(http.StatusUnauthorized, "unauthorized", "a valid operator or viewer token is required (Bearer, or basic auth with the token as password)")
			}
		}
		m := r.Method
		mutating := m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
		if who.Role == RoleViewer && mutating {
			return newError(http.StatusForbidden, "forbidden", "viewer tokens are read-only")
		}
		if mutating && ambient && crossSite(r) {
			return newError(http.StatusForbidden, "cross_site", "state-changing requests from another site are refused; use a bearer token or this server's own pages")
		}
		c.Set(callerKey, who)
		return next(c)
	}
}

func callerOf(c echo.Context) caller {
	who, _ := c.Get(callerKey).(caller)
	return who
}

// crossSite reports whether a browser sent r from another site: by
// Sec-Fetch-Site when present, else by an Origin that is not this host.
// Non-browser clients send neither and are not cross-site.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host
}
