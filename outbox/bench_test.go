package outbox_test

import (
	"context"
	"sync"
	"sync/atomic"
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
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
)

// BenchmarkWritePath measures messages/s with 8 concurrent producers, for
// the outbox (a message row, its search backlog row and its two jobs,
// send-message and send-notification, in one transaction; and as the
// gateway writes, with one: no send-message job, CallerPublishes) and
// two baselines in the same run: a transaction inserting one message row,
// and one inserting a row plus a single River job with InsertTx. The four
// take turns in one-second slices, five each, in a rotating order, so a
// drift of the machine or the database (a checkpoint, autovacuum, a noisy
// neighbour, tables growing) weighs on all alike. It reports each one's
// rate ("bare-row-msgs/s", "row+1-job-msgs/s", "outbox-msgs/s",
// "outbox-gateway-msgs/s") and the outbox's over the row + one job baseline
// ("ratio", "ratio-gateway").
func BenchmarkWritePath(b *testing.B) {
	const producers = 8
	const slice, rounds = time.Second, 5
	ctx := context.Background()
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: dbtest.URL(b), MaxConns: producers + 2})
	require.NoError(b, err)
	defer pool.Close()
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(b, err)
	ob, err := outbox.New(client, outbox.Config{})
	require.NoError(b, err)

	// Each producer writes to its own conversations, as real senders do.
	type producer struct{ from, to uuid.UUID }
	ps := make([]producer, producers)
	for i := range ps {
		ps[i] = producer{from: uuid.New(), to: uuid.New()}
	}
	// run lets every producer write for d and returns how many messages
	// they wrote.
	run := func(d time.Duration, write func(p producer) error) int64 {
		var n atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		for _, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					if err := write(p); err != nil {
						b.Error(err)
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		return n.Load()
	}
	bare := func(p producer) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := db.InsertMessage(ctx, tx, newRow(p.from, p.to))
			return err
		})
	}
	oneJob := func(p producer) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			m, err := db.InsertMessage(ctx, tx, newRow(p.from, p.to))
			if err != nil {
				return err
			}
			_, err = client.InsertTx(ctx, tx, jobs.SendMessageArgs{MessageID: m.ID}, nil)
			return err
		})
	}
	full := func(p producer) error {
		_, err := ob.Send(ctx, pool, outbox.Message{
			ConversationID: outbox.DirectConversationID(p.from, p.to), SenderID: p.from, RecipientID: p.to, Content: "benchmark message",
		})
		return err
	}
	// As the gateway writes: it publishes the message itself, so no
	// send-message job (CallerPublishes).
	gateway := func(p producer) error {
		_, err := ob.Send(ctx, pool, outbox.Message{
			ConversationID: outbox.DirectConversationID(p.from, p.to), SenderID: p.from, RecipientID: p.to, Content: "benchmark message",
			CallerPublishes: true,
		})
		return err
	}
	scenarios := []struct {
		name  string
		write func(producer) error
	}{{"bare-row", bare}, {"row+1-job", oneJob}, {"outbox", full}, {"outbox-gateway", gateway}}

	// Warm every connection's statement cache first.
	for _, sc := range scenarios {
		run(200*time.Millisecond, sc.write)
	}
	for b.Loop() {
		written := make([]int64, len(scenarios))
		for r := range rounds {
			for i := range scenarios {
				k := (r + i) % len(scenarios)
				written[k] += run(slice, scenarios[k].write)
			}
		}
		rate := func(k int) float64 { return float64(written[k]) / (rounds * slice).Seconds() }
		for k, sc := range scenarios {
			b.ReportMetric(rate(k), sc.name+"-msgs/s")
		}
		b.ReportMetric(rate(2)/rate(1), "ratio")
		b.ReportMetric(rate(3)/rate(1), "ratio-gateway")
	}
}

// newRow is the baselines' message row: the outbox's text as bytes in the
// ciphertext column, so db.InsertMessage writes the row alone, without
// the search backlog row a plaintext message gets (that is the outbox's
// work, and counted in its figures only).
func newRow(from, to uuid.UUID) db.NewMessage {
	key := "bench"
	return db.NewMessage{ID: uuid.Must(uuid.NewV7()), ConversationID: outbox.DirectConversationID(from, to),
		SenderID: from, RecipientID: to, Priority: 3, Ciphertext: []byte("benchmark message"), KeyID: &key}
}

// BenchmarkWritePathThroughPgBouncer writes messages as the gateway does
// (CallerPublishes) from 16 senders, alternately straight to Postgres and
// through PgBouncer in transaction mode with 8 server connections, in
// interleaved one-second slices of the same run, and reports both rates
// ("direct-msgs/s", "pgbouncer-msgs/s") and PgBouncer's as a ratio to
// direct ("pgbouncer-ratio").
func BenchmarkWritePathThroughPgBouncer(b *testing.B) {
	const senders = 16
	const slice, rounds = time.Second, 5
	ctx := context.Background()
	url := dbtest.URL(b)
	bouncer := dbtest.NewPgBouncer(b, url, 8)
	pools := make([]*pgxpool.Pool, 2)
	for i, u := range []string{url, bouncer.URL(url)} {
		pool, err := db.NewPool(ctx, db.PoolConfig{URL: u, MaxConns: senders})
		require.NoError(b, err)
		defer pool.Close()
		pools[i] = pool
	}
	client, err := river.NewClient(riverpgxv5.New(pools[0]), &river.Config{})
	require.NoError(b, err)
	ob, err := outbox.New(client, outbox.Config{})
	require.NoError(b, err)
	// run has every sender write through pool for d and returns how many
	// messages they wrote.
	run := func(pool *pgxpool.Pool, d time.Duration) int64 {
		var n atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				from, to := uuid.New(), uuid.New()
				for time.Now().Before(deadline) {
					_, err := ob.Send(ctx, pool, outbox.Message{
						ConversationID: outbox.DirectConversationID(from, to), SenderID: from, RecipientID: to,
						Content: "benchmark message", CallerPublishes: true,
					})
					if err != nil {
						b.Error(err)
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		return n.Load()
	}
	for _, pool := range pools {
		run(pool, 200*time.Millisecond) // warm the connections
	}
	for b.Loop() {
		written := make([]int64, 2)
		for r := range rounds {
			for i := range pools {
				k := (r + i) % 2
				written[k] += run(pools[k], slice)
			}
		}
		direct := float64(written[0]) / (rounds * slice).Seconds()
		pooled := float64(written[1]) / (rounds * slice).Seconds()
		b.ReportMetric(direct, "direct-msgs/s")
		b.ReportMetric(pooled, "pgbouncer-msgs/s")
		b.ReportMetric(pooled/direct, "pgbouncer-ratio")
	}
}
