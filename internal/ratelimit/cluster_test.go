package ratelimit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/clocktest"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/ratelimit"
)

// TestLimiterOnARedisCluster runs the limiter's script on a real 3-master
// cluster, for keys on every shard, from two clients that stand for two
// gateway nodes, with the test's clock and with each shard's own.
func TestLimiterOnARedisCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := dbtest.RedisCluster(t)
	cluster := rdb.(*redis.ClusterClient)
	other := redis.NewClusterClient(cluster.Options())
	t.Cleanup(func() { other.Close() })

	clock := clocktest.New(time.Now())
	cfg := ratelimit.Config{Prefix: prefix, PerSecond: 2, Burst: 3, Now: clock.Now}
	a, err := ratelimit.New(rdb, cfg)
	require.NoError(t, err)
	b, err := ratelimit.New(other, cfg)
	require.NoError(t, err)

	const users = 24
	shards := map[string]bool{}
	for u := range users {
		key := fmt.Sprintf("user-%d", u)
		for i := range 3 {
			l := a
			if i%2 == 1 {
				l = b
			}
			res, err := l.Allow(ctx, key)
			require.NoError(t, err, "no CROSSSLOT or NOSCRIPT error on any shard")
			require.True(t, res.Allowed, "%s: request %d is within the burst", key, i+1)
		}
		for _, l := range []*ratelimit.Limiter{a, b} {
			res, err := l.Allow(ctx, key)
			require.NoError(t, err)
			require.False(t, res.Allowed, "%s: the burst is shared by both clients", key)
			require.Equal(t, 500*time.Millisecond, res.RetryAfter)
		}
		shards[masterOf(t, cluster, a.Key(key))] = true
	}
	require.Len(t, shards, 3, "the keys lie on every shard")
	clock.Advance(500 * time.Millisecond)
	for u := range users {
		res, err := b.Allow(ctx, fmt.Sprintf("user-%d", u))
		require.NoError(t, err)
		require.True(t, res.Allowed, "one more after one interval")
	}

	// Each shard's own clock (TIME inside the script).
	l, err := ratelimit.New(rdb, ratelimit.Config{Prefix: prefix + "redisclock:", PerSecond: 1, Burst: 1})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() { // assert, not require: off the test's goroutine
			key := fmt.Sprintf("user-%d", u)
			res, err := l.Allow(ctx, key)
			assert.NoError(t, err)
			assert.True(t, res.Allowed)
			res, err = l.Allow(ctx, key)
			assert.NoError(t, err)
			assert.False(t, res.Allowed)
			assert.Greater(t, res.RetryAfter, time.Duration(0))
			assert.LessOrEqual(t, res.RetryAfter, time.Second)
		})
	}
	wg.Wait()
}

// masterOf returns the address of the master that serves key's slot.
func masterOf(t *testing.T, cluster *redis.ClusterClient, key string) string {
	t.Helper()
	ctx := context.Background()
	slot, err := cluster.ClusterKeySlot(ctx, key).Result()
	require.NoError(t, err)
	slots, err := cluster.ClusterSlots(ctx).Result()
	require.NoError(t, err)
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			return s.Nodes[0].Addr
		}
	}
	t.Fatalf("no master serves slot %d", slot)
	return ""
}
