package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Reader reads declared settings from an environment lookup function and
// collects every problem, each naming its variable. Wiring that builds
// clients from the values adds its own problems with Fail, so one Err
// reports everything wrong with a binary's configuration.
// It is not safe for concurrent use.
type Reader struct {
	getenv   func(string) string
	declared map[Var]Setting
	errs     []error
	// read records the declared name of every setting looked up, for
	// the tests that check the list against what each binary reads.
	read map[Var]bool
}

// NewReader returns a Reader over getenv (os.Getenv in a binary, a map
// lookup in a test).
func NewReader(getenv func(string) string) *Reader {
	declared := map[Var]Setting{}
	for _, s := range settingList() {
		declared[s.Name] = s
	}
	return &Reader{getenv: getenv, declared: declared, read: map[Var]bool{}}
}

// Err returns every problem found so far, joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Fail records a problem with variable v, such as a value its client
// refused. The message must not quote a secret.
func (r *Reader) Fail(v Var, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", v, fmt.Sprintf(format, args...)))
}

// setting returns v's declaration and records that it was read. Reading
// an undeclared variable, or reading one as another kind, is a mistake in
// this package, found by its tests: it panics.
func (r *Reader) setting(v Var, kinds ...Kind) Setting {
	s, ok := r.declared[v]
	if !ok {
		panic(fmt.Sprintf("config: %s is not declared in settingList", v))
	}
	for _, k := range kinds {
		if s.Kind == k {
			r.read[v] = true
			return s
		}
	}
	panic(fmt.Sprintf("config: %s is declared as %s, read as %v", v, s.Kind, kinds))
}

// lookup returns the trimmed value of s and whether it is set and
// non-empty.
func (r *Reader) lookup(s Setting) (string, bool) {
	v := strings.TrimSpace(r.getenv(string(s.Name)))
	return v, v != ""
}

// value returns s's value parsed, or its parsed default when s is unset
// or invalid (then the problem is recorded). ok is false when neither the
// variable nor a default is set.
func (r *Reader) value(s Setting) (v any, ok bool) {
	var def any
	if s.Default != "" {
		d, err := s.parse(s.Default)
		if err != nil {
			panic(fmt.Sprintf("config: %s's default %q: %v", s.Name, s.Default, err))
		}
		def = d
	}
	raw, set := r.lookup(s)
	if !set {
		return def, def != nil
	}
	parsed, err := s.parse(raw)
	if err != nil {
		r.Fail(s.Name, "%v", err)
		return def, def != nil
	}
	return parsed, true
}

// textKinds are the kinds whose value is text, checked as its kind says.
func textKinds() []Kind {
	return []Kind{KindString, KindURL, KindPath, KindList, KindEnum, KindAddr, KindLoopbackAddr, KindDatabaseURL}
}

// str reads a text setting: its value when set and valid, else its
// default.
func (r *Reader) str(v Var) string { return r.strOf(r.setting(v, textKinds()...)) }

func (r *Reader) strOf(s Setting) string {
	if v, ok := r.value(s); ok {
		return v.(string)
	}
	return ""
}

// secret reads a secret: its value when set and long enough, else "".
func (r *Reader) secret(v Var) string { return r.strOf(r.setting(v, KindSecret)) }

// integer reads an integer setting within its bounds.
func (r *Reader) integer(v Var) int { return r.intOf(r.setting(v, KindInt)) }

func (r *Reader) intOf(s Setting) int {
	if v, ok := r.value(s); ok {
		return v.(int)
	}
	return 0
}

// intOr reads an integer setting without a declared default, returning
// def (computed from other settings) when it is unset or invalid.
func (r *Reader) intOr(v Var, def int) int {
	s := r.setting(v, KindInt)
	if n, ok := r.value(s); ok {
		return n.(int)
	}
	return def
}

// duration reads a duration setting within its bounds.
func (r *Reader) duration(v Var) time.Duration { return r.durationOf(r.setting(v, KindDuration)) }

func (r *Reader) durationOf(s Setting) time.Duration {
	if v, ok := r.value(s); ok {
		return v.(time.Duration)
	}
	return 0
}

// boolean reads a boolean setting.
func (r *Reader) boolean(v Var) bool {
	if b, ok := r.value(r.setting(v, KindBool)); ok {
		return b.(bool)
	}
	return false
}

// isSet reports whether v is set, without parsing it.
func (r *Reader) isSet(v Var) bool {
	_, ok := r.lookup(r.setting(v, r.declared[v].Kind))
	return ok
}

// logLevel reads a log level setting.
func (r *Reader) logLevel(v Var) slog.Level {
	if l, ok := r.value(r.setting(v, KindLogLevel)); ok {
		return l.(slog.Level)
	}
	return slog.LevelInfo
}

// schedule reads a cron setting; on is false when it is off.
func (r *Reader) schedule(v Var) (sched cron.Schedule, on bool) {
	parsed, _ := r.value(r.setting(v, KindCron))
	sched = parsed.(*cronSchedule).Schedule
	return sched, sched != nil
}

// cronSchedule is a parsed KindCron value; Schedule is nil for off.
type cronSchedule struct{ cron.Schedule }

func parseCron(v string) (*cronSchedule, error) {
	if v == "off" {
		return &cronSchedule{}, nil
	}
	sched, err := cron.ParseStandard(v)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron expression (minute hour day month weekday, or off): %v", v, err)
	}
	return &cronSchedule{sched}, nil
}

func parseLogLevel(v string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(v)); err != nil {
		return 0, errors.New("must be debug, info, warn or error")
	}
	return level, nil
}

func checkAddr(v string) error {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return fmt.Errorf("%q is not a listen address (examples: :8080, 127.0.0.1:8080)", v)
	}
	return nil
}

// checkHostPort checks a server address: a host and a port in 1–65535.
func checkHostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not a host:port address (example: 10.0.0.1:6379)", v)
	}
	return nil
}

func checkLoopbackAddr(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		return fmt.Errorf("%q is not a listen address (example: 127.0.0.1:6060)", v)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address: this listener has no authentication (example: 127.0.0.1:6060)", v)
	}
	return nil
}

func checkDatabaseURL(v string) error {
	u, err := url.Parse(v)
	if strings.Contains(v, "://") && (err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql")) {
		return errors.New("must be a postgres:// URL or a key=value connection string")
	}
	return nil
}
