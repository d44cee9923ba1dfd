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

	// No stored preferences: the defaults, and a claim for each channel
	// they enable.
	got, err := db.ClaimMessageNotifications(ctx, conn, ins.ID, b, nil, "new_message")
	require.NoError(t, err)
	require.Equal(t, ins.ID, got.Message.ID)
	require.Equal(t, "hello", *got.Message.Content)
	require.Equal(t, db.DefaultPreferences, got.Preferences)
	require.Equal(t, []string{"in_app", "push"}, got.Channels)
	require.Equal(t, "pending", got.Claims["in_app"].Status)
	require.Equal(t, "pending", got.Claims["push"].Status)
	require.Equal(t, 2, countRows(t, conn, "notifications"))

	// Stored preferences decide the channels.
	email := "b@example.com"
	stored := db.Preferences{InApp: true, Email: true, EmailAddress: &email, NotifyWhenOnline: true}
	require.NoError(t, db.SetPreferences(ctx, conn, b, stored))
	first, err := db.ClaimMessageNotifications(ctx, conn, ins.ID, b, nil, "new_message")
	require.NoError(t, err)
	require.Equal(t, stored, first.Preferences)
	require.Equal(t, []string{"email", "in_app"}, first.Channels)
	require.Equal(t, got.Claims["in_app"], first.Claims["in_app"], "one row per channel whatever the retries")
	require.Equal(t, 3, countRows(t, conn, "notifications"))

	_, err = db.ClaimMessageNotifications(ctx, conn, uuid.New(), b, nil, "new_message")
	require.ErrorIs(t, err, db.ErrNotFound)
	require.Equal(t, 3, countRows(t, conn, "notifications"), "no claim for a message that does not exist")

	// Nothing enabled: the message and no channel.
	require.NoError(t, db.SetPreferences(ctx, conn, b, db.Preferences{}))
	none, err := db.ClaimMessageNotifications(ctx, conn, ins.ID, b, nil, "new_message")
	require.NoError(t, err)
	require.Equal(t, ins.ID, none.Message.ID)
	require.Empty(t, none.Channels)
	require.Empty(t, none.Claims)

	// Claims: a finished one reads as finished, a new channel joins.
	title, body, pid, reason := "Title", "Body", "provider-1", "why"
	require.NoError(t, db.FinishNotifications(ctx, conn, map[uuid.UUID]db.NotificationResult{
		first.Claims["in_app"].ID: {Status: "sent", Title: &title, Body: &body, ProviderMessageID: &pid, Reason: &reason},
	}))
	// Every field lands in its own column.
	var gotTitle, gotBody, gotPID, gotReason string
	require.NoError(t, conn.QueryRow(ctx, `SELECT title, body, provider_message_id, failure_reason FROM notifications WHERE id = $1`,
		first.Claims["in_app"].ID).Scan(&gotTitle, &gotBody, &gotPID, &gotReason))
	require.Equal(t, []string{title, body, pid, reason}, []string{gotTitle, gotBody, gotPID, gotReason})
	// Explicit channels override the preferences.
	claimed, err := db.ClaimMessageNotifications(ctx, conn, ins.ID, b, []string{"in_app", "email", "push", "sms"}, "new_message")
	require.NoError(t, err)
	require.Equal(t, []string{"email", "in_app", "push", "sms"}, claimed.Channels)
	again := claimed.Claims
	require.Equal(t, db.Claim{ID: first.Claims["in_app"].ID, Status: "sent"}, again["in_app"])
	require.Equal(t, first.Claims["email"], again["email"])
	require.Equal(t, got.Claims["push"], again["push"])
	require.Equal(t, "pending", again["sms"].Status)
	require.Equal(t, 4, countRows(t, conn, "notifications"))
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
