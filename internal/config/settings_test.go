package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/jobs"
)

func TestEverySettingIsDeclaredWellOnce(t *testing.T) {
	t.Parallel()
	seen := map[Var]bool{}
	groups := []string{}
	for _, s := range Settings() {
		t.Run(string(s.Name), func(t *testing.T) {
			require.False(t, seen[s.Name], "declared twice")
			seen[s.Name] = true
			require.Regexp(t, `^[A-Z][A-Z0-9_]*(<NAME>_[A-Z_]+)?$`, string(s.Name))
			require.Equal(t, s.Queue, strings.Contains(string(s.Name), "<NAME>"), "only per-queue settings hold <NAME>")
			require.NotEmpty(t, s.Doc, "every setting has a line of documentation")
			require.NotContains(t, s.Doc, "\n")
			require.False(t, strings.HasSuffix(s.Doc, "."), "docs are phrases, as in the table")
			require.NotEmpty(t, s.Group)
			require.NotZero(t, s.Binaries, "some program reads it")
			require.NotContains(t, s.Doc+s.DefaultNote+s.Format, "|", "a | would break the Markdown table")

			switch s.Kind {
			case KindInt:
				lo, hi := s.intBounds()
				require.LessOrEqual(t, lo, hi)
			case KindDuration:
				lo, hi := s.durationBounds()
				require.LessOrEqual(t, lo, hi)
			case KindEnum, KindLogLevel:
				require.NotEmpty(t, s.Values)
			default:
				require.Empty(t, s.Min+s.Max, "bounds only for integers and durations")
			}
			if s.Kind != KindEnum && s.Kind != KindLogLevel {
				require.Empty(t, s.Values)
			}
			if s.MinLen > 0 {
				require.Equal(t, KindSecret, s.Kind)
			}

			if s.Default != "" {
				require.NoError(t, s.Check(s.Default), "the default parses and lies within the range")
			}
			for _, v := range s.Variants {
				require.NotZero(t, v.Binaries&s.Binaries, "a variant applies to a binary that reads the setting")
				w := s.For(v.Binaries)
				require.NotEmpty(t, w.Default+w.DefaultNote, "a variant has a default")
				require.NoError(t, w.Check(w.Default), "the variant's default parses and lies within its range")
			}
			if s.Default == "" && len(s.Variants) == 0 && !s.Queue {
				require.NotEqual(t, KindBool, s.Kind, "a boolean has a default")
			}
		})
		if !slices.Contains(groups, s.Group) {
			groups = append(groups, s.Group)
		} else {
			require.Equal(t, groups[len(groups)-1], s.Group, "%s: a group's settings are listed together", s.Name)
		}
	}
}

func TestEveryQueueDefaultLiesWithinItsRange(t *testing.T) {
	t.Parallel()
	byName := map[Var]Setting{}
	for _, s := range Settings() {
		byName[s.Name] = s
	}
	for _, q := range jobs.DefaultQueues() {
		for v, def := range map[Var]string{
			QueueWorkers: strconv.Itoa(q.Workers), QueueRetryBase: formatDuration(q.RetryBase),
			QueueTimeout: formatDuration(q.Timeout), QueueFetchCooldown: formatDuration(q.FetchCooldown),
		} {
			s := byName[v].Instance(q.Name, def)
			require.NoError(t, s.Check(s.Default), "%s", s.Name)
			require.NotContains(t, string(s.Name), "<NAME>")
		}
	}
}

// TestEveryVarConstantHasOneEntry reads settings.go: each Var constant is
// declared in the list and each entry has its constant.
func TestEveryVarConstantHasOneEntry(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "settings.go", nil, 0)
	require.NoError(t, err)
	var consts []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Var" {
				continue
			}
			for _, v := range vs.Values {
				name, err := strconv.Unquote(v.(*ast.BasicLit).Value)
				require.NoError(t, err)
				consts = append(consts, name)
			}
		}
	}
	var listed []string
	for _, s := range Settings() {
		listed = append(listed, string(s.Name))
	}
	slices.Sort(consts)
	slices.Sort(listed)
	require.Equal(t, consts, listed)
}

// TestEachBinaryReadsWhatTheListSays reads each binary's configuration
// with every optional part switched on and checks that the settings it
// reads are exactly those the list says it reads.
func TestEachBinaryReadsWhatTheListSays(t *testing.T) {
	t.Parallel()
	on := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "ENCRYPTION_KEYS": "k", "ATTACHMENTS_DIR": "/tmp/a",
		"SMTP_HOST": "127.0.0.1", "PUSH_PROJECT_ID": "p", "SMS_ACCOUNT_SID": "AC1",
	}
	withURL := map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/0", "TEST_REDIS_URL": "redis://127.0.0.1:6379/1"}
	for b, read := range map[Binary]func(r *Reader){
		RunnerBinary:     func(r *Reader) { r.Runner() },
		GatewayBinary:    func(r *Reader) { r.Gateway() },
		AdminServeBinary: func(r *Reader) { r.AdminServe() },
		AdminBinary: func(r *Reader) {
			r.DatabaseURL()
			r.Auth()
			r.ActiveKey()
			r.Operator()
		},
		Tests: func(r *Reader) { r.TestServices() },
	} {
		t.Run(b.String(), func(t *testing.T) {
			got := map[Var]bool{}
			for _, env := range []map[string]string{on, withURL} {
				r := reader(env)
				read(r)
				for v := range r.read {
					got[v] = true
				}
			}
			var want []Var
			for _, s := range Settings() {
				if s.Binaries&b != 0 {
					want = append(want, s.Name)
				}
			}
			var gotList []Var
			for v := range got {
				gotList = append(gotList, v)
			}
			slices.Sort(want)
			slices.Sort(gotList)
			require.Equal(t, want, gotList)
		})
	}
	for _, s := range Settings() {
		if s.Binaries&^(RunnerBinary|GatewayBinary|AdminServeBinary|AdminBinary|Tests) != 0 {
			require.Equal(t, MakeRun, s.Binaries, "%s: read by scripts only", s.Name)
			script, err := os.ReadFile("../../scripts/run.sh")
			require.NoError(t, err)
			require.Contains(t, string(script), string(s.Name))
		}
	}
}
