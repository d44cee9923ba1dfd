package config

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/msgrunner/msgrunner/jobs"
)

// DocPath is where the generated documentation lives, from the module
// root.
const DocPath = "docs/configuration.md"

// DocCommand regenerates DocPath.
const DocCommand = "make generate-config-doc"

// Markdown returns docs/configuration.md: every setting of Settings, one
// table row each, under its group.
func Markdown() []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Configuration\n\n")
	p("<!-- Generated from internal/config/settings.go by `%s`; edit the list there, not this file. -->\n\n", DocCommand)
	p("Every binary reads its settings from the environment once, at start. An invalid value makes it\n")
	p("exit non-zero with one message naming every bad variable; secrets are never echoed. An empty\n")
	p("variable is the same as an unset one.\n\n")
	p("**Read by**: `runner` and `gateway` are the two services; `admin serve` is the admin HTTP server;\n")
	p("`admin` is the other admin commands (`migrate`, `token`, `jobs`, `queue`, `report`, `cleanup`,\n")
	p("`encrypt`, `export`, `rotate`); `make run` is `scripts/run.sh`; `tests` is the test suite.\n")
	p("**Types**: a duration is Go's (`250ms`, `30s`, `24h`); a boolean is `1`/`0`, `true`/`false`,\n")
	p("`yes`/`no` or `on`/`off`; an address is `host:port` (`:8080` listens on every interface).\n")

	var group string
	for _, s := range Settings() {
		if s.Group != group {
			group = s.Group
			p("\n## %s\n\n", group)
			if group == groupQueues {
				p("Each queue has its own four variables: `<NAME>` is the queue name upper-cased with `_` for `-`,\n")
				p("as in `QUEUE_MESSAGE_DELIVERY_WORKERS`. Their defaults are the queue table below.\n\n")
			}
			p("| variable | type | default | allowed | read by | meaning |\n|---|---|---|---|---|---|\n")
		}
		p("| `%s` | %s | %s | %s | %s | %s |\n", s.Name, s.Kind, defaultCell(s), rangeCell(s), s.Binaries, s.Doc)
		if s.Name == QueueFetchCooldown {
			p("\n%s", queueTable())
		}
	}
	return b.Bytes()
}

// defaultCell is the default column: the default in code style, the
// variants, and the note.
func defaultCell(s Setting) string {
	var parts []string
	if s.Default != "" {
		parts = append(parts, code(s.Default))
	}
	for _, v := range s.Variants {
		if v.Default != "" {
			parts = append(parts, v.Binaries.String()+": "+code(v.Default))
		}
	}
	if s.Queue {
		parts = append(parts, "per queue, below")
	}
	if s.DefaultNote != "" {
		parts = append(parts, s.DefaultNote)
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "; ")
}

// rangeCell is the allowed column: bounds, values, length or format.
func rangeCell(s Setting) string {
	var parts []string
	switch s.Kind {
	case KindInt, KindDuration:
		parts = append(parts, code(s.Min)+"–"+code(s.Max))
		for _, v := range s.Variants {
			if v.Min != "" || v.Max != "" {
				w := s.For(v.Binaries)
				parts = append(parts, v.Binaries.String()+": "+code(w.Min)+"–"+code(w.Max))
			}
		}
	case KindEnum, KindLogLevel:
		vs := make([]string, len(s.Values))
		for i, v := range s.Values {
			vs[i] = code(v)
		}
		parts = append(parts, strings.Join(vs, ", "))
	case KindBool:
		parts = append(parts, "true or false")
	case KindCron:
		parts = append(parts, "a cron expression, or `off`")
	case KindAddr:
		parts = append(parts, "`host:port`")
	case KindLoopbackAddr:
		parts = append(parts, "`127.0.0.1:port`, `[::1]:port` or `localhost:port`")
	case KindDatabaseURL:
		parts = append(parts, "`postgres://` URL or `key=value` string")
	case KindList:
		parts = append(parts, "comma-separated")
	}
	if s.MinLen > 0 {
		parts = append(parts, fmt.Sprintf("at least %d characters", s.MinLen))
	}
	if s.Format != "" {
		parts = append(parts, s.Format)
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "; ")
}

// queueTable lists each queue's variables' defaults.
func queueTable() string {
	var b strings.Builder
	b.WriteString("| queue | variables | `_WORKERS` | `_RETRY_BASE` | `_TIMEOUT` | `_FETCH_COOLDOWN` |\n|---|---|---|---|---|---|\n")
	for _, q := range jobs.DefaultQueues() {
		fmt.Fprintf(&b, "| `%s` | `%s*` | %d | %s | %s | %s |\n", q.Name, queueVarPrefix(q.Name), q.Workers,
			code(formatDuration(q.RetryBase)), code(formatDuration(q.Timeout)), code(formatDuration(q.FetchCooldown)))
	}
	return b.String()
}
