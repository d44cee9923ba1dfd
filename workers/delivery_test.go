package workers_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
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

// Messages written without a send-message job (their writer publishes
// them) are published by deliver-pending once they have been pending
// longer than the backstop delay, oldest first and in batches, and marked
// sent; younger ones are left to their writer; a run while Redis is down
// publishes nothing, fails nothing, and the next run delivers.
func TestDeliverPendingPublishesWhatItsWriterDidNot(t *testing.T) {
	t.Parallel()
	b := setupDelivery(t)
	ctx := context.Background()
	alice, bob := uuid.New(), uuid.New()
	rdb, _ := dbtest.Redis(t)
	sub := rdb.Subscribe(ctx, b.keys.UserChannel(bob))
	defer sub.Close()
	_, err := sub.Receive(ctx)
	require.NoError(t, err)

	var ids []uuid.UUID
	for i := range 7 {
		res, err := b.outbox.Send(ctx, b.pool, outbox.Message{ConversationID: uuid.New(), SenderID: alice, RecipientID: bob,
			Content: "orphan " + strconv.Itoa(i), CallerPublishes: true})
		require.NoError(t, err)
		require.NotContains(t, kinds(res.Jobs), jobs.KindSendMessage, "the caller publishes it")
		ids = append(ids, res.ID)
	}
	// Backdate six of them past the backstop delay; the seventh is fresh.
	_, err = b.pool.Exec(ctx, `UPDATE messages SET created_at = created_at - interval '1 minute' WHERE id = ANY($1)`, ids[:6])
	require.NoError(t, err)

	r := b.start(1)
	res, err := r.Client().Insert(ctx, jobs.DeliverPendingArgs{OlderThanMS: 30_000, BatchSize: 4}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return job(t, b.pool, res.Job.ID).Finished }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, "completed", job(t, b.pool, res.Job.ID).State)

	for i, id := range ids {
		m, err := db.GetMessage(ctx, b.pool, id)
		require.NoError(t, err)
		want := db.MessageSent
		if i == 6 {
			want = db.MessagePending
		}
		require.Equal(t, want, m.Status, "message %d", i)
	}
	got := map[string]bool{}
	timeout := time.After(2 * time.Second)
	for len(got) < 7 {
		select {
		case m := <-sub.Channel():
			if i := strings.Index(m.Payload, "orphan "); i >= 0 && strings.Contains(m.Payload, `"type":"message"`) {
				got[m.Payload[i:i+8]] = true
			}
		case <-timeout:
			require.Len(t, got, 6, "six published in two batches, the fresh one not")
			return
		}
	}
	t.Fatalf("the fresh message was published too: %v", got)
}

func TestDeliverPendingWaitsOutARedisOutage(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	rdb, prefix := dbtest.Redis(t)
	proxy := dbtest.NewProxy(t, rdb.Options().Addr)
	opts := *rdb.Options()
	opts.Addr, opts.MaxRetries = proxy.Addr(), -1
	runnerRedis := redis.NewClient(&opts)
	t.Cleanup(func() { _ = runnerRedis.Close() })
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(client, outbox.Config{})
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	queues := jobs.DefaultQueues()
	ws := river.NewWorkers()
	require.NoError(t, workers.Register(ws, workers.Deps{
		Pool: pool, Logger: logger, Outbox: ob, Fanout: fanout.New(runnerRedis, fanout.Config{Keys: fanout.Keys{Prefix: prefix}}),
	}, queues))
	r, err := runner.New(pool, runner.Config{Queues: queues, Workers: ws, Logger: logger,
		PeriodicJobs: []*river.PeriodicJob{jobs.DeliverPendingPeriodic(200*time.Millisecond, 100*time.Millisecond)}})
	require.NoError(t, err)

	ctx := context.Background()
	proxy.Sever()
	res, err := ob.Send(ctx, pool, outbox.Message{ConversationID: uuid.New(), SenderID: uuid.New(), RecipientID: uuid.New(),
		Content: "while redis is away", CallerPublishes: true})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	count := func(q string) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, q).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool {
		return count(`SELECT count(*) FROM river_job WHERE kind = 'deliver-pending' AND state = 'completed'`) >= 3
	}, 20*time.Second, 50*time.Millisecond, "sweeps keep running while Redis is down")
	m, err := db.GetMessage(ctx, pool, res.ID)
	require.NoError(t, err)
	require.Equal(t, db.MessagePending, m.Status)
	require.Zero(t, count(`SELECT count(*) FROM river_job WHERE kind = 'deliver-pending' AND state IN ('discarded', 'cancelled')`))

	proxy.Restore()
	require.Eventually(t, func() bool {
		m, err := db.GetMessage(ctx, pool, res.ID)
		return err == nil && m.Status == db.MessageSent
	}, 20*time.Second, 50*time.Millisecond, "delivered once Redis is back")
	require.LessOrEqual(t, count(`SELECT count(*) FROM river_job WHERE kind = 'deliver-pending' AND state IN ('available', 'running')`), 1,
		"sweeps do not pile up")
}

func kinds(js []outbox.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.Kind
	}
	return out
}
