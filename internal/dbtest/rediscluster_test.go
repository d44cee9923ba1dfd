package dbtest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
)

func TestRedisClusterHasThreeMastersThatShareTheKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := dbtest.RedisCluster(t)
	cluster, ok := rdb.(*redis.ClusterClient)
	require.True(t, ok, "a cluster client")
	slots, err := cluster.ClusterSlots(ctx).Result()
	require.NoError(t, err)
	masters := map[string]bool{}
	covered := 0
	for _, s := range slots {
		masters[s.Nodes[0].Addr] = true
		covered += s.End - s.Start + 1
	}
	require.Len(t, masters, 3)
	require.Equal(t, 16384, covered, "every slot is served")

	for i := range 30 {
		require.NoError(t, rdb.Set(ctx, fmt.Sprintf("%sk:{%d}", prefix, i), i, 0).Err())
	}
	var mu sync.Mutex // ForEachMaster calls at once
	holders := map[string]bool{}
	require.NoError(t, cluster.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := m.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			mu.Lock()
			holders[m.Options().Addr] = true
			mu.Unlock()
		}
		return err
	}))
	require.Len(t, holders, 3, "keys of different hash tags are on every shard")
}

func TestRedisClusterPrefixesDiffer(t *testing.T) {
	t.Parallel()
	_, a := dbtest.RedisCluster(t)
	_, b := dbtest.RedisCluster(t)
	require.NotEqual(t, a, b)
}
