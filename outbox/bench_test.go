package outbox_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
)

// BenchmarkWritePath measures messages/s with 8 concurrent producers, for
// the outbox (a message row and its three jobs in one transaction) and two
// baselines in the same run: a transaction inserting one message row, and
// one inserting a row plus a single River job with InsertTx. Each runs for
// a fixed time per iteration; "msgs/s" is the rate, "ratio" the rate over
// the row + one job baseline.
func BenchmarkWritePath(b *testing.B) {
	const producers = 8
	const window = 5 * time.Second
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
	run := func(write func(p producer) error) float64 {
		var n atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(window)
		for range producers {
			p := producer{from: uuid.New(), to: uuid.New()}
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
		return float64(n.Load()) / window.Seconds()
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

	var baseline float64
	for _, sc := range []struct {
		name  string
		write func(producer) error
	}{{"bare-row", bare}, {"row+1-job", oneJob}, {"outbox-3-jobs", full}} {
		b.Run(sc.name, func(b *testing.B) {
			var rate float64
			for b.Loop() {
				rate = run(sc.write)
			}
			if sc.name == "row+1-job" {
				baseline = rate
			}
			b.ReportMetric(rate, "msgs/s")
			if baseline > 0 {
				b.ReportMetric(rate/baseline, "ratio")
			}
		})
	}
}

func newRow(from, to uuid.UUID) db.NewMessage {
	content := "benchmark message"
	return db.NewMessage{ID: uuid.Must(uuid.NewV7()), ConversationID: outbox.DirectConversationID(from, to),
		SenderID: from, RecipientID: to, Priority: 3, Content: &content}
}
