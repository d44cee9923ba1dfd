package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/validation"
)

func TestKindsMatchDesignTable(t *testing.T) {
	t.Parallel()
	want := map[string]struct {
		queue    string
		attempts int
	}{
		jobs.KindSendMessage:          {jobs.QueueMessageDelivery, 5},
		jobs.KindDeliveryConfirmation: {jobs.QueueMessageDelivery, 5},
		jobs.KindSendNotification:     {jobs.QueueMessageNotification, 3},
		jobs.KindIndexMessage:         {jobs.QueueMessageIndexing, 3},
		jobs.KindEncryptDecrypt:       {jobs.QueueMessageEncryption, 3},
		jobs.KindBatchSend:            {jobs.QueueBatchMessageSending, 3},
		jobs.KindCleanupMessages:      {jobs.QueueMessageCleanup, 2},
		jobs.KindReleaseScheduled:     {jobs.QueueMessageDelivery, 5},
		jobs.KindJobHistory:           {jobs.QueueMessageCleanup, 2},
		jobs.KindDeliverPending:       {jobs.QueueMessageDelivery, 1},
		jobs.KindIndexPending:         {jobs.QueueMessageIndexing, 1},
	}
	got := jobs.Kinds()
	require.Len(t, got, len(want))
	for _, k := range got {
		t.Run(k.Kind, func(t *testing.T) {
			t.Parallel()
			w, ok := want[k.Kind]
			require.True(t, ok, "unexpected kind %s", k.Kind)
			require.Equal(t, w.queue, k.Queue)
			require.Equal(t, w.attempts, k.MaxAttempts)
			require.True(t, k.Priority.Valid())
		})
	}
}

func TestQueueRetrySchedulesMatchDesignTable(t *testing.T) {
	t.Parallel()
	s := time.Second
	want := map[string]struct {
		workers int
		delays  []time.Duration
		timeout time.Duration
	}{
		// The one departure from the design's table: 50 delivery workers,
		// not 10 (see DefaultDeliveryWorkers).
		jobs.QueueMessageDelivery:     {50, []time.Duration{2 * s, 4 * s, 8 * s, 16 * s, 32 * s}, 30 * s},
		jobs.QueueMessageNotification: {15, []time.Duration{1 * s, 2 * s, 4 * s}, 20 * s},
		jobs.QueueMessageIndexing:     {3, []time.Duration{3 * s, 6 * s, 12 * s}, 60 * s},
		jobs.QueueMessageEncryption:   {5, []time.Duration{2 * s, 4 * s, 8 * s}, 45 * s},
		jobs.QueueBatchMessageSending: {2, []time.Duration{5 * s, 10 * s, 20 * s}, 5 * time.Minute},
		jobs.QueueMessageCleanup:      {1, []time.Duration{10 * s, 10 * s}, 10 * time.Minute},
	}
	got := jobs.DefaultQueues()
	require.Len(t, got, len(want))
	for _, q := range got {
		t.Run(q.Name, func(t *testing.T) {
			t.Parallel()
			w, ok := want[q.Name]
			require.True(t, ok, "unexpected queue %s", q.Name)
			require.Equal(t, w.workers, q.Workers)
			require.Equal(t, w.timeout, q.Timeout)
			for i, d := range w.delays {
				require.Equal(t, d, q.RetryDelay(i+1), "after attempt %d", i+1)
			}
		})
	}
	// Very high attempt numbers do not overflow into negative delays.
	require.Positive(t, got[0].RetryDelay(500))
}

func TestParsePriority(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]jobs.Priority{"critical": 1, "HIGH": 2, "normal": 3, "low": 4} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := jobs.ParsePriority(name)
			require.NoError(t, err)
			require.Equal(t, want, p)
		})
	}
	_, err := jobs.ParsePriority("urgent")
	require.ErrorContains(t, err, `unknown priority "urgent"`)
	require.Equal(t, "critical", jobs.PriorityCritical.String())
}

func TestArgsValidation(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	now := time.Now()
	cases := []struct {
		args  jobs.Args
		field string // "" means valid
	}{
		{jobs.SendMessageArgs{MessageID: id}, ""},
		{jobs.SendMessageArgs{}, "message_id"},
		{jobs.DeliveryConfirmationArgs{MessageID: id, UserID: id, Status: "read", At: now}, ""},
		{jobs.DeliveryConfirmationArgs{MessageID: id, UserID: id, Status: "seen", At: now}, "status"},
		{jobs.DeliveryConfirmationArgs{MessageID: id, Status: "read", At: now}, "user_id"},
		{jobs.DeliveryConfirmationArgs{MessageID: id, UserID: id, Status: "delivered"}, "at"},
		{jobs.SendNotificationArgs{MessageID: id, RecipientID: id, Channels: []string{"push", "email"}}, ""},
		{jobs.SendNotificationArgs{MessageID: id, RecipientID: id, Channels: []string{"fax"}}, "channels[0]"},
		{jobs.SendNotificationArgs{MessageID: id, RecipientID: id, Channels: []string{"sms", "sms"}}, "channels[1]"},
		{jobs.SendNotificationArgs{MessageID: id}, ""}, // a group message's: its members
		{jobs.SendNotificationArgs{RecipientID: id}, "message_id"},
		{jobs.IndexMessageArgs{MessageID: id, Operation: "delete"}, ""},
		{jobs.IndexMessageArgs{MessageID: id, Operation: "drop"}, "operation"},
		{jobs.EncryptDecryptArgs{Operation: "rotate", ConversationID: id, ReencryptContent: true}, ""},
		{jobs.EncryptDecryptArgs{Operation: "encrypt", ConversationID: id, ReencryptContent: true}, "reencrypt_content"},
		{jobs.EncryptDecryptArgs{Operation: "decrypt", ConversationID: id}, "requested_by"},
		{jobs.EncryptDecryptArgs{Operation: "encrypt"}, "conversation_id"},
		{jobs.BatchSendArgs{BatchID: id}, ""},
		{jobs.BatchSendArgs{}, "batch_id"},
		{jobs.CleanupMessagesArgs{Type: "old_messages", RetentionDays: 90, DryRun: true}, ""},
		{jobs.CleanupMessagesArgs{Type: "expired_attachments", BatchSize: 500}, ""},
		{jobs.CleanupMessagesArgs{Type: "old_messages"}, "retention_days"},
		{jobs.CleanupMessagesArgs{Type: "expired_attachments", RetentionDays: 3}, "retention_days"},
		{jobs.CleanupMessagesArgs{Type: "deleted_conversations", BatchSize: -1}, "batch_size"},
		{jobs.CleanupMessagesArgs{Type: "everything"}, "type"},
		{jobs.ReleaseScheduledArgs{ScheduledID: id}, ""},
		{jobs.ReleaseScheduledArgs{}, "scheduled_id"},
		{jobs.JobHistoryArgs{Hours: 2, ArchiveRetentionDays: 30}, ""},
		{jobs.JobHistoryArgs{Hours: 0, ArchiveRetentionDays: 30}, "hours"},
		{jobs.JobHistoryArgs{Hours: 2}, "archive_retention_days"},
		{jobs.DeliverPendingArgs{OlderThanMS: 2000, BatchSize: 500}, ""},
		{jobs.DeliverPendingArgs{BatchSize: 500}, "older_than_ms"},
		{jobs.DeliverPendingArgs{OlderThanMS: 2000, BatchSize: 10_001}, "batch_size"},
		{jobs.IndexPendingArgs{BatchSize: 500}, ""},
		{jobs.IndexPendingArgs{}, "batch_size"},
		{jobs.IndexPendingArgs{BatchSize: 10_001}, "batch_size"},
	}
	for _, tc := range cases {
		// Named by kind and outcome: "send-message/valid",
		// "send-message/bad_message_id"; a repeated name gets a #01 suffix.
		name := tc.args.Kind() + "/valid"
		if tc.field != "" {
			name = tc.args.Kind() + "/bad_" + tc.field
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.args.Validate()
			if tc.field == "" {
				require.NoError(t, err, "%#v", tc.args)
				return
			}
			var verr *validation.Error
			require.ErrorAs(t, err, &verr, "%#v", tc.args)
			require.Equal(t, tc.field, verr.Field, "%#v", tc.args)
		})
	}
}

func TestRiverRejectsInvalidArgsOnInsert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)

	_, err = client.Insert(ctx, jobs.SendMessageArgs{}, nil)
	var verr *validation.Error
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "message_id", verr.Field)

	// One bad args type in a batch rejects the whole batch.
	_, err = client.InsertMany(ctx, []river.InsertManyParams{
		{Args: jobs.SendMessageArgs{MessageID: uuid.New()}},
		{Args: jobs.CleanupMessagesArgs{Type: "old_messages"}},
	})
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "retention_days", verr.Field)

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job`).Scan(&n))
	require.Zero(t, n)

	// Valid args go in with their kind's defaults.
	res, err := client.Insert(ctx, jobs.CleanupMessagesArgs{Type: "old_messages", RetentionDays: 30}, nil)
	require.NoError(t, err)
	require.Equal(t, jobs.QueueMessageCleanup, res.Job.Queue)
	require.Equal(t, 2, res.Job.MaxAttempts)
}
