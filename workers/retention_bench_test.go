package workers_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/jobs"
)

// BenchmarkRetention measures the cleanup job's message retention on a
// large table: RETENTION_ROWS read messages (default 1,000,000; make
// bench-retention uses 5,000,000) in conversations of 100, created evenly
// over the last 180 days, of which the job deletes those older than 90
// days, in batches of jobs.DefaultCleanupBatchSize as the cleanup worker
// does. It reports the rows deleted per second, the seconds it took, and
// the table's size before and after (deleted rows leave dead space for
// vacuum, not a smaller file). Messages have no search entries here; their
// cascade would add to the cost.
func BenchmarkRetention(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("RETENTION_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err, "RETENTION_ROWS")
		rows = n
	}
	ctx := context.Background()
	pool := dbtest.Pool(b)
	for b.Loop() {
		fill := time.Now()
		const perConversation = 100
		_, err := pool.Exec(ctx, `
			WITH c AS (
				INSERT INTO conversations (id) SELECT gen_random_uuid() FROM generate_series(1, $1::int)
				RETURNING id
			)
			INSERT INTO messages (id, conversation_id, sender_id, recipient_id, seq, content, status, created_at, sent_at, read_at)
			SELECT gen_random_uuid(), id, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002',
			       s, 'a message kept for the retention benchmark', 'read', t, t, t
			FROM (
				SELECT c.id, s, now() - make_interval(secs => (hashtext(c.id::text || s::text) & 2147483647)::float8 / 2147483647 * 180 * 86400) AS t
				FROM c, generate_series(1, $2::int) AS s
			) AS spread`,
			rows/perConversation, perConversation)
		require.NoError(b, err)
		_, err = pool.Exec(ctx, "VACUUM ANALYZE messages")
		require.NoError(b, err)
		filled := time.Since(fill)
		var before, old int64
		require.NoError(b, pool.QueryRow(ctx, "SELECT pg_total_relation_size('messages')").Scan(&before))
		cutoff := time.Now().Add(-90 * 24 * time.Hour)
		old, err = db.CountOldMessages(ctx, pool, cutoff)
		require.NoError(b, err)

		start := time.Now()
		var deleted int64
		for {
			n, err := db.DeleteOldMessages(ctx, pool, cutoff, jobs.DefaultCleanupBatchSize)
			require.NoError(b, err)
			deleted += n
			if n < jobs.DefaultCleanupBatchSize {
				break
			}
		}
		took := time.Since(start)
		require.Equal(b, old, deleted, "every old message deleted")
		var after int64
		require.NoError(b, pool.QueryRow(ctx, "SELECT pg_total_relation_size('messages')").Scan(&after))
		b.ReportMetric(float64(deleted)/took.Seconds(), "deleted-rows/s")
		b.ReportMetric(took.Seconds(), "cleanup-s")
		b.ReportMetric(float64(before)/(1<<20), "table-before-MiB")
		b.ReportMetric(float64(after)/(1<<20), "table-after-MiB")
		b.Logf("note: retention: %d messages (filled in %s), %d older than 90 days deleted in batches of %d in %s (%.0f rows/s); messages with indexes %d MiB before, %d MiB after (dead space until vacuum)",
			rows, filled.Round(time.Second), deleted, jobs.DefaultCleanupBatchSize, took.Round(100*time.Millisecond),
			float64(deleted)/took.Seconds(), before>>20, after>>20)
		_, err = pool.Exec(ctx, "TRUNCATE conversations CASCADE")
		require.NoError(b, err)
	}
}
