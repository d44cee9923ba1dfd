package workers

import (
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/jobs"
)

// policyOf is the part of every worker these tests look at.
type policyOf interface {
	timeout() time.Duration
	delay(attempt int) time.Duration
}

type probe[T river.JobArgs] struct{ p Policy[T] }

func (x probe[T]) timeout() time.Duration {
	return x.p.Timeout(&river.Job[T]{JobRow: &rivertype.JobRow{}})
}

func (x probe[T]) delay(attempt int) time.Duration {
	before := time.Now()
	next := x.p.NextRetry(&river.Job[T]{JobRow: &rivertype.JobRow{Attempt: attempt}})
	return next.Sub(before).Round(100 * time.Millisecond)
}

func TestEachKindHasTheTimeoutAndRetryScheduleOfTheDesign(t *testing.T) {
	t.Parallel()
	s, err := newSet(Deps{}, jobs.DefaultQueues())
	require.NoError(t, err)
	sec := time.Second
	byKind := map[string]policyOf{
		jobs.KindSendMessage:          probe[jobs.SendMessageArgs]{s.sendMessage.Policy},
		jobs.KindDeliveryConfirmation: probe[jobs.DeliveryConfirmationArgs]{s.deliveryConfirmation.Policy},
		jobs.KindSendNotification:     probe[jobs.SendNotificationArgs]{s.sendNotification.Policy},
		jobs.KindIndexMessage:         probe[jobs.IndexMessageArgs]{s.indexMessage.Policy},
		jobs.KindEncryptDecrypt:       probe[jobs.EncryptDecryptArgs]{s.encryptDecrypt.Policy},
		jobs.KindBatchSend:            probe[jobs.BatchSendArgs]{s.batchSend.Policy},
		jobs.KindCleanupMessages:      probe[jobs.CleanupMessagesArgs]{s.cleanupMessages.Policy},
		jobs.KindReleaseScheduled:     probe[jobs.ReleaseScheduledArgs]{s.releaseScheduled.Policy},
		jobs.KindJobHistory:           probe[jobs.JobHistoryArgs]{s.jobHistory.Policy},
		jobs.KindDeliverPending:       probe[jobs.DeliverPendingArgs]{s.deliverPending.Policy},
		jobs.KindIndexPending:         probe[jobs.IndexPendingArgs]{s.indexPending.Policy},
	}
	want := map[string]struct {
		timeout time.Duration
		delays  []time.Duration
	}{
		jobs.KindSendMessage:          {30 * sec, []time.Duration{2 * sec, 4 * sec, 8 * sec, 16 * sec, 32 * sec}},
		jobs.KindDeliveryConfirmation: {30 * sec, []time.Duration{2 * sec, 4 * sec, 8 * sec, 16 * sec, 32 * sec}},
		jobs.KindSendNotification:     {20 * sec, []time.Duration{1 * sec, 2 * sec, 4 * sec}},
		jobs.KindIndexMessage:         {60 * sec, []time.Duration{3 * sec, 6 * sec, 12 * sec}},
		jobs.KindEncryptDecrypt:       {45 * sec, []time.Duration{2 * sec, 4 * sec, 8 * sec}},
		jobs.KindBatchSend:            {5 * time.Minute, []time.Duration{5 * sec, 10 * sec, 20 * sec}},
		jobs.KindCleanupMessages:      {10 * time.Minute, []time.Duration{10 * sec, 10 * sec}},
		jobs.KindReleaseScheduled:     {30 * sec, []time.Duration{2 * sec, 4 * sec, 8 * sec, 16 * sec}},
		jobs.KindJobHistory:           {10 * time.Minute, []time.Duration{10 * sec}},
		jobs.KindDeliverPending:       {30 * sec, nil},
		jobs.KindIndexPending:         {60 * sec, nil},
	}
	for _, k := range jobs.Kinds() {
		t.Run(k.Kind, func(t *testing.T) {
			t.Parallel()
			p, ok := byKind[k.Kind]
			require.True(t, ok, "kind %s has no worker", k.Kind)
			w := want[k.Kind]
			require.Equal(t, w.timeout, p.timeout())
			for i, d := range w.delays {
				require.Equal(t, d, p.delay(i+1), "after attempt %d", i+1)
			}
		})
	}
}

func TestNewSetRequiresEveryQueue(t *testing.T) {
	t.Parallel()
	queues := jobs.DefaultQueues()[1:] // message-delivery missing
	_, err := newSet(Deps{}, queues)
	require.ErrorContains(t, err, `no settings for queue "message-delivery"`)
}
