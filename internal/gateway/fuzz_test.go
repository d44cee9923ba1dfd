package gateway

// Fuzz targets for what clients send: request bodies, websocket frames and
// search queries. `go test` runs their seeds (f.Add and testdata/fuzz) as
// ordinary tests; `make fuzz` explores further for a fixed time.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/validation"
)

var (
	fuzzAlice = uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	fuzzBob   = uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c")
)

// requireClientError fails unless err is nil or an error the client is to
// blame for: a 4xx with a code and a readable message, never the
// "internal" answer of an unexpected error.
func requireClientError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	e, unexpected := classify(err)
	if unexpected || e.Status < 400 || e.Status >= 500 || e.Code == "" || e.Message == "" {
		t.Fatalf("%v became %d %s %q (unexpected=%v), want a 4xx naming the problem", err, e.Status, e.Code, e.Message, unexpected)
	}
	if !utf8.ValidString(e.Message) || !utf8.ValidString(e.Field) {
		t.Fatalf("error %q (field %q) is not valid UTF-8", e.Message, e.Field)
	}
	if _, err := json.Marshal(map[string]any{"error": e}); err != nil {
		t.Fatalf("error does not encode: %v", err)
	}
}

// requireRoundTrip requires an accepted body to encode and strictly decode
// back to the same value: what was accepted is exactly what is kept.
func requireRoundTrip[T any](t *testing.T, v T) {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	var back T
	require.NoError(t, decodeStrict(raw, &back), "%s", raw)
	require.Equal(t, v, back)
}

// requireTextSafe requires strings that reach Postgres text columns to be
// storable there: valid UTF-8 without NUL.
func requireTextSafe(t *testing.T, field, v string) {
	t.Helper()
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		t.Fatalf("%s %q was accepted but Postgres text cannot hold it", field, v)
	}
}

func FuzzRequestBodies(f *testing.F) {
	conv := DirectConversationID(fuzzAlice, fuzzBob)
	for _, s := range []string{
		`{"conversation_id":"` + conv.String() + `","recipient_id":"` + fuzzBob.String() + `","content":"hi"}`,
		`{"conversation_id":"` + conv.String() + `","recipient_id":"` + fuzzBob.String() + `","content":"later","delay_ms":1000,"priority":"high"}`,
		`{"id":"` + uuid.NewString() + `","content":"x","send_at":"2030-01-02T15:04:05Z"}`,
		`{"content":"a\u0000b"}`, `{"content":"\ud800"}`, "{\"content\":\"\xff\xfe\"}",
		`{"delay_ms":1e309}`, `{"delay_ms":9223372036854775808}`, `{"delay_ms":-1}`,
		`{"recipient_ids":["x"],"template":"{{.name}}","variables":{"x":{"name":"y"}},"chunk_size":-1}`,
		`{"push":true,"email":true,"email_address":"a@example.com","phone":"+14155550123"}`,
		`{"email_address":"\"\u0000\"@example.com"}`,
		`{"platform":"ios","token":"abc"}`, `{"platform":"web","token":"a\u0000"}`,
		`[]`, `"x"`, `42`, `null`, `{} {}`, `{"a":1}`, strings.Repeat("[", 10001),
		`{"content":"'; DROP TABLE messages; --"}`, `{"conversation_id":"..%2f..%2f"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		now := time.Now()

		var send sendRequest
		err := decodeStrict(raw, &send)
		requireClientError(t, err)
		if err == nil {
			requireRoundTrip(t, send)
			at, scheduled, err := send.sendAt(now)
			requireClientError(t, err)
			if err == nil && send.DelayMS != nil && *send.DelayMS == 0 {
				require.False(t, scheduled, "delay_ms 0 sends now")
			} else if err == nil && send.DelayMS != nil {
				require.True(t, scheduled)
				require.True(t, at.After(now) && !at.After(now.Add(outbox.MaxScheduleAhead)), "delay_ms %d gave %v", *send.DelayMS, at)
			}
			c, r, err := send.target(fuzzAlice)
			requireClientError(t, err)
			if err == nil {
				require.NotEqual(t, uuid.Nil, c)
				// No recipient is a message to a group, whose membership
				// the outbox checks; a direct message's conversation must
				// be the sender's and the recipient's.
				require.True(t, r == uuid.Nil || r == fuzzAlice || c == DirectConversationID(fuzzAlice, r), "a conversation of others was accepted")
			}
			if err := outbox.ValidateContent(send.Content, 1000); err != nil {
				requireClientError(t, err)
			} else {
				requireTextSafe(t, "content", send.Content)
			}
		}

		var bc broadcastRequest
		if err := decodeStrict(raw, &bc); err != nil {
			requireClientError(t, err)
		} else {
			requireRoundTrip(t, bc)
		}

		var prefs preferencesBody
		if err := decodeStrict(raw, &prefs); err != nil {
			requireClientError(t, err)
		} else if err := prefs.validate(); err != nil {
			requireRoundTrip(t, prefs)
			requireClientError(t, err)
		} else {
			if prefs.EmailAddress != nil {
				requireTextSafe(t, "email_address", *prefs.EmailAddress)
			}
			if prefs.Phone != nil {
				requireTextSafe(t, "phone", *prefs.Phone)
			}
		}

		var dev deviceRequest
		if err := decodeStrict(raw, &dev); err != nil {
			requireClientError(t, err)
		} else if err := dev.validate(); err != nil {
			requireClientError(t, err)
		} else {
			requireTextSafe(t, "token", dev.Token)
		}
	})
}

func FuzzWebsocketFrame(f *testing.F) {
	conv := DirectConversationID(fuzzAlice, fuzzBob)
	for _, s := range []string{
		`{"type":"ping","ref":"r"}`,
		`{"type":"send","ref":"1","conversation_id":"` + conv.String() + `","recipient_id":"` + fuzzBob.String() + `","content":"hi"}`,
		`{"type":"ack","message_id":"` + uuid.NewString() + `","status":"read"}`,
		`{"type":"ack","message_id":"` + uuid.NewString() + `","status":"seen"}`,
		`{"type":"resume","after":{"` + conv.String() + `":3}}`,
		`{"type":"resume","after":{"` + conv.String() + `":-1}}`,
		`{"type":"resume","after":{"x":1e309}}`,
		`{"type":"teleport"}`, `{"type":5}`, `{"ref":["x"]}`, `{}`, `not json`, "\xff", `[]`,
		`{"type":"send","content":"x","extra":1}`, `{"type":"ping","ref":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fr, err := parseFrame(raw)
		requireClientError(t, err)
		_, merr := json.Marshal(errorFrame{Type: "error", Code: "x", Message: "y", Ref: fr.Ref})
		require.NoError(t, merr, "the ref must be echoable")
		if err != nil {
			return
		}
		switch fr.Type {
		case "send":
			_, _, err := fr.Send.sendAt(time.Now())
			requireClientError(t, err)
			_, _, err = fr.Send.target(fuzzAlice)
			requireClientError(t, err)
		case "ack":
			require.NotEqual(t, uuid.Nil, fr.MessageID)
			require.Contains(t, []string{jobs.ReceiptDelivered, jobs.ReceiptRead}, fr.Status)
		case "resume":
			for id, seq := range fr.After {
				require.GreaterOrEqual(t, seq, int64(0), "seq of %s", id)
			}
		case "ping":
		default:
			t.Fatalf("frame type %q was accepted", fr.Type)
		}
	})
}

// FuzzSearchQuery runs every query searchQuery accepts, with any cursor
// decodeSearchCursor accepts, against a real database: Postgres must never
// refuse what the user typed (websearch_to_tsquery, ts_headline and the
// cursor comparison all run), and a refused query is a 400 naming q.
func FuzzSearchQuery(f *testing.F) {
	ctx := context.Background()
	pool := dbtest.Pool(f)
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(f, err)
	ob, err := outbox.New(rc, outbox.Config{})
	require.NoError(f, err)
	res, err := ob.Send(ctx, pool, outbox.Message{
		ConversationID: DirectConversationID(fuzzAlice, fuzzBob), SenderID: fuzzAlice, RecipientID: fuzzBob,
		Content: `the quick brown fox: 'quoted' & "double" <b>html</b> ünïcödé 😀 -not OR or`,
	})
	require.NoError(f, err)
	require.NoError(f, db.SyncSearchEntry(ctx, pool, res.ID, "simple"))
	cursor := encodeSearchCursor(db.SearchHit{Rank: 0.5, ID: res.ID})

	for _, q := range []string{`fox`, `"quick brown"`, `fox -dog`, `fox or dog`, `"`, `'`, `"unterminated`, `!!!`, `a & b | !c`,
		`<->`, `foo:*`, `\`, `(((`, `-`, `OR`, `ünïcödé`, `😀`, `'; DROP TABLE messages; --`, `%`, `\x00`, "a\x00b", "\xff",
		`1e309`, strings.Repeat("a ", 600), "  "} {
		f.Add(q, "")
	}
	f.Add("fox", cursor)
	f.Add("fox", "TmFOfDAxOTBhMWIyLWMzZDQtN2U1Zi04YTliLTBjMWQyZTNmNGE1Yg") // "NaN|<uuid>"
	f.Add("fox", "bogus")
	f.Fuzz(func(t *testing.T, raw, rawCursor string) {
		var cur *db.SearchCursor
		if rawCursor != "" {
			c, err := decodeSearchCursor(rawCursor)
			if err != nil {
				var ve *validation.Error
				require.True(t, errors.As(err, &ve) && ve.Field == "cursor", "%v", err)
				return
			}
			cur = c
		}
		q, err := searchQuery(raw)
		if err != nil {
			var ve *validation.Error
			require.True(t, errors.As(err, &ve) && ve.Field == "q", "%v", err)
			e, _ := classify(err)
			require.Equal(t, http.StatusBadRequest, e.Status)
			return
		}
		require.LessOrEqual(t, len(q), MaxSearchQueryBytes)
		for _, lang := range []string{"simple", "english"} {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			hits, err := db.SearchMessages(ctx, pool, fuzzAlice, q, lang, nil, cur, MaxSearchLimit)
			cancel()
			require.NoError(t, err, "q %q cursor %q (%s)", q, rawCursor, lang)
			for _, h := range hits {
				require.Equal(t, res.ID, h.ID)
				require.True(t, utf8.ValidString(h.Snippet))
				require.NotContains(t, h.Snippet, "<b>", "the snippet escapes the content")
			}
		}
	})
}
