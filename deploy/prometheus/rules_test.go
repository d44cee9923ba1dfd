// Package prometheus_test checks the alerting rules against the code and
// the docs: every metric a rule reads is one a binary exports, and every
// runbook_url names a section of docs/operations.md. promtool checks and
// unit-tests the rules themselves (make check-alerts).
package prometheus_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	metricRef   = regexp.MustCompile(`msgrunner_[a-z_]+`)
	metricDef   = regexp.MustCompile(`"(msgrunner_[a-z_]+)"`)
	runbookRef  = regexp.MustCompile(`runbook_url: docs/operations\.md#([a-z0-9-]+)`)
	headingLine = regexp.MustCompile(`(?m)^#{2,4} (.+)$`)
)

// exported returns the metric names the project's Go code defines
// (string literals starting msgrunner_, outside tests).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricDef.FindAllStringSubmatch(string(src), -1) {
			out[m[1]] = true
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

func TestRulesReadExportedMetrics(t *testing.T) {
	rules, err := os.ReadFile("alerts.yml")
	require.NoError(t, err)
	defined := exported(t)
	for _, name := range metricRef.FindAllString(string(rules), -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			base = strings.TrimSuffix(base, suffix)
		}
		require.True(t, defined[base], "alerts.yml reads %s, which no binary exports", name)
	}
}

// anchor is GitHub's anchor of a Markdown heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

func TestEveryAlertHasARunbook(t *testing.T) {
	rules, err := os.ReadFile("alerts.yml")
	require.NoError(t, err)
	docs, err := os.ReadFile("../../docs/operations.md")
	require.NoError(t, err)
	anchors := map[string]bool{}
	for _, m := range headingLine.FindAllStringSubmatch(string(docs), -1) {
		anchors[anchor(m[1])] = true
	}
	refs := runbookRef.FindAllStringSubmatch(string(rules), -1)
	require.Equal(t, strings.Count(string(rules), "- alert: "), len(refs), "every alert names its runbook")
	for _, m := range refs {
		require.True(t, anchors[m[1]], "runbook %s is not a section of docs/operations.md", m[1])
	}
}
