package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
)

func fastBatchRetries(q []jobs.QueueSpec) {
	for i := range q {
		if q[i].Name == jobs.QueueBatchMessageSending {
			q[i].RetryBase = 100 * time.Millisecond
		}
	}
}

func recipients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = uuid.New().String()
	}
	return out
}

func (b *bundle) broadcastStatus(t *testing.T, token, id string) map[string]any {
	t.Helper()
	code, body := do(t, http.MethodGet, b.nodes[0].base+"/v1/broadcasts/"+id, token, nil)
	require.Equal(t, http.StatusOK, code, body)
	return body
}

func (b *bundle) waitBroadcast(t *testing.T, token, id, status string) map[string]any {
	t.Helper()
	var last map[string]any
	require.Eventually(t, func() bool {
		last = b.broadcastStatus(t, token, id)
		return last["status"] == status
	}, 60*time.Second, 50*time.Millisecond, "broadcast never reached %s: %v", status, last)
	return last
}

func TestBroadcastSurvivesAFailedChunkAndHandoversWithoutDuplicates(t *testing.T) {
	t.Parallel()
	// A 6s timeout leaves each run a 1s budget before it snoozes and
	// continues in a fresh run from the cursor.
	b := setupWith(t, func(q []jobs.QueueSpec) {
		fastBatchRetries(q)
		for i := range q {
			if q[i].Name == jobs.QueueBatchMessageSending {
				q[i].Timeout = 6 * time.Second
			}
		}
	})
	sender := uuid.New()
	tok := b.token(t, sender)
	// The 550th message row ever inserted fails once, inside a chunk's
	// transaction (sequences ignore rollbacks, so it fires only once).
	ctx := context.Background()
	for _, stmt := range []string{
		`CREATE SEQUENCE fail_once`,
		`CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN IF nextval('fail_once') = 550 THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`,
		`CREATE TRIGGER fail_once BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION fail_once()`,
	} {
		_, err := b.pool.Exec(ctx, stmt)
		require.NoError(t, err)
	}

	const n = 1000
	code, res := do(t, http.MethodPost, b.nodes[0].base+"/v1/broadcasts", tok, map[string]any{
		"recipient_ids": recipients(n), "content": "hello everyone", "chunk_size": 100, "chunk_delay_ms": 250,
	})
	require.Equal(t, http.StatusAccepted, code, res)
	id := res["id"].(string)
	final := b.waitBroadcast(t, tok, id, "completed")
	require.EqualValues(t, n, final["processed"])
	require.EqualValues(t, 0, final["failed"])
	require.EqualValues(t, 100, final["percentage"])
	require.NotNil(t, final["finished_at"])

	require.Equal(t, n, b.count(t, `SELECT count(*) FROM messages WHERE sender_id = $1`, sender))
	require.Equal(t, n, b.count(t, `SELECT count(DISTINCT recipient_id) FROM messages WHERE sender_id = $1`, sender), "one each")
	require.Equal(t, n, b.count(t, `SELECT count(*) FROM batch_recipients WHERE message_id IS NOT NULL`))
	require.Equal(t, n, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'send-notification'`))
	require.Zero(t, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'send-message'`), "the chunks published their messages")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'batch-send' AND cardinality(errors) = 1`),
		"the injected failure was retried once")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'batch-send' AND (metadata->>'snoozes')::int >= 1`),
		"the job handed over to fresh runs")
}

func TestBroadcastTemplateCancelAndInputErrors(t *testing.T) {
	t.Parallel()
	b := setupWith(t, fastBatchRetries)
	sender := uuid.New()
	tok := b.token(t, sender)
	rs := recipients(3)
	code, res := do(t, http.MethodPost, b.nodes[0].base+"/v1/broadcasts", tok, map[string]any{
		"recipient_ids": rs, "template": "Hi {{.name}}!",
		"variables": map[string]any{rs[0]: map[string]string{"name": "Ann"}, rs[1]: map[string]string{"name": "Bo"}},
	})
	require.Equal(t, http.StatusAccepted, code, res)
	final := b.waitBroadcast(t, tok, res["id"].(string), "completed")
	require.EqualValues(t, 2, final["processed"])
	require.EqualValues(t, 1, final["failed"], "the recipient without variables fails alone")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM messages WHERE content = 'Hi Ann!'`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM batch_recipients WHERE error LIKE 'template:%'`))

	// Cancel stops at a chunk boundary.
	code, res = do(t, http.MethodPost, b.nodes[0].base+"/v1/broadcasts", tok, map[string]any{
		"recipient_ids": recipients(100), "content": "slow", "chunk_size": 10, "chunk_delay_ms": 300,
	})
	require.Equal(t, http.StatusAccepted, code, res)
	id := res["id"].(string)
	require.Eventually(t, func() bool { return b.broadcastStatus(t, tok, id)["current_chunk"].(float64) >= 1 }, 20*time.Second, 20*time.Millisecond)
	// While it runs, its job shows how far it is (the earlier design's
	// progress record), for River UI, GET /jobs/:id and admin jobs show.
	var progress struct {
		Percentage  float64 `json:"percentage"`
		Step        string  `json:"step"`
		TotalSteps  int     `json:"totalSteps"`
		CurrentStep int     `json:"currentStep"`
	}
	require.Eventually(t, func() bool {
		var raw []byte
		err := b.pool.QueryRow(context.Background(), `SELECT coalesce(metadata->'progress', 'null') FROM river_job
			WHERE kind = 'batch-send' AND args->>'batch_id' = $1 AND state = 'running'`, id).Scan(&raw)
		return err == nil && json.Unmarshal(raw, &progress) == nil && progress.CurrentStep >= 1
	}, 20*time.Second, 20*time.Millisecond, "a progress record while the job runs")
	require.Equal(t, "chunk", progress.Step)
	require.Equal(t, 10, progress.TotalSteps)
	require.Greater(t, progress.Percentage, 0.0)
	require.Less(t, progress.Percentage, 100.0)
	code, _ = do(t, http.MethodDelete, b.nodes[0].base+"/v1/broadcasts/"+id, b.token(t, uuid.New()), nil)
	require.Equal(t, http.StatusNotFound, code, "only the sender can cancel")
	code, _ = do(t, http.MethodDelete, b.nodes[0].base+"/v1/broadcasts/"+id, tok, nil)
	require.Equal(t, http.StatusAccepted, code)
	final = b.waitBroadcast(t, tok, id, "cancelled")
	processed := int(final["processed"].(float64))
	require.Less(t, processed, 100)
	require.Equal(t, 0, processed%10, "stopped at a chunk boundary")
	require.Equal(t, processed, b.count(t, `SELECT count(*) FROM messages WHERE content = 'slow'`))

	// Bad input: a clear error, nothing written.
	before := b.count(t, `SELECT count(*) FROM batches`)
	dup := uuid.New().String()
	cases := []struct {
		name   string
		body   map[string]any
		status int
		field  string
	}{
		{"no recipients", map[string]any{"recipient_ids": []string{}, "content": "x"}, 400, "recipient_ids"},
		{"no content", map[string]any{"recipient_ids": recipients(1)}, 400, "content"},
		{"content and template", map[string]any{"recipient_ids": recipients(1), "content": "x", "template": "y"}, 400, "content"},
		{"duplicate recipient", map[string]any{"recipient_ids": []string{dup, dup}, "content": "x"}, 400, "recipient_ids[1]"},
		{"recipient not a uuid", map[string]any{"recipient_ids": []string{"nope"}, "content": "x"}, 400, "recipient_ids[0]"},
		{"sender among recipients", map[string]any{"recipient_ids": []string{sender.String()}, "content": "x"}, 400, "recipient_ids[0]"},
		{"chunk_size over limit", map[string]any{"recipient_ids": recipients(1), "content": "x", "chunk_size": 1001}, 400, "chunk_size"},
		{"template does not parse", map[string]any{"recipient_ids": recipients(1), "template": "{{.broken"}, 400, "template"},
		{"unknown priority", map[string]any{"recipient_ids": recipients(1), "content": "x", "priority": "now"}, 400, "priority"},
		{"content over limit", map[string]any{"recipient_ids": recipients(1), "content": strings.Repeat("x", 1001)}, 400, "content"},
		{"NUL in content", map[string]any{"recipient_ids": recipients(1), "content": "a\x00b"}, 400, "content"},
		{"negative chunk delay", map[string]any{"recipient_ids": recipients(1), "content": "x", "chunk_delay_ms": -1}, 400, "chunk_delay_ms"},
		{"chunk delay overflows", map[string]any{"recipient_ids": recipients(1), "content": "x", "chunk_delay_ms": int64(18446744073710)}, 400, "chunk_delay_ms"},
		{"over 100,000 recipients", map[string]any{"recipient_ids": recipients(100001), "content": "x"}, 413, ""},
	}
	// Not parallel: the count of batches below needs every case done.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, res := do(t, http.MethodPost, b.nodes[0].base+"/v1/broadcasts", tok, tc.body)
			require.Equal(t, tc.status, code, "%v", res)
			if tc.field != "" {
				require.Equal(t, tc.field, res["error"].(map[string]any)["field"])
			}
		})
	}
	require.Equal(t, before, b.count(t, `SELECT count(*) FROM batches`))
	code, _ = do(t, http.MethodGet, b.nodes[0].base+"/v1/broadcasts/"+uuid.New().String(), tok, nil)
	require.Equal(t, http.StatusNotFound, code)
}

// A chunk's messages are published and marked sent right after the chunk
// commits, without send-message jobs and before the deliver-pending sweep
// would take them (DefaultDeliveryBackstop); a recipient online gets the
// frame.
func TestBroadcastChunkIsDeliveredAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sender := uuid.New()
	tok := b.token(t, sender)
	rcpts := recipients(50)
	ws := b.dial(t, 1, b.token(t, uuid.MustParse(rcpts[7])))
	code, res := do(t, http.MethodPost, b.nodes[0].base+"/v1/broadcasts", tok, map[string]any{
		"recipient_ids": rcpts, "content": "fast broadcast", "chunk_size": 25,
	})
	require.Equal(t, http.StatusAccepted, code, res)
	b.waitBroadcast(t, tok, res["id"].(string), "completed")
	f := ws.expect("message", nil)
	require.Equal(t, "fast broadcast", f["content"])
	require.Equal(t, 50, b.count(t, `SELECT count(*) FROM messages m
		WHERE m.sender_id = $1 AND m.sent_at < m.created_at + $2::interval`, sender, outbox.DefaultDeliveryBackstop.String()),
		"sent before the backstop was due")
	require.Zero(t, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'send-message'`))
}
