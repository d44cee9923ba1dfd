package db_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
)

func TestMessageWithPreferencesAndClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t, dbtest.URL(t))
	a, b, conv := uuid.New(), uuid.New(), uuid.New()
	tx, ins, err := db.BeginInsertMessage(ctx, conn, newMessage(conv, a, b))
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	// No stored preferences: the defaults.
	m, prefs, err := db.GetMessageWithPreferences(ctx, conn, ins.ID, b)
	require.NoError(t, err)
	require.Equal(t, ins.ID, m.ID)
	require.Equal(t, "hello", *m.Content)
	require.Equal(t, db.DefaultPreferences, prefs)
	email := "b@example.com"
	stored := db.Preferences{InApp: true, Email: true, EmailAddress: &email, NotifyWhenOnline: true}
	require.NoError(t, db.SetPreferences(ctx, conn, b, stored))
	_, prefs, err = db.GetMessageWithPreferences(ctx, conn, ins.ID, b)
	require.NoError(t, err)
	require.Equal(t, stored, prefs)
	_, _, err = db.GetMessageWithPreferences(ctx, conn, uuid.New(), b)
	require.ErrorIs(t, err, db.ErrNotFound)

	// Claims: one row per channel whatever the retries; a finished one
	// reads as finished, a new channel joins.
	first, err := db.ClaimNotifications(ctx, conn, ins.ID, b, []string{"in_app", "email"}, "new_message")
	require.NoError(t, err)
	require.Len(t, first, 2)
	require.Equal(t, "pending", first["in_app"].Status)
	title, body, pid, reason := "Title", "Body", "provider-1", "why"
	require.NoError(t, db.FinishNotifications(ctx, conn, map[uuid.UUID]db.NotificationResult{
		first["in_app"].ID: {Status: "sent", Title: &title, Body: &body, ProviderMessageID: &pid, Reason: &reason},
	}))
	// Every field lands in its own column.
	var gotTitle, gotBody, gotPID, gotReason string
	require.NoError(t, conn.QueryRow(ctx, `SELECT title, body, provider_message_id, failure_reason FROM notifications WHERE id = $1`,
		first["in_app"].ID).Scan(&gotTitle, &gotBody, &gotPID, &gotReason))
	require.Equal(t, []string{title, body, pid, reason}, []string{gotTitle, gotBody, gotPID, gotReason})
	again, err := db.ClaimNotifications(ctx, conn, ins.ID, b, []string{"in_app", "email", "push"}, "new_message")
	require.NoError(t, err)
	require.Equal(t, db.Claim{ID: first["in_app"].ID, Status: "sent"}, again["in_app"])
	require.Equal(t, first["email"], again["email"])
	require.Equal(t, "pending", again["push"].Status)
	require.Equal(t, 3, countRows(t, conn, "notifications"))
	// FinishNotifications only moves pending ones.
	require.NoError(t, db.FinishNotifications(ctx, conn, map[uuid.UUID]db.NotificationResult{
		again["in_app"].ID: {Status: "failed"}, again["push"].ID: {Status: "suppressed"},
	}))
	var inApp, push string
	require.NoError(t, conn.QueryRow(ctx, "SELECT status FROM notifications WHERE id = $1", again["in_app"].ID).Scan(&inApp))
	require.NoError(t, conn.QueryRow(ctx, "SELECT status FROM notifications WHERE id = $1", again["push"].ID).Scan(&push))
	require.Equal(t, "sent", inApp)
	require.Equal(t, "suppressed", push)
}
