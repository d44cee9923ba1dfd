package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Var is the name of an environment variable declared in Settings. Every
// variable any binary reads has one Var constant (settings.go) and one
// entry in the list.
type Var string

// Kind is how a setting's value is written and parsed; its text is the
// type shown in docs/configuration.md.
type Kind string

// The kinds of settings.
const (
	// KindString is any text.
	KindString Kind = "string"
	// KindSecret is text that is never logged nor quoted in an error;
	// Setting.MinLen, when set, is its least length in bytes.
	KindSecret Kind = "secret"
	// KindInt is a decimal integer within [Min, Max].
	KindInt Kind = "integer"
	// KindDuration is a Go duration (250ms, 30s, 24h) within [Min, Max].
	KindDuration Kind = "duration"
	// KindBool is 1/0, true/false, yes/no or on/off.
	KindBool Kind = "boolean"
	// KindAddr is a listen address host:port (":8080", "127.0.0.1:8080").
	KindAddr Kind = "address"
	// KindLoopbackAddr is a listen address on a loopback interface, for
	// listeners without authentication.
	KindLoopbackAddr Kind = "loopback address"
	// KindDatabaseURL is a PostgreSQL postgres:// URL or key=value
	// connection string.
	KindDatabaseURL Kind = "PostgreSQL URL"
	// KindURL is a URL, checked by the client that uses it.
	KindURL Kind = "URL"
	// KindEnum is one of Setting.Values.
	KindEnum Kind = "one of"
	// KindLogLevel is a log/slog level: debug, info, warn or error.
	KindLogLevel Kind = "log level"
	// KindList is comma-separated text; blanks around items are trimmed.
	KindList Kind = "list"
	// KindCron is a five-field cron expression, or off.
	KindCron Kind = "cron"
	// KindPath is a file or directory path.
	KindPath Kind = "path"
)

// Binary is a set of the programs that read a setting.
type Binary uint8

// The programs that read settings.
const (
	// RunnerBinary is cmd/runner.
	RunnerBinary Binary = 1 << iota
	// GatewayBinary is cmd/gateway.
	GatewayBinary
	// AdminServeBinary is `admin serve`, the admin HTTP server.
	AdminServeBinary
	// AdminBinary is the other admin commands (migrate, token, jobs,
	// queue, report, cleanup, encrypt, export, rotate).
	AdminBinary
	// MakeRun is scripts/run.sh, which `make run` starts.
	MakeRun
	// Tests is the test suite's shared services (internal/dbtest).
	Tests
)

var binaryNames = []struct {
	b    Binary
	name string
}{
	{RunnerBinary, "runner"}, {GatewayBinary, "gateway"}, {AdminServeBinary, "admin serve"},
	{AdminBinary, "admin"}, {MakeRun, "make run"}, {Tests, "tests"},
}

// String lists the programs in b, such as "runner, gateway".
func (b Binary) String() string {
	var names []string
	for _, n := range binaryNames {
		if b&n.b != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ", ")
}

// Setting declares one environment variable: its name, how it is parsed,
// its default and allowed range or values, who reads it and what it does.
type Setting struct {
	// Name is the variable. For a per-queue setting it is a pattern
	// holding <NAME> (see Queue).
	Name Var
	// Group is the heading it is listed under in docs/configuration.md.
	Group string
	// Kind is how the value is written and parsed.
	Kind Kind
	// Default is the value used when the variable is unset or empty,
	// written as it would be in the environment; empty means unset.
	Default string
	// DefaultNote says more about the default where one value does not
	// tell it all (a default computed from another setting, or chosen by
	// the program); shown in the documentation next to Default.
	DefaultNote string
	// Min and Max bound a KindInt or KindDuration value, written as in the
	// environment; both are required for those kinds.
	Min, Max string
	// Values are the allowed values of a KindEnum or KindLogLevel.
	Values []string
	// MinLen is the least length in bytes of a KindSecret when set.
	MinLen int
	// Format describes the accepted form of a value that its user checks
	// (a keyring, a sender address), shown as the allowed range.
	Format string
	// Binaries are the programs that read it.
	Binaries Binary
	// Doc is one line of documentation.
	Doc string
	// Variants are other defaults or bounds for some of the Binaries.
	Variants []Variant
	// Queue marks a per-queue pattern: Name holds <NAME>, and each queue
	// of jobs.DefaultQueues has its own variable and default.
	Queue bool
}

// Variant is a Setting's default and bounds in some binaries, where they
// differ from the Setting's own.
type Variant struct {
	// Binaries are where the variant applies.
	Binaries Binary
	// Default, Min and Max replace the Setting's when not empty.
	Default, Min, Max string
}

// For returns s as read by binary b: with the Variant for b applied.
func (s Setting) For(b Binary) Setting {
	for _, v := range s.Variants {
		if v.Binaries&b == 0 {
			continue
		}
		if v.Default != "" {
			s.Default = v.Default
		}
		if v.Min != "" {
			s.Min = v.Min
		}
		if v.Max != "" {
			s.Max = v.Max
		}
	}
	s.Variants = nil
	return s
}

// queueVarPrefix turns a queue name into its variables' prefix:
// message-delivery → QUEUE_MESSAGE_DELIVERY_.
func queueVarPrefix(queue string) string {
	return "QUEUE_" + strings.ToUpper(strings.ReplaceAll(queue, "-", "_")) + "_"
}

// Instance returns per-queue setting s for queue, with that queue's
// variable name and default.
func (s Setting) Instance(queue, def string) Setting {
	s.Name = Var(strings.Replace(string(s.Name), "QUEUE_<NAME>_", queueVarPrefix(queue), 1))
	s.Default, s.Queue = def, false
	return s
}

// Check reports whether value is valid for s: it parses as s.Kind and lies
// within s's bounds or values. Setting-specific checks made by a value's
// user (Format) are not repeated here. Check is how defaults are tested.
func (s Setting) Check(value string) error {
	_, err := s.parse(value)
	return err
}

// parse parses a set value. The returned error is the problem as the
// operator sees it (without the variable's name).
func (s Setting) parse(v string) (any, error) {
	switch s.Kind {
	case KindInt:
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", v)
		}
		lo, hi := s.intBounds()
		if n < lo || n > hi {
			return nil, fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
		}
		return n, nil
	case KindDuration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (examples: 250ms, 30s, 24h)", v)
		}
		lo, hi := s.durationBounds()
		if d < lo || d > hi {
			return nil, fmt.Errorf("%s is out of range [%s, %s]", d, lo, hi)
		}
		return d, nil
	case KindBool:
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			return true, nil
		case "0", "false", "no", "off":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not a boolean (use true or false)", v)
	case KindEnum:
		for _, ok := range s.Values {
			if v == ok {
				return v, nil
			}
		}
		return nil, fmt.Errorf("%q is not %s", v, orList(s.Values))
	case KindSecret:
		if len(v) < s.MinLen {
			return nil, fmt.Errorf("must be at least %d characters", s.MinLen)
		}
		return v, nil
	case KindAddr:
		return v, checkAddr(v)
	case KindLoopbackAddr:
		return v, checkLoopbackAddr(v)
	case KindDatabaseURL:
		return v, checkDatabaseURL(v)
	case KindLogLevel:
		l, err := parseLogLevel(v)
		if err != nil {
			return nil, err
		}
		return l, nil
	case KindCron:
		sched, err := parseCron(v)
		if err != nil {
			return nil, err
		}
		return sched, nil
	}
	return v, nil
}

func (s Setting) intBounds() (lo, hi int) {
	lo, errLo := strconv.Atoi(s.Min)
	hi, errHi := strconv.Atoi(s.Max)
	if errLo != nil || errHi != nil {
		panic(fmt.Sprintf("config: %s declares bounds %q and %q that are not integers", s.Name, s.Min, s.Max))
	}
	return lo, hi
}

func (s Setting) durationBounds() (lo, hi time.Duration) {
	lo, errLo := time.ParseDuration(s.Min)
	hi, errHi := time.ParseDuration(s.Max)
	if errLo != nil || errHi != nil {
		panic(fmt.Sprintf("config: %s declares bounds %q and %q that are not durations", s.Name, s.Min, s.Max))
	}
	return lo, hi
}

// orList joins values as "a, b or c".
func orList(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

// splitList splits a comma-separated list, dropping blank items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// formatDuration writes d as an operator would: 5m and 1h rather than
// 5m0s and 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// code writes v as a Markdown code span, for the documentation.
func code(v string) string { return "`" + v + "`" }
