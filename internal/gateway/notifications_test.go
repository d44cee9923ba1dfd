package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/gateway"
)

func (b *bundle) notifications(t *testing.T, message string) map[string]string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT channel::text, status::text FROM notifications WHERE message_id = $1`, uuid.MustParse(message))
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var ch, st string
		require.NoError(t, rows.Scan(&ch, &st))
		out[ch] = st
	}
	return out
}

func (b *bundle) waitNotified(t *testing.T, message string, channels int) map[string]string {
	t.Helper()
	var got map[string]string
	require.Eventually(t, func() bool {
		got = b.notifications(t, message)
		done := 0
		for _, st := range got {
			if st != "pending" {
				done++
			}
		}
		return done == channels
	}, 20*time.Second, 50*time.Millisecond, "notifications: %v", got)
	return got
}

func TestNotificationsFollowPreferencesPresenceAndNeverRepeat(t *testing.T) {
	t.Parallel()
	b := setup(t)
	alice, bob := uuid.New(), uuid.New()
	conv := gateway.DirectConversationID(alice, bob)
	aliceTok, bobTok := b.token(t, alice), b.token(t, bob)

	// Bob online: in-app arrives live; push is suppressed.
	bobWS := b.dial(t, 1, bobTok)
	_, res := b.post(t, 0, aliceTok, msgBody(conv, bob, strings.Repeat("long preview ", 20)))
	id := res["id"].(string)
	n := bobWS.expect("notification", nil)
	require.Equal(t, id, n["message_id"])
	require.Equal(t, "New message", n["title"])
	require.LessOrEqual(t, len([]rune(n["body"].(string))), 101, "the preview is cut")
	require.Equal(t, map[string]string{"in_app": "sent", "push": "suppressed"}, b.waitNotified(t, id, 2))

	// A retry of the same job changes nothing and notifies nobody twice.
	r, err := b.pool.Exec(context.Background(), `UPDATE river_job SET state = 'available', scheduled_at = now(), finalized_at = NULL
		WHERE kind = 'send-notification' AND args->>'message_id' = $1`, id)
	require.NoError(t, err)
	require.EqualValues(t, 1, r.RowsAffected())
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'send-notification' AND args->>'message_id' = $1 AND state = 'completed'`, id) == 1
	}, 20*time.Second, 50*time.Millisecond)
	bobWS.quiet("notification", 500*time.Millisecond)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM notifications WHERE message_id = $1`, uuid.MustParse(id)))

	// Preferences: email on; and a critical message while Bob is offline.
	code, body := do(t, http.MethodPut, b.nodes[0].base+"/v1/me/notification-preferences", bobTok, map[string]any{
		"push": true, "in_app": false, "email": true, "email_address": "bob@example.com"})
	require.Equal(t, http.StatusOK, code, body)
	code, body = do(t, http.MethodGet, b.nodes[0].base+"/v1/me/notification-preferences", bobTok, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, true, body["email"])
	_, res = b.post(t, 0, aliceTok, map[string]any{"conversation_id": conv, "recipient_id": bob, "content": "urgent", "priority": "critical"})
	got := b.waitNotified(t, res["id"].(string), 2)
	require.Equal(t, map[string]string{"email": "cancelled", "push": "cancelled"}, got, "no provider yet: recorded as disabled, never as sent")
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'send-notification' AND state = 'cancelled'`) == 1
	}, 20*time.Second, 50*time.Millisecond, "a job whose every channel is disabled is cancelled")
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM notifications WHERE failure_reason LIKE 'channel disabled:%'`))

	// Encrypted messages never put their preview in a notification.
	code, _ = do(t, http.MethodPut, b.nodes[0].base+"/v1/me/notification-preferences", bobTok, map[string]any{"in_app": true})
	require.Equal(t, http.StatusOK, code)
	_, res = b.post(t, 0, aliceTok, map[string]any{"conversation_id": conv, "recipient_id": bob, "content": "sealed secret", "requires_encryption": true})
	b.waitNotified(t, res["id"].(string), 1)
	require.Zero(t, b.count(t, `SELECT count(*) FROM notifications WHERE body LIKE '%secret%'`))

	// Bad input.
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"email without an address", map[string]any{"email": true}},
		{"address not an address", map[string]any{"email_address": "not an address"}},
		{"phone not E.164", map[string]any{"phone": "555-0100"}},
		{"push not a boolean", map[string]any{"push": "yes"}},
	} {
		t.Run("preferences "+tc.name, func(t *testing.T) {
			code, _ := do(t, http.MethodPut, b.nodes[0].base+"/v1/me/notification-preferences", bobTok, tc.body)
			require.Equal(t, http.StatusBadRequest, code, "%v", tc.body)
		})
	}

	// Devices.
	code, dev := do(t, http.MethodPost, b.nodes[0].base+"/v1/me/devices", bobTok, map[string]any{"platform": "ios", "token": "tok-123"})
	require.Equal(t, http.StatusCreated, code, dev)
	code, _ = do(t, http.MethodDelete, b.nodes[0].base+"/v1/me/devices/"+dev["id"].(string), aliceTok, nil)
	require.Equal(t, http.StatusNotFound, code, "only the owner")
	code, _ = do(t, http.MethodDelete, b.nodes[0].base+"/v1/me/devices/"+dev["id"].(string), bobTok, nil)
	require.Equal(t, http.StatusNoContent, code)
	code, _ = do(t, http.MethodPost, b.nodes[0].base+"/v1/me/devices", bobTok, map[string]any{"platform": "palm", "token": "x"})
	require.Equal(t, http.StatusBadRequest, code)
}
