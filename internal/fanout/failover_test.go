package fanout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

// TestHubFollowsItsUsersChannelsThroughShardFailovers subscribes users
// whose channels lie on every shard of a cluster with a replica per
// master, then fails shards over twice: a master is SIGKILLed (its replica
// is promoted), and another hands over to its replica on command (the node
// drops the sharded subscriptions of the slots it no longer serves). Each
// time the users of the shard that moved, and only they, are told to
// resync within 15 s, and frames published after that reach every user.
func TestHubFollowsItsUsersChannelsThroughShardFailovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fc := dbtest.NewRedisFailoverCluster(t)
	rdb := fc.Client(t)
	keys := fanout.Keys{Prefix: fmt.Sprintf("failover:%s:", uuid.NewString()[:8])}
	f := fanout.New(rdb, fanout.Config{Keys: keys})
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys, PingInterval: time.Second, Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	t.Cleanup(func() { require.NoError(t, hub.Close()) })

	users := make([]uuid.UUID, clusterUsers)
	subs := make([]*sub, clusterUsers)
	for i := range users {
		users[i] = uuid.New()
		subs[i] = subscribe(t, hub, users[i], 64)
	}
	requireOnEveryShard(t, rdb, func(i int) string { return keys.UserChannel(users[i]) })
	links := hub.Links()
	require.Len(t, links, 3, "one connection per master: %v", links)
	for addr, n := range links {
		require.NotZero(t, n, "the connection to %s holds channels", addr)
	}

	// round publishes a receipt to every user (retrying while the
	// cluster moves) and checks each arrives, after a resync for the
	// users in moved and nothing else.
	round := func(name string, moved map[int]bool) {
		t.Helper()
		for i, u := range users {
			if moved[i] {
				frame := subs[i].nextWithin(t, 15*time.Second)
				require.JSONEq(t, string(fanout.ResyncFrame), string(frame), "user %d on the moved shard is told to resync", i)
			}
			id := uuid.New()
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.NoError(c, f.PublishReceipt(ctx, u, fanout.ReceiptFrame{MessageID: id, Status: name, At: time.Now()}))
			}, 15*time.Second, 100*time.Millisecond)
			var got fanout.ReceiptFrame
			require.NoError(t, json.Unmarshal(subs[i].next(t), &got), "user %d", i)
			require.Equal(t, id, got.MessageID, "user %d gets the %s frame next, and no resync", i, name)
		}
	}
	round("before", nil)

	onShard := func(master string) map[int]bool {
		out := map[int]bool{}
		for i, u := range users {
			addr, err := fc.MasterOf(ctx, keys.UserChannel(u))
			require.NoError(t, err)
			if addr == master {
				out[i] = true
			}
		}
		require.NotEmpty(t, out)
		return out
	}

	// A master dies; its replica is promoted.
	victim, err := fc.MasterOf(ctx, keys.UserChannel(users[0]))
	require.NoError(t, err)
	moved := onShard(victim)
	killed := time.Now()
	fc.Kill(victim)
	round("after-kill", moved)
	t.Logf("FIGURES hub-failover kill: %d of %d users resynced and reached in %s", len(moved), len(users), time.Since(killed).Round(10*time.Millisecond))
	require.NoError(t, fc.WaitHealthy(ctx))

	// Another master hands over to its replica while both run.
	var other string
	for i, u := range users {
		if !moved[i] {
			other, err = fc.MasterOf(ctx, keys.UserChannel(u))
			require.NoError(t, err)
			break
		}
	}
	moved = onShard(other)
	handed := time.Now()
	require.NoError(t, fc.Failover(ctx, other))
	round("after-handover", moved)
	t.Logf("FIGURES hub-failover handover: %d of %d users resynced and reached in %s", len(moved), len(users), time.Since(handed).Round(10*time.Millisecond))
	require.Eventually(t, func() bool { return len(hub.Links()) == 3 }, 5*time.Second, 50*time.Millisecond,
		"one connection per master again, the demoted master's closed: %v", hub.Links())
}

// nextWithin waits up to d for the subscription's next frame.
func (s *sub) nextWithin(t *testing.T, d time.Duration) []byte {
	t.Helper()
	deadline := time.After(d)
	for {
		if f, ok := s.Next(); ok {
			return f
		}
		select {
		case <-s.notified:
		case <-deadline:
			t.Fatalf("no frame within %s", d)
		}
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
