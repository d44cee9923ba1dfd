package dbtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// failoverShape is the shape of a RedisFailoverCluster: a replica per
// master, and a short node timeout so a killed master's replica takes over
// within a few seconds.
var failoverShape = clusterShape{replicas: 1, nodeTimeout: time.Second}

// RedisFailoverCluster is a Redis Cluster of three masters with a replica
// each, private to one test, whose servers the test may kill: for the
// tests of what happens when a shard fails over. It runs on free loopback
// ports from the machine's redis-server and is stopped when the test ends.
type RedisFailoverCluster struct {
	c *testCluster
}

// NewRedisFailoverCluster starts a RedisFailoverCluster for t.
func NewRedisFailoverCluster(t testing.TB) *RedisFailoverCluster {
	t.Helper()
	c, err := startCluster(failoverShape)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	return &RedisFailoverCluster{c: c}
}

// Addrs returns the address of every node, masters and replicas, as
// REDIS_CLUSTER_ADDRS takes them.
func (f *RedisFailoverCluster) Addrs() []string { return slices.Clone(f.c.addrs) }

// Client returns a new cluster client on the cluster, closed when t ends.
func (f *RedisFailoverCluster) Client(t testing.TB) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: f.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// alive returns the addresses of the servers still running.
func (f *RedisFailoverCluster) alive() []string {
	var out []string
	for i, addr := range f.c.addrs {
		select {
		case <-f.c.exited[i]:
		default:
			out = append(out, addr)
		}
	}
	return out
}

// MasterOf returns the address of the master that a running node says
// serves key's hash slot.
func (f *RedisFailoverCluster) MasterOf(ctx context.Context, key string) (string, error) {
	var lastErr error
	for _, addr := range f.alive() {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		slot, err := rdb.ClusterKeySlot(ctx, key).Result()
		var slots []redis.ClusterSlot
		if err == nil {
			slots, err = rdb.ClusterSlots(ctx).Result()
		}
		_ = rdb.Close()
		if err != nil {
			lastErr = err
			continue
		}
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
				return s.Nodes[0].Addr, nil
			}
		}
		lastErr = fmt.Errorf("dbtest: no node serves slot %d", slot)
	}
	return "", fmt.Errorf("dbtest: master of %q: %w", key, lastErr)
}

// Kill SIGKILLs the server at addr and waits until it has exited.
func (f *RedisFailoverCluster) Kill(addr string) {
	i := slices.Index(f.c.addrs, addr)
	if i < 0 {
		panic("dbtest: no server at " + addr)
	}
	_ = f.c.procs[i].Process.Kill()
	<-f.c.exited[i]
}

// WaitHealthy waits until every running node reports cluster_state:ok, so
// every slot is served by a running master again.
func (f *RedisFailoverCluster) WaitHealthy(ctx context.Context) error {
	for _, addr := range f.alive() {
		err := f.c.waitNode(ctx, addr, func(rdb *redis.Client) error {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("cluster_state of %s is not ok", addr)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Failover makes the replica of the master at addr take its place while
// both run (CLUSTER FAILOVER on the replica), as an operator does for
// maintenance, and waits until it has.
func (f *RedisFailoverCluster) Failover(ctx context.Context, master string) error {
	for _, addr := range f.alive() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		repl, err := rdb.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(repl, "role:slave") && strings.Contains(repl, "master_port:"+master[strings.LastIndex(master, ":")+1:]) {
			err = rdb.ClusterFailover(ctx).Err()
			_ = rdb.Close()
			if err != nil {
				return fmt.Errorf("dbtest: CLUSTER FAILOVER on %s: %w", addr, err)
			}
			return f.c.waitNode(ctx, addr, func(rdb *redis.Client) error {
				role, err := rdb.Info(ctx, "replication").Result()
				if err == nil && !strings.Contains(role, "role:master") {
					err = fmt.Errorf("%s is not master yet", addr)
				}
				return err
			})
		}
		_ = rdb.Close()
	}
	return fmt.Errorf("dbtest: no running replica of %s", master)
}
