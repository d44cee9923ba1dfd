package adminapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
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
		if c.Path() == "/healthz" {
			return next(c)
		}
		var who caller
		switch {
		case s.insecure:
			who = caller{Role: RoleOperator, Name: "insecure-dev"}
		default:
			token, name := "", "bearer"
			r := c.Request()
			if h := r.Header.Get("Authorization"); strings.HasPrefix(strings.ToLower(h), "bearer ") {
				token = strings.TrimSpace(h[len("bearer "):])
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
		m := c.Request().Method
		if who.Role == RoleViewer && m != http.MethodGet && m != http.MethodHead {
			return newError(http.StatusForbidden, "forbidden", "viewer tokens are read-only")
		}
		c.Set(callerKey, who)
		return next(c)
	}
}

func callerOf(c echo.Context) caller {
	who, _ := c.Get(callerKey).(caller)
	return who
}
