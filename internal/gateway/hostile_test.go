package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/gateway"
)

// hostileRequest sends body as is with contentType ("" sends none) and
// returns the status and the decoded JSON body, which must be JSON.
func hostileRequest(t *testing.T, method, url, token, contentType string, body []byte, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), "%s %s answered %d with a body that is not JSON: %.200q", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// fingerprint is every table a gateway request can write, summarised so
// that any insert, update or delete changes it.
func (b *bundle) fingerprint(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	// The runner's own periodic sweeps come and go whatever the requests
	// do: they are not a request's writes.
	filter := map[string]string{"river_job": ` WHERE kind NOT IN ` + sweepKinds}
	for table, expr := range map[string]string{
		"messages":                  `md5(string_agg(id::text || coalesce(content, '') || coalesce(edited_at::text, '') || coalesce(deleted_at::text, ''), ',' ORDER BY id))`,
		"river_job":                 `md5(string_agg(id::text || kind || state::text, ',' ORDER BY id))`,
		"attachments":               `count(*)::text`,
		"batches":                   `md5(string_agg(id::text || status || coalesce(cancel_requested_at::text, ''), ',' ORDER BY id))`,
		"batch_recipients":          `count(*)::text`,
		"scheduled_messages":        `md5(string_agg(id::text || status, ',' ORDER BY id))`,
		"device_tokens":             `md5(string_agg(id::text || active::text, ',' ORDER BY id))`,
		"notification_preferences":  `md5(string_agg(user_id::text || push_enabled::text || email_enabled::text || sms_enabled::text || coalesce(email, '') || coalesce(phone, ''), ',' ORDER BY user_id))`,
		"conversations":             `count(*)::text`,
		"conversation_participants": `md5(string_agg(conversation_id::text || user_id::text || coalesce(deleted_at::text, ''), ',' ORDER BY conversation_id, user_id))`,
		"message_search":            `count(*)::text`,
	} {
		var v *string
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT `+expr+` FROM `+table+filter[table]).Scan(&v), table)
		out[table] = "<empty>"
		if v != nil {
			out[table] = *v
		}
	}
	return out
}

// sweepKinds are the runner's periodic sweeps, as a SQL list.
const sweepKinds = `('deliver-pending', 'index-pending')`

// settle waits until the runner has worked every job due soon and indexed
// every new message, so that the tables change only through requests.
func (b *bundle) settle(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind NOT IN `+sweepKinds+` AND (state IN ('available', 'running', 'retryable', 'pending')
			OR (state = 'scheduled' AND scheduled_at < now() + interval '1 minute'))`) == 0 &&
			b.count(t, `SELECT count(*) FROM search_backlog`) == 0
	}, 30*time.Second, 100*time.Millisecond)
}

type hostileCase struct {
	name, method, path string
	contentType        string // "" sends no Content-Type
	body               []byte
	status             int
	code, field        string
	// mention is a phrase the error message must contain, so the client
	// learns what was wrong and not only that something was.
	mention string
}

func TestHostileInputIsRefusedNamedAndWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	base := b.nodes[0].base
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	tok := b.token(t, alice)
	code, res := b.post(t, 0, tok, msgBody(conv, bob, "the original"))
	require.Equal(t, http.StatusCreated, code, res)
	msgID := res["id"].(string)
	b.settle(t)
	before := b.fingerprint(t)

	const js = "application/json"
	obj := func(fields string) []byte { return []byte("{" + fields + "}") }
	target := `"conversation_id":"` + conv.String() + `","recipient_id":"` + bob.String() + `"`
	tenMB := obj(`"content":"` + strings.Repeat("x", 10<<20) + `"`)
	deep := []byte(strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000))
	shallowDeep := []byte(strings.Repeat("[", 1000) + strings.Repeat("]", 1000)) // under every body limit
	bodies := []struct {
		method, path string
		// ok is a valid body but for the field under test.
		content func(content string) []byte
		limit   bool // whether 10 MB is over this endpoint's body limit
	}{
		{http.MethodPost, "/v1/messages", func(c string) []byte { return obj(target + `,"content":` + c) }, true},
		{http.MethodPatch, "/v1/messages/" + msgID, func(c string) []byte { return obj(`"content":` + c) }, true},
		{http.MethodPost, "/v1/broadcasts", func(c string) []byte { return obj(`"recipient_ids":["` + bob.String() + `"],"content":` + c) }, false},
		{http.MethodPut, "/v1/me/notification-preferences", func(c string) []byte { return obj(`"email":true,"email_address":` + c) }, true},
		{http.MethodPost, "/v1/me/devices", func(c string) []byte { return obj(`"platform":"web","token":` + c) }, true},
	}
	fieldOf := map[string]string{"/v1/me/notification-preferences": "email_address", "/v1/me/devices": "token"}

	var cases []hostileCase
	for _, e := range bodies {
		field := fieldOf[e.path]
		if field == "" {
			field = "content"
		}
		name := func(s string) string { return e.method + " " + strings.Split(e.path, "/")[2] + ": " + s }
		if e.limit {
			cases = append(cases, hostileCase{name("10 MB body"), e.method, e.path, js, tenMB, 413, "body_too_large", "", "over"})
		} else {
			cases = append(cases, hostileCase{name("10 MB content"), e.method, e.path, js, e.content(`"` + strings.Repeat("x", 10<<20) + `"`), 400, "invalid_field", field, ""})
			cases = append(cases, hostileCase{name("100k nested arrays"), e.method, e.path, js, deep, 400, "bad_json", "", "JSON"})
		}
		cases = append(cases,
			hostileCase{name("1k nested arrays"), e.method, e.path, js, shallowDeep, 400, "bad_json", "", "JSON object"},
			hostileCase{name("nested objects in a string field"), e.method, e.path, js, e.content(strings.Repeat(`{"a":`, 500) + "1" + strings.Repeat("}", 500)), 400, "invalid_field", field, "wrong type"},
			hostileCase{name("invalid UTF-8"), e.method, e.path, js, e.content("\"\xff\xfe caf\xc3\""), 400, "bad_json", "", "UTF-8"},
			hostileCase{name("NUL"), e.method, e.path, js, e.content(`"a\u0000b@example.com"`), 400, "invalid_field", field, ""},
			hostileCase{name("raw NUL byte"), e.method, e.path, js, e.content("\"a\x00b\""), 400, "bad_json", "", "JSON"},
			hostileCase{name("number out of range"), e.method, e.path, js, e.content(`1e309`), 400, "invalid_field", field, "wrong type"},
			hostileCase{name("array body"), e.method, e.path, js, []byte(`["x"]`), 400, "bad_json", "", "JSON object"},
			hostileCase{name("two objects"), e.method, e.path, js, []byte(`{}{}`), 400, "bad_json", "", "exactly one"},
			hostileCase{name("cut off"), e.method, e.path, js, e.content(`"abc`), 400, "bad_json", "", "JSON"},
			hostileCase{name("text/plain"), e.method, e.path, "text/plain", e.content(`"hello"`), 415, "unsupported_type", "Content-Type", "application/json"},
			hostileCase{name("form"), e.method, e.path, "application/x-www-form-urlencoded", e.content(`"hello"`), 415, "unsupported_type", "Content-Type", "application/json"},
			hostileCase{name("multipart"), e.method, e.path, "multipart/form-data; boundary=x", e.content(`"hello"`), 415, "unsupported_type", "Content-Type", "application/json"},
			hostileCase{name("bad media type"), e.method, e.path, "application/json; =;", e.content(`"hello"`), 415, "unsupported_type", "Content-Type", "application/json"},
		)
	}
	send := func(extra string) []byte { return obj(target + `,"content":"x",` + extra) }
	cases = append(cases,
		hostileCase{"send: SQL in conversation_id", http.MethodPost, "/v1/messages", js, obj(`"conversation_id":"'; DROP TABLE messages; --","recipient_id":"` + bob.String() + `","content":"x"`), 400, "invalid_field", "conversation_id", "UUID"},
		hostileCase{"send: NUL in recipient_id", http.MethodPost, "/v1/messages", js, obj(`"conversation_id":"` + conv.String() + `","recipient_id":"\u0000","content":"x"`), 400, "invalid_field", "recipient_id", "UUID"},
		hostileCase{"send: traversal in id", http.MethodPost, "/v1/messages", js, send(`"id":"../../etc/passwd"`), 400, "invalid_field", "id", "UUID"},
		hostileCase{"send: delay_ms -1", http.MethodPost, "/v1/messages", js, send(`"delay_ms":-1`), 400, "invalid_field", "delay_ms", "between"},
		hostileCase{"send: delay_ms 2^63", http.MethodPost, "/v1/messages", js, send(`"delay_ms":9223372036854775808`), 400, "invalid_field", "delay_ms", "wrong type"},
		hostileCase{"send: delay_ms 1e309", http.MethodPost, "/v1/messages", js, send(`"delay_ms":1e309`), 400, "invalid_field", "delay_ms", "wrong type"},
		hostileCase{"send: send_at far future", http.MethodPost, "/v1/messages", js, send(`"send_at":"9999-12-31T23:59:59Z"`), 400, "invalid_field", "send_at", ""},
		hostileCase{"send: send_at SQL", http.MethodPost, "/v1/messages", js, send(`"send_at":"now()'; --"`), 400, "invalid_field", "send_at", "RFC 3339"},
		hostileCase{"send: priority NUL", http.MethodPost, "/v1/messages", js, send(`"priority":"high\u0000"`), 400, "invalid_field", "priority", ""},
		hostileCase{"broadcast: chunk_size 2^63", http.MethodPost, "/v1/broadcasts", js, obj(`"recipient_ids":["` + bob.String() + `"],"content":"x","chunk_size":9223372036854775808`), 400, "invalid_field", "chunk_size", "wrong type"},
		hostileCase{"broadcast: chunk_size -1", http.MethodPost, "/v1/broadcasts", js, obj(`"recipient_ids":["` + bob.String() + `"],"content":"x","chunk_size":-1`), 400, "invalid_field", "chunk_size", "between"},
		hostileCase{"broadcast: chunk_delay_ms 2^62", http.MethodPost, "/v1/broadcasts", js, obj(`"recipient_ids":["` + bob.String() + `"],"content":"x","chunk_delay_ms":4611686018427387904`), 400, "invalid_field", "chunk_delay_ms", "between"},
		hostileCase{"broadcast: SQL recipient", http.MethodPost, "/v1/broadcasts", js, obj(`"recipient_ids":["1'); DELETE FROM batches; --"],"content":"x"`), 400, "invalid_field", "recipient_ids[0]", "UUID"},
		hostileCase{"broadcast: NUL in template", http.MethodPost, "/v1/broadcasts", js, obj(`"recipient_ids":["` + bob.String() + `"],"template":"hi \u0000 {{.name}}"`), 400, "invalid_field", "template", "NUL"},
		hostileCase{"broadcast: NUL in variables", http.MethodPost, "/v1/broadcasts", js, obj(`"recipient_ids":["` + bob.String() + `"],"template":"hi {{.name}}","variables":{"` + bob.String() + `":{"name":"\u0000"}}`), 400, "invalid_field", "variables", "NUL"},
		hostileCase{"broadcast: traversal variables key", http.MethodPost, "/v1/broadcasts", js, obj(`"recipient_ids":["` + bob.String() + `"],"template":"hi","variables":{"../../etc/passwd":{}}`), 400, "invalid_field", "variables", "recipient id"},
		hostileCase{"preferences: phone SQL", http.MethodPut, "/v1/me/notification-preferences", js, obj(`"sms":true,"phone":"+1'; --"`), 400, "invalid_field", "phone", "E.164"},
		hostileCase{"device: platform NUL", http.MethodPost, "/v1/me/devices", js, obj(`"platform":"ios\u0000","token":"t"`), 400, "invalid_field", "platform", ""},
		hostileCase{"device: 10 KB token", http.MethodPost, "/v1/me/devices", js, obj(`"platform":"ios","token":"` + strings.Repeat("t", 8000) + `"`), 400, "invalid_field", "token", "4096"},
	)

	// Ids in paths: every route with one.
	idRoutes := []struct{ method, path, field string }{
		{http.MethodPatch, "/v1/messages/%s", "id"}, {http.MethodDelete, "/v1/messages/%s", "id"},
		{http.MethodDelete, "/v1/conversations/%s", "id"}, {http.MethodGet, "/v1/conversations/%s/messages", "id"},
		{http.MethodDelete, "/v1/me/devices/%s", "id"}, {http.MethodGet, "/v1/attachments/%s", "id"},
		{http.MethodGet, "/v1/broadcasts/%s", "id"}, {http.MethodDelete, "/v1/broadcasts/%s", "id"},
		{http.MethodDelete, "/v1/scheduled/%s", "id"}, {http.MethodGet, "/v1/dm/%s", "peer"},
	}
	for _, r := range idRoutes {
		for _, id := range []string{"..%2f..%2fetc%2fpasswd", "..%5c..%5cwindows", "%00", "%ff%fe", "1%27%3B%20DROP%20TABLE%20messages%3B--",
			"00000000-0000-0000-0000-000000000000", strings.Repeat("a", 10_000), "9223372036854775808"} {
			body := []byte(nil)
			if r.method == http.MethodPatch {
				body = obj(`"content":"edited"`)
			}
			cases = append(cases, hostileCase{fmt.Sprintf("%s %s id %.30s", r.method, r.path, id), r.method, fmt.Sprintf(r.path, id), js, body, 400, "invalid_field", r.field, "UUID"})
		}
	}
	// Query parameters.
	q := func(path, name, field, mention string) hostileCase {
		return hostileCase{"GET " + path, http.MethodGet, path, "", nil, 400, "invalid_field", field, mention}
	}
	hist := "/v1/conversations/" + conv.String() + "/messages"
	for _, n := range []string{"-1", "0", "1e309", "9223372036854775808", "1%3B%20DROP%20TABLE%20messages", "%00", "0x10"} {
		cases = append(cases,
			q("/v1/search?q=x&limit="+n, "limit", "limit", "between"),
			q(hist+"?limit="+n, "limit", "limit", "between"))
		if n != "0" {
			cases = append(cases, q(hist+"?after="+n, "after", "after", "between"))
		}
	}
	cases = append(cases,
		q("/v1/search?q=%00", "q", "q", "NUL"),
		q("/v1/search?q=%ff%fe", "q", "q", "UTF-8"),
		q("/v1/search?q="+strings.Repeat("x", 2000), "q", "q", "bytes"),
		q("/v1/search?q=x&cursor=..%2f..%2fetc%2fpasswd", "cursor", "cursor", "cursor"),
		q("/v1/search?q=x&cursor=TmFOfG5vdC1hLXV1aWQ", "cursor", "cursor", "cursor"),
		q("/v1/search?q=x&conversation_id=%27%3B--", "conversation_id", "conversation_id", "UUID"),
	)
	// Uploads: the file name is never used (the key is the server's), the
	// type must be allowed and match the bytes.
	cases = append(cases,
		hostileCase{"upload: 10 MB", http.MethodPost, "/v1/attachments", "text/plain", bytes.Repeat([]byte("x"), 10<<20), 413, "too_large", "", "at most"},
		hostileCase{"upload: JSON type", http.MethodPost, "/v1/attachments", js, []byte(`{}`), 415, "unsupported_type", "Content-Type", "not accepted"},
		hostileCase{"upload: no type", http.MethodPost, "/v1/attachments", "", []byte("hello"), 415, "unsupported_type", "Content-Type", "not accepted"},
		hostileCase{"upload: NUL bytes as text", http.MethodPost, "/v1/attachments", "text/plain", []byte("a\x00b\x00c"), 415, "type_mismatch", "Content-Type", "look like"},
		hostileCase{"upload: text as png", http.MethodPost, "/v1/attachments", "image/png", []byte("not a png"), 415, "type_mismatch", "Content-Type", "look like"},
		hostileCase{"upload: empty", http.MethodPost, "/v1/attachments", "text/plain", nil, 400, "empty", "", "empty"},
		hostileCase{"upload: traversal in type", http.MethodPost, "/v1/attachments", "../../etc/passwd", []byte("hello"), 415, "unsupported_type", "Content-Type", "not accepted"},
	)

	// In order, not parallel: the fingerprint below needs every case done.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, res := hostileRequest(t, tc.method, base+tc.path, tok, tc.contentType, tc.body, nil)
			require.Equal(t, tc.status, code, "%v", res)
			e, _ := res["error"].(map[string]any)
			require.NotNil(t, e, "no error object in %v", res)
			require.Equal(t, tc.code, e["code"], "%v", e)
			require.NotEmpty(t, e["message"])
			if tc.field != "" {
				require.Equal(t, tc.field, e["field"], "%v", e)
			}
			if tc.mention != "" {
				require.Contains(t, e["message"], tc.mention, "%v", e)
			}
		})
	}
	require.Equal(t, before, b.fingerprint(t), "a refused request wrote something")

	// A file name that climbs out of the store is ignored: the upload is
	// kept under the caller's id and a key of the server's choosing.
	code, res = hostileRequest(t, http.MethodPost, base+"/v1/attachments", tok, "text/plain; name=../../etc/passwd", []byte("harmless"),
		map[string]string{"Content-Disposition": `attachment; filename="../../../../etc/passwd"`})
	require.Equal(t, http.StatusCreated, code, res)
	var key string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT storage_key FROM attachments WHERE id = $1`, res["id"]).Scan(&key))
	require.Equal(t, alice.String()+"/"+res["id"].(string), key)
	require.NotContains(t, key, "..")
	if _, err := os.Stat(filepath.Join(os.TempDir(), "etc", "passwd")); err == nil {
		t.Fatal("an upload escaped its directory")
	}

	// Hostile websocket frames get error frames, write nothing, and the
	// socket stays usable.
	ws := b.dial(t, 0, tok)
	frames := []struct {
		raw         string
		code, field string
	}{
		{"{\"type\":\"send\",\"content\":\"\xff\"}", "bad_json", ""},
		{strings.Repeat("[", 100_000), "bad_json", ""},
		{`{"type":"send",` + target + `,"content":"a\u0000b"}`, "invalid_field", "content"},
		{`{"type":"send",` + target + `,"content":"x","delay_ms":1e309}`, "invalid_field", "delay_ms"},
		{`{"type":"send",` + target + `,"content":"x","delay_ms":-1}`, "invalid_field", "delay_ms"},
		{`{"type":"send","conversation_id":"'; DROP TABLE messages; --","recipient_id":"` + bob.String() + `","content":"x"}`, "invalid_field", "conversation_id"},
		{`{"type":"ack","message_id":"../../etc/passwd","status":"read"}`, "invalid_field", "message_id"},
		{`{"type":"ack","message_id":"` + msgID + `","status":"read\u0000"}`, "invalid_field", "status"},
		{`{"type":"resume","after":{"` + conv.String() + `":9223372036854775808}}`, "invalid_field", "after"},
		{`{"type":"resume","after":{"\u0000":1}}`, "invalid_field", "after"},
		{`[]`, "bad_json", ""},
	}
	for _, f := range frames {
		ws.write(f.raw)
		e := ws.expect("error", nil)
		require.Equal(t, f.code, e["code"], "%.60q: %v", f.raw, e)
		require.NotEmpty(t, e["message"])
		if f.field != "" {
			require.Equal(t, f.field, e["field"], "%.60q: %v", f.raw, e)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, ws.c.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2}))
	require.Equal(t, "bad_frame", ws.expect("error", nil)["code"])
	ws.write(map[string]any{"type": "ping", "ref": "still-alive"})
	require.Equal(t, "still-alive", ws.expect("pong", nil)["ref"])
	after := b.fingerprint(t)
	require.Equal(t, before["messages"], after["messages"], "a refused frame wrote a message")

	// Routes that take no input ignore hostile query strings and bodies:
	// their normal answer, nothing written.
	for _, path := range []string{"/v1/me/notification-preferences", "/v1/unread", "/v1/scheduled", "/healthz", "/readyz"} {
		t.Run("no input "+path, func(t *testing.T) {
			code, res := hostileRequest(t, http.MethodGet, base+path+"?limit=-1&q=%00&id=..%2f..%2fetc%2fpasswd&x=%ff", tok, "text/plain", deep, nil)
			require.Equal(t, http.StatusOK, code, "%v", res)
		})
	}
	require.Equal(t, after, b.fingerprint(t))

	// The process is healthy: a normal request succeeds on the same node.
	code, res = b.post(t, 0, tok, msgBody(conv, bob, "still here"))
	require.Equal(t, http.StatusCreated, code, res)
	code, _ = hostileRequest(t, http.MethodGet, base+"/healthz", tok, "", nil, nil)
	require.Equal(t, http.StatusOK, code)
}
