package config

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTheGeneratedDocIsCurrent(t *testing.T) {
	t.Parallel()
	got, err := os.ReadFile("../../" + DocPath)
	require.NoError(t, err)
	require.True(t, string(got) == string(Markdown()), "%s is stale: run '%s' and commit the result", DocPath, DocCommand)
}

func TestTheDocHasOneRowPerSetting(t *testing.T) {
	t.Parallel()
	doc := string(Markdown())
	for _, s := range Settings() {
		require.Equal(t, 1, strings.Count(doc, "\n| `"+string(s.Name)+"` |"), "%s", s.Name)
	}
	require.Contains(t, doc, "| `message-delivery` | `QUEUE_MESSAGE_DELIVERY_*` |", "the per-queue defaults")
}
