// Package config reads settings from an environment lookup function. It
// never reads the process environment itself: binaries in cmd/ pass
// os.Getenv (tests pass a map), so configuration stays explicit.
//
// A Reader collects every problem instead of stopping at the first, and each
// problem names its variable, so one run of a misconfigured binary tells the
// operator everything to fix.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgrunner/msgrunner/internal/attachments"
	"github.com/msgrunner/msgrunner/internal/keyring"
)

// Reader reads typed values from an environment lookup function.
// It is not safe for concurrent use.
type Reader struct {
	getenv func(string) string
	errs   []error
}

// NewReader returns a Reader over getenv.
func NewReader(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// Err returns every problem found so far, joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Fail records a problem with variable name.
func (r *Reader) Fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// Lookup returns the trimmed value of name and whether it is set and
// non-empty.
func (r *Reader) Lookup(name string) (string, bool) {
	v := strings.TrimSpace(r.getenv(name))
	return v, v != ""
}

// String returns name's value, or def when unset.
func (r *Reader) String(name, def string) string {
	if v, ok := r.Lookup(name); ok {
		return v
	}
	return def
}

// Int returns name's value as an integer within [lo, hi], or def when unset.
func (r *Reader) Int(name string, def, lo, hi int) int {
	v, ok := r.Lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.Fail(name, "%q is not an integer", v)
		return def
	}
	if n < lo || n > hi {
		r.Fail(name, "%d is out of range [%d, %d]", n, lo, hi)
		return def
	}
	return n
}

// Duration returns name's value as a Go duration (such as 250ms, 30s, 24h)
// within [lo, hi], or def when unset.
func (r *Reader) Duration(name string, def, lo, hi time.Duration) time.Duration {
	v, ok := r.Lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.Fail(name, "%q is not a duration (examples: 250ms, 30s, 24h)", v)
		return def
	}
	if d < lo || d > hi {
		r.Fail(name, "%s is out of range [%s, %s]", d, lo, hi)
		return def
	}
	return d
}

// Bool returns name's value as a boolean (1/0, true/false, yes/no), or def.
func (r *Reader) Bool(name string, def bool) bool {
	v, ok := r.Lookup(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	r.Fail(name, "%q is not a boolean (use true or false)", v)
	return def
}

// Addr returns name's value as a listen address host:port, or def.
func (r *Reader) Addr(name, def string) string {
	v := r.String(name, def)
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		r.Fail(name, "%q is not a listen address (examples: :8080, 127.0.0.1:8080)", v)
		return def
	}
	return v
}

// LoopbackAddr returns name's value as a listen address on a loopback
// interface (127.0.0.1:6060, [::1]:6060, localhost:6060), or "" when it is
// unset: for listeners without authentication.
func (r *Reader) LoopbackAddr(name string) string {
	v, ok := r.Lookup(name)
	if !ok {
		return ""
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		r.Fail(name, "%q is not a listen address (example: 127.0.0.1:6060)", v)
		return ""
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		r.Fail(name, "%q is not a loopback address: this listener has no authentication (example: 127.0.0.1:6060)", v)
		return ""
	}
	return v
}

// DefaultDatabaseURL is the DATABASE_URL used when none is set.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/msgrunner?sslmode=disable"

// DatabaseURL returns DATABASE_URL, or DefaultDatabaseURL.
func (r *Reader) DatabaseURL() string {
	v := r.String("DATABASE_URL", DefaultDatabaseURL)
	u, err := url.Parse(v)
	if strings.Contains(v, "://") && (err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql")) {
		r.Fail("DATABASE_URL", "must be a postgres:// URL or a key=value connection string")
	}
	return v
}

// Redis returns go-redis options from REDIS_URL when set, else from the
// earlier platform's REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD
// and REDIS_QUEUE_DB (defaults 127.0.0.1, 6379, none, none, 0).
func (r *Reader) Redis() *redis.Options {
	if v, ok := r.Lookup("REDIS_URL"); ok {
		opts, err := redis.ParseURL(v)
		if err != nil {
			// The parse error may quote the password; describe it instead.
			r.Fail("REDIS_URL", "must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0")
			return &redis.Options{Addr: "127.0.0.1:6379"}
		}
		return opts
	}
	host := r.String("REDIS_HOST", "127.0.0.1")
	port := r.Int("REDIS_PORT", 6379, 1, 65535)
	return &redis.Options{
		Addr:     net.JoinHostPort(host, strconv.Itoa(port)),
		Username: r.String("REDIS_USERNAME", ""),
		Password: r.String("REDIS_PASSWORD", ""),
		DB:       r.Int("REDIS_QUEUE_DB", 0, 0, 15),
	}
}

// Keyring returns the key-encryption keys from ENCRYPTION_KEYS
// ("id:<base64 of 32 bytes>,...") and ENCRYPTION_ACTIVE_KEY, or nil when
// ENCRYPTION_KEYS is unset. Problems name the variable, never the keys.
func (r *Reader) Keyring() *keyring.Keyring {
	spec, ok := r.Lookup("ENCRYPTION_KEYS")
	if !ok {
		return nil
	}
	ring, err := keyring.Parse(spec, r.String("ENCRYPTION_ACTIVE_KEY", ""))
	if err != nil {
		r.Fail("ENCRYPTION_KEYS", "%v", err)
		return nil
	}
	return ring
}

// Attachments returns the local attachment store in ATTACHMENTS_DIR, or nil
// when it is unset.
func (r *Reader) Attachments() *attachments.Dir {
	dir, ok := r.Lookup("ATTACHMENTS_DIR")
	if !ok {
		return nil
	}
	store, err := attachments.NewDir(dir)
	if err != nil {
		r.Fail("ATTACHMENTS_DIR", "%v", err)
		return nil
	}
	return store
}

// Logger returns a slog logger writing to w, configured by LOG_LEVEL
// (debug, info, warn, error; default info) and LOG_FORMAT (json or text;
// default json).
func (r *Reader) Logger(w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(r.String("LOG_LEVEL", "info"))); err != nil {
		r.Fail("LOG_LEVEL", "must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f := r.String("LOG_FORMAT", "json"); f {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts))
	case "text":
		return slog.New(slog.NewTextHandler(w, opts))
	default:
		r.Fail("LOG_FORMAT", "%q is not json or text", f)
		return slog.New(slog.NewJSONHandler(w, opts))
	}
}
