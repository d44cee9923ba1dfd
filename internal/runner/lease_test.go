package runner_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/runner"
)

// heldBy marks every job with n in ns as running under runner id since
// ago, as if that runner had fetched it.
func (b *testBundle) heldBy(t *testing.T, id string, ago time.Duration, ns ...int) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), `UPDATE river_job
		SET state = 'running', attempt = 1, attempted_at = now() - $2::interval, attempted_by = ARRAY['someone-before', $1]
		WHERE (args->>'n')::int = ANY($3)`, id, ago.String(), ns)
	require.NoError(t, err)
}

func (b *testBundle) lease(t *testing.T, id string, renewedAgo, ttl time.Duration) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), `INSERT INTO runner_leases (runner_id, hostname, pid, renewed_at, ttl)
		VALUES ($1, 'test', 1, now() - $2::interval, $3::interval)`, id, renewedAgo.String(), ttl.String())
	require.NoError(t, err)
}

// The lease rescuer hands back the jobs of a runner whose lease ended, and
// only those: a runner with a live lease keeps its job however long it
// runs, and a job whose holder never had a lease is left to River's own
// (last-resort) rescuer.
func TestLeaseRescuerHandsBackOnlyJobsOfDeadRunners(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.newRunner(t, &testWorker{pool: b.pool}, func(c *runner.Config) {
		c.LeaseTTL = 3 * time.Second
		c.RescueGrace = 100 * time.Millisecond
	})
	b.insert(t, r, 5)
	b.lease(t, "dead", time.Minute, 15*time.Second) // expired 45 s ago
	b.lease(t, "alive", 0, time.Hour)               // live for an hour
	b.lease(t, "stopped", 0, time.Hour)             // live, but stopped below
	b.heldBy(t, "dead", 30*time.Minute, 0, 1)       // two jobs of a dead runner
	b.heldBy(t, "alive", 30*time.Minute, 2)         // 30 min, far past its timeout, on a live runner
	b.heldBy(t, "unknown", 30*time.Minute, 3)       // holder has no lease row
	b.heldBy(t, "stopped", time.Second, 4)          // holder stopped cleanly
	_, err := b.pool.Exec(context.Background(), `UPDATE runner_leases SET stopped_at = now() WHERE runner_id = 'stopped'`)
	require.NoError(t, err)
	// A dead runner's job on its last attempt is discarded, not retried.
	_, err = b.pool.Exec(context.Background(), `UPDATE river_job SET attempt = max_attempts WHERE (args->>'n')::int = 1`)
	require.NoError(t, err)

	require.NoError(t, r.Start(context.Background()))
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	require.Eventually(t, func() bool {
		return b.scalar(t, `SELECT count(*) FROM worked WHERE n IN (0, 4)`) == 2
	}, 20*time.Second, 20*time.Millisecond, "jobs of the dead and the stopped runner are worked again")
	require.Equal(t, "discarded", b.text(t, `SELECT state::text FROM river_job WHERE (args->>'n')::int = 1`))
	require.Contains(t, b.text(t, `SELECT errors[array_upper(errors, 1)]->>'error' FROM river_job WHERE (args->>'n')::int = 0`),
		"runner dead lost its lease")

	// Several more rescue scans leave the live runner's and the unknown
	// runner's jobs alone. A scan is seen by what it does: each round
	// gives one more job to a runner whose lease ended, and once that job
	// has been worked again a scan has run since the last look.
	for round := range 3 {
		n := 5 + round
		b.insertHeld(t, r, n)
		b.lease(t, "dead-"+strconv.Itoa(n), time.Minute, 15*time.Second)
		b.heldBy(t, "dead-"+strconv.Itoa(n), 30*time.Minute, n)
		require.Eventually(t, func() bool {
			return b.scalar(t, `SELECT count(*) FROM worked WHERE n = `+strconv.Itoa(n)) == 1
		}, 20*time.Second, 20*time.Millisecond, "round %d: the rescuer scanned again", round)
		require.Equal(t, 2, b.scalar(t, `SELECT count(*) FROM river_job WHERE state = 'running' AND (args->>'n')::int IN (2, 3)`), "round %d", round)
	}
	require.Zero(t, b.scalar(t, `SELECT count(*) FROM worked WHERE n IN (1, 2, 3)`), "nothing else was worked")
	require.Equal(t, 5, b.scalar(t, `SELECT count(*) FROM worked`), "each rescued job once")
	// The runner's own lease is live and renewed.
	require.Equal(t, 1, b.scalar(t, `SELECT count(*) FROM runner_leases WHERE runner_id = '`+r.ID()+`' AND stopped_at IS NULL AND renewed_at > now() - interval '2 seconds'`))
}

// A runner whose lease is revoked (as if it had been paused past its TTL)
// cancels its running jobs at once and rejoins under a new id; the jobs
// are handed back and the new generation works them.
func TestRunnerThatLosesItsLeaseStopsWorkingAndRejoins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := &testWorker{pool: b.pool, hold: time.Hour}
	r := b.newRunner(t, w, func(c *runner.Config) {
		c.LeaseTTL = 2 * time.Second
		c.RescueGrace = 100 * time.Millisecond
		c.ShutdownTimeout = 200 * time.Millisecond
	})
	require.NoError(t, r.Start(context.Background()))
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	b.insert(t, r, 3)
	require.Eventually(t, func() bool { return w.started.Load() == 3 }, 10*time.Second, 5*time.Millisecond)
	first := r.ID()

	_, err := b.pool.Exec(context.Background(), `UPDATE runner_leases SET stopped_at = now() WHERE runner_id = $1`, first)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return r.ID() != first }, 10*time.Second, 10*time.Millisecond, "the runner rejoins under a new id")

	// The cancelled jobs come back (by River's own hand-back or by the
	// rescuer) and the new generation runs them again.
	require.Eventually(t, func() bool { return w.started.Load() == 6 }, 20*time.Second, 10*time.Millisecond)
	require.Zero(t, b.scalar(t, `SELECT count(*) FROM river_job WHERE state = 'running' AND NOT attempted_by[array_upper(attempted_by, 1)] = '`+r.ID()+`'`),
		"no job is left running under the old id")
	require.Equal(t, 1, b.scalar(t, `SELECT count(*) FROM runner_leases WHERE stopped_at IS NOT NULL AND runner_id = '`+first+`'`))
}

// insertHeld inserts a job whose args carry n, scheduled an hour ahead so
// no runner takes it before heldBy marks it running.
func (b *testBundle) insertHeld(t *testing.T, r *runner.Runner, n int) {
	t.Helper()
	_, err := r.Client().Insert(context.Background(), testArgs{N: n}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
}

func (b *testBundle) text(t *testing.T, sql string) string {
	t.Helper()
	var s string
	require.NoError(t, b.pool.QueryRow(context.Background(), sql).Scan(&s))
	return s
}

// A job shown as running under a live runner that the runner is not
// working (its fetch's answer was lost with a database connection, say)
// is handed back and worked again, while a job the runner works for longer
// than its lease TTL is left alone.
func TestRunnerHandsBackJobsItLostTrackOf(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := &testWorker{pool: b.pool, hold: 4 * time.Second}
	r := b.newRunner(t, w, func(c *runner.Config) {
		c.LeaseTTL = 2 * time.Second
		c.RescueGrace = 100 * time.Millisecond
	})
	require.NoError(t, r.Start(context.Background()))
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	b.insert(t, r, 1) // n=0, worked for twice the TTL
	require.Eventually(t, func() bool { return w.started.Load() == 1 }, 10*time.Second, 5*time.Millisecond)

	b.insertHeld(t, r, 1)
	b.heldBy(t, r.ID(), time.Minute, 1) // fetched by this runner a minute ago; it never got it
	require.Eventually(t, func() bool {
		return b.scalar(t, `SELECT count(*) FROM worked WHERE n = 1`) == 1
	}, 20*time.Second, 20*time.Millisecond, "the lost job is handed back and worked")
	require.Contains(t, b.text(t, `SELECT errors[array_upper(errors, 1)]->>'error' FROM river_job WHERE (args->>'n')::int = 1`),
		"lost track of this job")

	require.Eventually(t, func() bool {
		return b.scalar(t, `SELECT count(*) FROM river_job WHERE (args->>'n')::int = 0 AND state = 'completed'`) == 1
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, b.scalar(t, `SELECT count(*) FROM worked WHERE n = 0`), "the long job ran once")
	require.Equal(t, 0, b.scalar(t, `SELECT coalesce(cardinality(errors), 0) FROM river_job WHERE (args->>'n')::int = 0`), "and was never handed back")
}
