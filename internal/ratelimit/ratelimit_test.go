package ratelimit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/clocktest"
	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/ratelimit"
)

func TestBurstThenRefusedPerKeyAndSharedAcrossClients(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := dbtest.Redis(t)
	// A second client stands for a second gateway node.
	other := redis.NewClient(rdb.Options())
	t.Cleanup(func() { other.Close() })
	clock := clocktest.New(time.Now())
	cfg := ratelimit.Config{Prefix: prefix, PerSecond: 2, Burst: 3, Now: clock.Now}
	a, err := ratelimit.New(rdb, cfg)
	require.NoError(t, err)
	b, err := ratelimit.New(other, cfg)
	require.NoError(t, err)

	for i := range 3 {
		l := a
		if i%2 == 1 {
			l = b
		}
		res, err := l.Allow(ctx, "alice")
		require.NoError(t, err)
		require.True(t, res.Allowed, "request %d is within the burst", i+1)
	}
	for _, l := range []*ratelimit.Limiter{a, b} {
		res, err := l.Allow(ctx, "alice")
		require.NoError(t, err)
		require.False(t, res.Allowed, "the burst is shared by both clients")
		require.Equal(t, 500*time.Millisecond, res.RetryAfter, "one request's worth at 2/s")
		require.Equal(t, 1, res.RetryAfterSeconds())
	}
	res, err := b.Allow(ctx, "bob")
	require.NoError(t, err)
	require.True(t, res.Allowed, "another key has its own budget")

	keys, err := rdb.Keys(ctx, "*ratelimit:{alice}").Result()
	require.NoError(t, err)
	require.Equal(t, []string{prefix + "ratelimit:{alice}"}, keys, "the key is under the prefix, and only there")
	ttl, err := rdb.PTTL(ctx, keys[0]).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0), "state expires")
	require.LessOrEqual(t, ttl, 2*time.Second)

	// Just short of one interval, nothing more; after it, exactly one.
	clock.Advance(499 * time.Millisecond)
	res, err = a.Allow(ctx, "alice")
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Equal(t, time.Millisecond, res.RetryAfter)
	clock.Advance(time.Millisecond)
	res, err = a.Allow(ctx, "alice")
	require.NoError(t, err)
	require.True(t, res.Allowed)
	res, err = a.Allow(ctx, "alice")
	require.NoError(t, err)
	require.False(t, res.Allowed)
}

// TestRedisClockByDefault: without Config.Now the limiter reads Redis's
// clock, and a refused key's wait is what real time must still pass.
func TestRedisClockByDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := dbtest.Redis(t)
	l, err := ratelimit.New(rdb, ratelimit.Config{Prefix: prefix, PerSecond: 1, Burst: 2})
	require.NoError(t, err)
	for i := range 2 {
		res, err := l.Allow(ctx, "carol")
		require.NoError(t, err)
		require.True(t, res.Allowed, "request %d is within the burst", i+1)
	}
	res, err := l.Allow(ctx, "carol")
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Greater(t, res.RetryAfter, time.Duration(0))
	require.LessOrEqual(t, res.RetryAfter, time.Second)

	// The state holds a time in microseconds of Redis's clock.
	tat, err := rdb.Get(ctx, l.Key("carol")).Int64()
	require.NoError(t, err)
	redisNow, err := rdb.Time(ctx).Result()
	require.NoError(t, err)
	require.InDelta(t, redisNow.Add(2*time.Second).UnixMicro(), tat, float64(time.Second/time.Microsecond))
}

func TestUnreachableRedisIsAnError(t *testing.T) {
	t.Parallel()
	p := dbtest.NewProxy(t, redisAddr(t))
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	l, err := ratelimit.New(rdb, ratelimit.Config{Prefix: "msgrunner_test:unreachable:", PerSecond: 1})
	require.NoError(t, err)
	p.Sever()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = l.Allow(ctx, "alice")
	require.Error(t, err)
	require.Less(t, time.Since(start), 2*time.Second, "Allow gives up with its context")
}

func TestConfigIsChecked(t *testing.T) {
	t.Parallel()
	rdb, _ := dbtest.Redis(t)
	for _, tc := range []struct {
		name string
		cfg  ratelimit.Config
	}{
		{"zero rate", ratelimit.Config{PerSecond: 0}},
		{"negative rate", ratelimit.Config{PerSecond: -1}},
		{"rate over a million", ratelimit.Config{PerSecond: 1_000_001}},
		{"negative burst", ratelimit.Config{PerSecond: 1, Burst: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ratelimit.New(rdb, tc.cfg)
			require.Error(t, err)
		})
	}
	l, err := ratelimit.New(rdb, ratelimit.Config{PerSecond: 5})
	require.NoError(t, err)
	require.Equal(t, 5, l.Burst(), "burst defaults to the rate")
	require.True(t, strings.HasSuffix(l.Key("u"), "ratelimit:{u}"))
}

func redisAddr(t *testing.T) string {
	rdb, _ := dbtest.Redis(t)
	return rdb.Options().Addr
}
