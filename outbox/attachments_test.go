package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/validation"
)

func TestSendTxTakesAttachmentsInTheCallersTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	m := newMessage()
	attach := func(owner uuid.UUID, expires time.Time) uuid.UUID {
		a, err := db.InsertAttachment(ctx, b.pool, db.Attachment{ID: uuid.New(), OwnerID: owner, ContentType: "image/png",
			SizeBytes: 42, StorageKey: uuid.NewString(), ExpiresAt: expires})
		require.NoError(t, err)
		return a.ID
	}
	first, second := attach(m.SenderID, time.Now().Add(time.Hour)), attach(m.SenderID, time.Now().Add(time.Hour))
	expired := attach(m.SenderID, time.Now().Add(-time.Second))

	// Rolled back: the attachments stay free.
	m.AttachmentIDs = []uuid.UUID{second, first}
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		_, err := b.outbox.SendTx(ctx, tx, m)
		require.NoError(t, err)
		return errors.New("caller changed its mind")
	})
	require.EqualError(t, err, "caller changed its mind")
	a, err := db.GetAttachment(ctx, b.pool, first)
	require.NoError(t, err)
	require.Nil(t, a.MessageID)

	var res *outbox.Result
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		res, err = b.outbox.SendTx(ctx, tx, m)
		return err
	}))
	var refs []db.AttachmentRef
	require.NoError(t, json.Unmarshal(res.Attachments, &refs))
	require.Equal(t, []db.AttachmentRef{{ID: second, ContentType: "image/png", Size: 42}, {ID: first, ContentType: "image/png", Size: 42}}, refs, "in the order given")
	stored, err := db.GetMessage(ctx, b.pool, res.ID)
	require.NoError(t, err)
	require.JSONEq(t, string(res.Attachments), string(stored.Attachments))
	a, err = db.GetAttachment(ctx, b.pool, first)
	require.NoError(t, err)
	require.Equal(t, &res.ID, a.MessageID)

	// Taken, expired, or refused by the kind of send: a validation error.
	for name, send := range map[string]func() error{
		"taken": func() error {
			m2 := newMessage()
			m2.SenderID, m2.AttachmentIDs = m.SenderID, []uuid.UUID{first}
			_, err := b.outbox.Send(ctx, b.pool, m2)
			return err
		},
		"expired": func() error {
			m2 := newMessage()
			m2.SenderID, m2.AttachmentIDs = m.SenderID, []uuid.UUID{expired}
			_, err := b.outbox.Send(ctx, b.pool, m2)
			return err
		},
		"scheduled": func() error {
			m2 := newMessage()
			m2.SenderID, m2.AttachmentIDs = m.SenderID, []uuid.UUID{attach(m.SenderID, time.Now().Add(time.Hour))}
			_, err := b.outbox.Schedule(ctx, b.pool, m2, time.Now().Add(time.Minute))
			return err
		},
		"bulk": func() error {
			m2 := newMessage()
			m2.AttachmentIDs = []uuid.UUID{uuid.New()}
			return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
				_, err := b.outbox.SendManyTx(ctx, tx, []outbox.Message{m2})
				return err
			})
		},
	} {
		// Not parallel: the count below needs every case done.
		t.Run(name, func(t *testing.T) {
			var ve *validation.Error
			require.ErrorAs(t, send(), &ve)
			require.Contains(t, ve.Field, "attachment_ids")
		})
	}
	require.Equal(t, 1, count(t, b.pool, "messages"), "only the committed message was written")
}
