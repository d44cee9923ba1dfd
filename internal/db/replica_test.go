package db_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
)

// A Replica serves reads from the standby while it keeps up; when its
// replay is paused past the allowed lag, or it stops, reads go to the
// primary at once (never an error), and back to the standby once it has
// caught up or returned.
func TestReplicaServesReadsWhileTheStandbyKeepsUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pair := dbtest.NewPostgresPair(t)
	primary, err := db.NewPool(ctx, db.PoolConfig{URL: pair.PrimaryURL(), MaxConns: 4})
	require.NoError(t, err)
	defer primary.Close()
	r, err := db.NewReplica(primary, db.ReplicaConfig{
		URL: pair.StandbyURL(), MaxConns: 2, MaxLag: 500 * time.Millisecond, CheckEvery: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	defer r.Close()

	// onStandby reports whether a read went to the standby.
	onStandby := func() bool {
		var recovering bool
		require.NoError(t, r.Reads().QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovering))
		return recovering
	}
	// write commits on the primary, so the standby has something to lag on.
	write := func() {
		_, err := primary.Exec(ctx, "INSERT INTO user_profiles (user_id, display_name) VALUES (gen_random_uuid(), 'x')")
		require.NoError(t, err)
	}
	require.Eventually(t, onStandby, 10*time.Second, 20*time.Millisecond, "reads go to the standby once checked")
	inUse, reason := r.InUse()
	require.True(t, inUse, reason)

	pair.PauseReplay()
	write()
	require.Eventually(t, func() bool { write(); return !onStandby() }, 10*time.Second, 50*time.Millisecond,
		"a standby lagging past the limit is bypassed")
	_, reason = r.InUse()
	require.Contains(t, reason, "lags")
	pair.ResumeReplay()
	require.Eventually(t, onStandby, 10*time.Second, 20*time.Millisecond, "and used again once caught up")

	pair.StopStandby()
	require.Eventually(t, func() bool { return !onStandby() }, 10*time.Second, 20*time.Millisecond, "a standby that is down is bypassed")
	_, reason = r.InUse()
	require.Contains(t, reason, "does not answer")
	pair.StartStandby()
	require.Eventually(t, onStandby, 20*time.Second, 50*time.Millisecond, "and used again once it answers")
}

func TestNewReplicaNeedsItsParts(t *testing.T) {
	t.Parallel()
	_, err := db.NewReplica(nil, db.ReplicaConfig{URL: "postgres://x"})
	require.ErrorContains(t, err, "NewReplica needs")
	_, err = db.NewReplica(new(pgxpool.Pool), db.ReplicaConfig{URL: "postgres://u:hunter2@%zz", Logger: slog.Default()})
	require.ErrorContains(t, err, "invalid connection string")
	require.NotContains(t, err.Error(), "hunter2")
}
