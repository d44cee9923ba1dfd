package workers

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
)

// FuzzRender fills the notification templates with any content and
// sender: it never fails, the title is fixed, the body is valid UTF-8 of
// at most previewRunes runes plus an ellipsis, content is shown as text
// (never run as a template), and encrypted or deleted content never shows.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"hello", "", " ", "{{.Sender}}", `{{template "title"}}`, "<script>alert(1)</script>",
		"a\x00b", "\xff\xfe", "é\xc3", strings.Repeat("😀", 101), strings.Repeat("x", 100), strings.Repeat("x", 101),
		strings.Repeat("\xff", 200), "'; DROP TABLE notifications; --"} {
		f.Add(s, []byte("0123456789abcdef"), true, false)
	}
	f.Add("secret", []byte{}, false, false)
	f.Add("gone", []byte{1, 2, 3}, true, true)
	f.Fuzz(func(t *testing.T, content string, sender []byte, plaintext, deleted bool) {
		var sid uuid.UUID
		copy(sid[:], sender)
		m := db.Message{ID: uuid.New(), ConversationID: uuid.New(), SenderID: sid}
		if plaintext {
			m.Content = &content
		} else {
			m.Ciphertext, m.KeyID = []byte(content), ptr("k1")
		}
		if deleted {
			now := time.Now()
			m.DeletedAt = &now
		}
		title, body, err := render(m)
		require.NoError(t, err)
		require.Equal(t, "New message", title)
		require.True(t, utf8.ValidString(body), "body %q is not valid UTF-8", body)
		require.LessOrEqual(t, utf8.RuneCountInString(body), previewRunes+1)
		require.LessOrEqual(t, len(body), previewRunes*utf8.UTFMax+len("…"))
		switch {
		case deleted:
			require.Equal(t, "A message was deleted", body)
		case !plaintext:
			require.Equal(t, "New encrypted message", body, "encrypted content never reaches a notification")
		case utf8.ValidString(content) && utf8.RuneCountInString(content) <= previewRunes:
			require.Equal(t, content, body, "content is shown as it is, never run as a template")
		default:
			require.True(t, strings.HasSuffix(body, "…") || !utf8.ValidString(content))
		}
	})
}
