package workers_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/workers"
)

type deliveryBundle struct {
	pool   *pgxpool.Pool
	outbox *outbox.Outbox
	keys   fanout.Keys
	start  func(deliveryWorkers int) *runner.Runner
}

// setupDelivery prepares a database, Redis prefix and outbox; start runs
// every worker with the given number of message-delivery workers.
func setupDelivery(t *testing.T) *deliveryBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	rdb, prefix := dbtest.Redis(t)
	keys := fanout.Keys{Prefix: prefix}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(client, outbox.Config{})
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &deliveryBundle{pool: pool, outbox: ob, keys: keys}
	b.start = func(deliveryWorkers int) *runner.Runner {
		queues := jobs.DefaultQueues()
		queues[0].Workers = deliveryWorkers
		ws := river.NewWorkers()
		require.NoError(t, workers.Register(ws, workers.Deps{
			Pool: pool, Logger: logger, Outbox: ob, Fanout: fanout.New(rdb, fanout.Config{Keys: keys}),
		}, queues))
		r, err := runner.New(pool, runner.Config{Queues: queues, Workers: ws, Logger: logger})
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background()))
		t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
		return r
	}
	return b
}

func TestUrgentMessageOvertakesABacklog(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	ctx := context.Background()
	alice, bob := uuid.New(), uuid.New()
	conv := uuid.New()
	for range 40 {
		_, err := b.outbox.Send(ctx, b.pool, outbox.Message{ConversationID: conv, SenderID: alice, RecipientID: bob, Content: "routine"})
		require.NoError(t, err)
	}
	urgent, err := b.outbox.Send(ctx, b.pool, outbox.Message{ConversationID: conv, SenderID: alice, RecipientID: bob, Content: "URGENT", Priority: "critical"})
	require.NoError(t, err)

	b.start(1) // one delivery worker: jobs run one at a time, by priority
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE status = 'sent'`).Scan(&n))
		return n == 41
	}, 30*time.Second, 50*time.Millisecond)

	var first uuid.UUID
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT id FROM messages ORDER BY sent_at, seq LIMIT 1`).Scan(&first))
	require.Equal(t, urgent.ID, first, "the critical message, inserted last, was delivered first")
}

func TestSendMessageRetryDeliversOnce(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	ctx := context.Background()
	alice, bob := uuid.New(), uuid.New()
	rdb, _ := dbtest.Redis(t)
	sub := rdb.Subscribe(ctx, b.keys.UserChannel(bob))
	defer sub.Close()
	_, err := sub.Receive(ctx) // subscription confirmed
	require.NoError(t, err)

	res, err := b.outbox.Send(ctx, b.pool, outbox.Message{ConversationID: uuid.New(), SenderID: alice, RecipientID: bob, Content: "once"})
	require.NoError(t, err)
	r := b.start(1)
	// A second job for the same message, as a retry after a crash would be.
	_, err = r.Client().Insert(ctx, jobs.SendMessageArgs{MessageID: res.ID}, nil)
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'send-message' AND state = 'completed'`).Scan(&n))
		return n == 2
	}, 20*time.Second, 50*time.Millisecond)
	m, err := db.GetMessage(ctx, b.pool, res.ID)
	require.NoError(t, err)
	require.Equal(t, db.MessageSent, m.Status)

	frames := 0
	ch := sub.Channel()
	timeout := time.After(time.Second)
loop:
	for {
		select {
		case m := <-ch:
			if strings.Contains(m.Payload, `"type":"message"`) {
				frames++
			}
		case <-timeout:
			break loop
		}
	}
	require.Equal(t, 1, frames, "the second run found the message sent and published nothing")
}
