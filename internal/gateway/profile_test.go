package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestProfileDisplayNameIsSetReadAndCleared(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice := uuid.New()
	tok := b.token(t, alice)
	url := b.nodes[0].base + "/v1/me/profile"

	code, body := do(t, http.MethodGet, url, tok, nil)
	require.Equal(t, http.StatusNotFound, code, body)

	code, body = do(t, http.MethodPut, url, tok, map[string]any{"display_name": "  Alice 🐇  "})
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "Alice 🐇", body["display_name"], "surrounding spaces are trimmed")
	code, body = do(t, http.MethodGet, url, tok, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "Alice 🐇", body["display_name"])
	require.NotEmpty(t, body["updated_at"])

	// Another user sees nothing of it.
	code, _ = do(t, http.MethodGet, url, b.token(t, uuid.New()), nil)
	require.Equal(t, http.StatusNotFound, code)

	code, _ = do(t, http.MethodDelete, url, tok, nil)
	require.Equal(t, http.StatusNoContent, code)
	code, _ = do(t, http.MethodGet, url, tok, nil)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = do(t, http.MethodDelete, url, tok, nil)
	require.Equal(t, http.StatusNotFound, code)
}

func TestProfileRejectsBadDisplayNamesAndKeepsTheOldOne(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, uuid.New())
	url := b.nodes[0].base + "/v1/me/profile"
	code, body := do(t, http.MethodPut, url, tok, map[string]any{"display_name": "Alice"})
	require.Equal(t, http.StatusOK, code, body)

	for name, bad := range map[string]string{
		"empty":            "",
		"blank":            "   ",
		"too long":         strings.Repeat("é", 65),
		"newline":          "Alice\nBcc: someone",
		"bidi override":    "Alice\u202egnp.exe",
		"zero-width space": "Al\u200bice",
		"NUL":              "Al\u0000ice",
		"escape sequence":  "Alice\u001b[31m",
	} {
		// Not parallel: they edit one profile in turn.
		t.Run(name, func(t *testing.T) {
			code, body := do(t, http.MethodPut, url, tok, map[string]any{"display_name": bad})
			require.Equal(t, http.StatusBadRequest, code)
			require.Equal(t, "display_name", body["error"].(map[string]any)["field"])
		})
	}
	code, body = do(t, http.MethodGet, url, tok, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "Alice", body["display_name"], "a refused name leaves the old one")
	// 64 characters is the limit, whatever their bytes; an emoji joined
	// with zero-width joiners is a name like any other.
	code, _ = do(t, http.MethodPut, url, tok, map[string]any{"display_name": strings.Repeat("é", 64)})
	require.Equal(t, http.StatusOK, code)
	code, body = do(t, http.MethodPut, url, tok, map[string]any{"display_name": "Family 👩\u200d👩\u200d👧"})
	require.Equal(t, http.StatusOK, code, body)

	code, body = do(t, http.MethodGet, url, tok, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "Family 👩\u200d👩\u200d👧", body["display_name"])
}
