package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/gateway"
)

func TestScheduledMessageIsHeldUntilDue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok, bobTok := b.token(t, alice), b.token(t, bob)

	code, res := b.post(t, 0, aliceTok, map[string]any{
		"conversation_id": conv, "recipient_id": bob, "content": "later", "delay_ms": 1500, "priority": "high",
	})
	require.Equal(t, http.StatusAccepted, code, res)
	require.Equal(t, "scheduled", res["status"])
	id := res["id"].(string)

	code, list := do(t, http.MethodGet, b.nodes[0].base+"/v1/scheduled", aliceTok, nil)
	require.Equal(t, http.StatusOK, code)
	items := list["scheduled"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, id, items[0].(map[string]any)["id"])
	require.Equal(t, "later", items[0].(map[string]any)["content"])
	_, other := do(t, http.MethodGet, b.nodes[0].base+"/v1/scheduled", bobTok, nil)
	require.Empty(t, other["scheduled"], "only the sender sees it")

	// Held: not in resume, no message row.
	bobWS := b.dial(t, 1, bobTok)
	bobWS.write(map[string]any{"type": "resume", "after": map[string]int64{}})
	require.EqualValues(t, 0, bobWS.expect("resumed", nil)["messages"])
	require.Zero(t, b.count(t, `SELECT count(*) FROM messages`))

	// Due: it becomes a real message with the same id and flows as usual.
	f := bobWS.expect("message", nil)
	require.Equal(t, id, f["id"])
	require.Equal(t, "later", f["content"])
	require.EqualValues(t, 1, f["seq"])
	_, list = do(t, http.MethodGet, b.nodes[0].base+"/v1/scheduled", aliceTok, nil)
	require.Empty(t, list["scheduled"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM scheduled_messages WHERE status = 'released' AND message_id = $1`, uuid.MustParse(id)))
	require.Equal(t, 2, b.count(t, `SELECT priority FROM messages WHERE id = $1`, uuid.MustParse(id)), "keeps its priority")
}

func TestCancelledScheduledMessageIsNeverSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok := b.token(t, alice)
	at := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	code, res := b.post(t, 0, aliceTok, map[string]any{"conversation_id": conv, "recipient_id": bob, "content": "never", "send_at": at})
	require.Equal(t, http.StatusAccepted, code, res)
	url := b.nodes[0].base + "/v1/scheduled/" + res["id"].(string)

	code, _ = do(t, http.MethodDelete, url, b.token(t, bob), nil)
	require.Equal(t, http.StatusNotFound, code, "only the sender can cancel")
	code, _ = do(t, http.MethodDelete, url, aliceTok, nil)
	require.Equal(t, http.StatusNoContent, code)
	code, _ = do(t, http.MethodDelete, url, aliceTok, nil)
	require.Equal(t, http.StatusNotFound, code, "already cancelled")

	// Its release job runs when due and does nothing.
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'release-scheduled-message' AND state = 'completed'`) == 1
	}, 20*time.Second, 100*time.Millisecond)
	require.Zero(t, b.count(t, `SELECT count(*) FROM messages`))
}

func TestScheduleInputErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob, eve := uuid.New(), uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok := b.token(t, alice)
	code, _ := b.post(t, 0, aliceTok, msgBody(conv, bob, "hi"))
	require.Equal(t, http.StatusCreated, code)

	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"conversation_id": conv, "recipient_id": bob, "content": "x"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name   string
		body   map[string]any
		tok    string
		status int
		field  string
	}{
		{"send_at in the past", base(map[string]any{"send_at": time.Now().Add(-time.Hour).Format(time.RFC3339)}), aliceTok, 400, "send_at"},
		{"send_at not a time", base(map[string]any{"send_at": "tomorrow"}), aliceTok, 400, "send_at"},
		{"send_at and delay_ms", base(map[string]any{"send_at": time.Now().Add(time.Hour).Format(time.RFC3339), "delay_ms": 5}), aliceTok, 400, "send_at"},
		{"delay_ms negative", base(map[string]any{"delay_ms": -5}), aliceTok, 400, "delay_ms"},
		{"delay_ms not a number", base(map[string]any{"delay_ms": "soon"}), aliceTok, 400, "delay_ms"},
		{"empty content", base(map[string]any{"delay_ms": 1000, "content": ""}), aliceTok, 400, "content"},
		{"foreign conversation", base(map[string]any{"delay_ms": 1000}), b.token(t, eve), 403, ""},
	}
	// Not parallel: the count below needs every case done.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, res := b.post(t, 0, tc.tok, tc.body)
			require.Equal(t, tc.status, code, "%v: %v", tc.body, res)
			if tc.field != "" {
				require.Equal(t, tc.field, res["error"].(map[string]any)["field"], "%v", tc.body)
			}
		})
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM scheduled_messages`))
}

func TestRetriedScheduleWithSameIDHoldsOneMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok := b.token(t, alice)
	id := uuid.New()
	req := map[string]any{"id": id, "conversation_id": conv, "recipient_id": bob, "content": "later", "delay_ms": 60_000}

	code, first := b.post(t, 0, aliceTok, req)
	require.Equal(t, http.StatusAccepted, code, first)
	require.Equal(t, id.String(), first["id"])
	code, again := b.post(t, 1, aliceTok, req)
	require.Equal(t, http.StatusAccepted, code, again)
	require.Equal(t, id.String(), again["id"])
	require.Equal(t, "scheduled", again["status"])
	require.Equal(t, first["send_at"], again["send_at"], "answered from the stored message")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM scheduled_messages`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'release-scheduled-message'`))

	// The same id from someone else, or elsewhere, is taken.
	carol := uuid.New()
	code, res := b.post(t, 0, b.token(t, carol), map[string]any{
		"id": id, "conversation_id": gateway.DirectConversationID(carol, bob), "recipient_id": bob, "content": "x", "delay_ms": 60_000,
	})
	require.Equal(t, http.StatusConflict, code, res)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM scheduled_messages`))

	// After a cancel, a retry tells the truth instead of scheduling again.
	code, _ = do(t, http.MethodDelete, b.nodes[0].base+"/v1/scheduled/"+id.String(), aliceTok, nil)
	require.Equal(t, http.StatusNoContent, code)
	code, res = b.post(t, 0, aliceTok, req)
	require.Equal(t, http.StatusAccepted, code, res)
	require.Equal(t, "cancelled", res["status"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM scheduled_messages`))
}

// An id already used by a sent message cannot be scheduled: refused at
// once with 409 id_taken, nothing held (it used to be accepted and fail at
// release).
func TestScheduleWithTheIDOfASentMessageIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok := b.token(t, alice)
	id := uuid.New()
	code, res := b.post(t, 0, aliceTok, map[string]any{"id": id, "conversation_id": conv, "recipient_id": bob, "content": "now"})
	require.Equal(t, http.StatusCreated, code, res)

	code, res = b.post(t, 1, aliceTok, map[string]any{"id": id, "conversation_id": conv, "recipient_id": bob, "content": "later", "delay_ms": 60_000})
	require.Equal(t, http.StatusConflict, code, res)
	require.Equal(t, "id_taken", res["error"].(map[string]any)["code"])
	require.Zero(t, b.count(t, `SELECT count(*) FROM scheduled_messages`))
	require.Zero(t, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'release-scheduled-message'`))
}

func TestEncryptedScheduledMessageIsHeldSealed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok, bobTok := b.token(t, alice), b.token(t, bob)

	code, res := b.post(t, 0, aliceTok, map[string]any{
		"conversation_id": conv, "recipient_id": bob, "content": "sealed for later", "delay_ms": 1500, "requires_encryption": true,
	})
	require.Equal(t, http.StatusAccepted, code, res)
	require.Equal(t, true, res["encrypted"])
	require.Nil(t, res["content"])
	id := uuid.MustParse(res["id"].(string))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM scheduled_messages WHERE id = $1 AND content IS NULL AND ciphertext IS NOT NULL AND key_id IS NOT NULL`, id),
		"held sealed: no plaintext in the table")
	require.Zero(t, b.count(t, `SELECT count(*) FROM scheduled_messages WHERE position('sealed for later'::bytea in ciphertext) > 0`))

	// The sender's list opens it.
	code, list := do(t, http.MethodGet, b.nodes[0].base+"/v1/scheduled", aliceTok, nil)
	require.Equal(t, http.StatusOK, code)
	item := list["scheduled"].([]any)[0].(map[string]any)
	require.Equal(t, "sealed for later", item["content"])
	require.Equal(t, true, item["encrypted"])

	// Due: a sealed message, opened for its recipient.
	bobWS := b.dial(t, 1, bobTok)
	f := bobWS.expect("message", nil)
	require.Equal(t, id.String(), f["id"])
	require.Equal(t, "sealed for later", f["content"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM messages WHERE id = $1 AND content IS NULL AND ciphertext IS NOT NULL`, id))
}
