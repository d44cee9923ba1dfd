package workers_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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

// BenchmarkDelivery measures send-message jobs/s drained by one runner
// doing the real work: BENCH_DELIVERY_JOBS (default 20,000) pending
// messages and their send-message jobs are written up front (COPY and
// InsertManyFast), then a runner configured as cmd/runner is (default
// queues, fetch settings and asynchronous commit) starts, and the clock
// runs until every job has completed. Each job reads its message, publishes
// the frame and the cache updates to Redis, and marks the message sent.
//
// Sub-benchmarks: the delivery queue at its default worker count
// (jobs.DefaultDeliveryWorkers), and at the earlier design's 10 workers. Each iteration also samples pg_stat_activity every 10 ms and
// logs where the runner's backends spent their time ("note:" lines, which
// cmd/benchreport copies into the report).
func BenchmarkDelivery(b *testing.B) {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_DELIVERY_JOBS")); err == nil && v > 0 {
		n = v
	}
	for _, w := range []int{jobs.DefaultDeliveryWorkers, 10} {
		b.Run(fmt.Sprintf("send-message/workers=%d", w), func(b *testing.B) {
			var elapsed time.Duration
			waits := map[string]int{}
			for b.Loop() {
				d, sampled := drainSendMessages(b, n, w)
				elapsed += d
				for k, v := range sampled {
					waits[k] += v
				}
			}
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "jobs/s")
			b.Logf("note: delivery workers=%d: Postgres backends of the runner, by wait event (share of active samples): %s",
				w, waitSummary(waits))
		})
	}
}

// drainSendMessages writes n pending messages with their send-message jobs
// to a fresh database, starts a runner with workers delivery workers and
// returns the time until all jobs completed, with the wait-event samples
// taken meanwhile.
func drainSendMessages(b *testing.B, n, workersN int) (time.Duration, map[string]int) {
	b.Helper()
	ctx := context.Background()
	url := dbtest.URL(b)
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: url, MaxConns: db.DefaultMaxConns, ApplicationName: "msgrunner-runner", AsyncCommit: true})
	require.NoError(b, err)
	defer pool.Close()
	rdb, prefix := dbtest.Redis(b)

	seedPending(b, pool, n)

	queues := jobs.DefaultQueues()
	for i := range queues {
		if queues[i].Name == jobs.QueueMessageDelivery {
			queues[i].Workers = workersN
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ws := river.NewWorkers()
	require.NoError(b, workers.Register(ws, workers.Deps{
		Pool: pool, Logger: logger, Fanout: fanout.New(rdb, fanout.Config{Keys: fanout.Keys{Prefix: prefix}}),
	}, queues))
	r, err := runner.New(pool, runner.Config{Queues: queues, Workers: ws, Logger: logger, ShutdownTimeout: 5 * time.Second,
		AsyncCommit: true, NoDurabilityWait: jobs.RedoneIfLost()})
	require.NoError(b, err)
	completed, cancel := r.Client().Subscribe(river.EventKindJobCompleted)
	defer cancel()

	sampler := startWaitSampler(ctx, b, url)
	start := time.Now()
	require.NoError(b, r.Start(ctx))
	timeout := time.After(5 * time.Minute)
	for done := 0; done < n; {
		select {
		case ev := <-completed:
			if ev.Job.Kind == jobs.KindSendMessage {
				done++
			}
		case <-timeout:
			b.Fatalf("only %d of %d send-message jobs completed within 5 minutes", done, n)
		}
	}
	elapsed := time.Since(start)
	waits := sampler()
	require.NoError(b, r.Shutdown(ctx))

	var pending int
	require.NoError(b, pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE status = 'pending'`).Scan(&pending))
	require.Zero(b, pending, "messages still pending after every send-message job completed")
	return elapsed, waits
}

// seedPending writes n pending messages (100 per conversation) and one
// send-message job each, as the outbox would have left them.
func seedPending(b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	ctx := context.Background()
	const perConv = 100
	var convs [][]any
	var msgs [][]any
	ids := make([]uuid.UUID, 0, n)
	for i := 0; i < n; i += perConv {
		from, to := uuid.New(), uuid.New()
		conv := outbox.DirectConversationID(from, to)
		k := min(perConv, n-i)
		convs = append(convs, []any{conv, int64(k)})
		for s := 1; s <= k; s++ {
			id := uuid.Must(uuid.NewV7())
			ids = append(ids, id)
			msgs = append(msgs, []any{id, conv, from, to, int64(s), "benchmark message " + strconv.Itoa(s)})
		}
	}
	require.NoError(b, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"conversations"}, []string{"id", "last_seq"}, pgx.CopyFromRows(convs)); err != nil {
			return fmt.Errorf("copying conversations: %w", err)
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"messages"},
			[]string{"id", "conversation_id", "sender_id", "recipient_id", "seq", "content"}, pgx.CopyFromRows(msgs))
		if err != nil {
			return fmt.Errorf("copying messages: %w", err)
		}
		return nil
	}))
	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(b, err)
	for chunk := range slices.Chunk(ids, 5000) {
		params := make([]river.InsertManyParams, len(chunk))
		for i, id := range chunk {
			params[i] = river.InsertManyParams{Args: jobs.SendMessageArgs{MessageID: id}}
		}
		_, err := inserter.InsertManyFast(ctx, params)
		require.NoError(b, err)
	}
	_, err = pool.Exec(ctx, `ANALYZE messages; ANALYZE river_job`)
	require.NoError(b, err)
}

// startWaitSampler samples, every 10 ms, what the benchmark database's
// active backends are waiting on ("CPU" when on no wait event), on a
// connection of its own. The returned function stops it and returns the
// counts.
func startWaitSampler(ctx context.Context, b *testing.B, url string) func() map[string]int {
	b.Helper()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(ctx)
	counts := map[string]int{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			rows, err := conn.Query(ctx, `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU')
				FROM pg_stat_activity
				WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()`)
			if err != nil {
				return
			}
			events, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return
			}
			for _, e := range events {
				counts[e]++
			}
		}
	}()
	return func() map[string]int {
		cancel()
		wg.Wait()
		_ = conn.Close(context.WithoutCancel(ctx))
		return counts
	}
}

// waitSummary formats the five most frequent wait events with their share.
func waitSummary(counts map[string]int) string {
	total := 0
	for _, v := range counts {
		total += v
	}
	if total == 0 {
		return "no active samples"
	}
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b string) int { return cmp.Compare(counts[b], counts[a]) })
	var parts []string
	for _, k := range keys[:min(5, len(keys))] {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*float64(counts[k])/float64(total)))
	}
	return fmt.Sprintf("%s (%d samples)", strings.Join(parts, ", "), total)
}
