package dbtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/redis/go-redis/v9"
)

const redisPrefix = "msgrunner_test:"

var redisStaleOnce sync.Once

// redisOptions reads TEST_REDIS_URL (else REDIS_URL, else the local
// default; config.Reader.TestServices).
func redisOptions() (*redis.Options, error) {
	r := config.NewReader(os.Getenv)
	raw := r.TestServices().RedisURL
	if err := r.Err(); err != nil {
		return nil, err
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, errors.New("dbtest: TEST_REDIS_URL/REDIS_URL: not a redis:// URL")
	}
	return opts, nil
}

// NewRedis is Redis for callers without a testing.TB (examples): a client
// on the shared test Redis and a prefix of their own; done deletes the
// prefix's keys and closes the client.
func NewRedis(ctx context.Context) (rdb *redis.Client, prefix string, done func(), err error) {
	opts, err := redisOptions()
	if err != nil {
		return nil, "", nil, err
	}
	rdb = redis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, "", nil, fmt.Errorf("dbtest: Redis does not answer (run `make services`): %w", err)
	}
	redisStaleOnce.Do(func() { deleteKeys(ctx, rdb, redisPrefix+"*", true) })
	prefix = fmt.Sprintf("%s%d:%d:", redisPrefix, os.Getpid(), counter.Add(1))
	return rdb, prefix, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		deleteKeys(ctx, rdb, prefix+"*", false)
		rdb.Close()
	}, nil
}

// Redis returns a client on the shared test Redis and a key and channel
// prefix unique to this test ("msgrunner_test:<pid>:<n>:"). Keys under the
// prefix are deleted when the test ends; keys left by test processes that
// died are deleted on first use. Pub/sub channels ignore Redis DB numbers,
// so tests must put the prefix on channel names too.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb, prefix, done, err := NewRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(done)
	return rdb, prefix
}

// deleteKeys removes keys matching pattern; with onlyDead, only those whose
// prefix names a process that no longer runs.
func deleteKeys(ctx context.Context, rdb *redis.Client, pattern string, onlyDead bool) {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if onlyDead {
			pid := strings.SplitN(strings.TrimPrefix(key, redisPrefix), ":", 2)[0]
			if processAlive(testDBPrefix + pid) {
				continue
			}
		}
		rdb.Del(ctx, key)
	}
}
