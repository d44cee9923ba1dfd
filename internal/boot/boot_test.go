package boot_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/boot"
	"github.com/msgrunner/msgrunner/internal/config"
	"github.com/msgrunner/msgrunner/internal/db"
	"github.com/msgrunner/msgrunner/internal/dbtest"
)

func TestBuildersNameTheVariableOfWhatTheirClientsRefuse(t *testing.T) {
	t.Parallel()
	r := config.NewReader(func(string) string { return "" })
	opts := boot.RedisOptions(r, config.Redis{URL: "redis://:s3cret@[bad"})
	require.Equal(t, "127.0.0.1:6379", opts.Single.Addr)
	require.Nil(t, boot.Sealer(r, config.Encryption{Keys: "k1:" + strings.Repeat("A", 8), ActiveKey: "k1"}))
	err := r.Err()
	require.ErrorContains(t, err, "REDIS_URL: must be a redis:// or rediss:// URL")
	require.ErrorContains(t, err, `ENCRYPTION_KEYS: key "k1" is`)
	require.NotContains(t, err.Error(), "s3cret")

	r = config.NewReader(func(string) string { return "" })
	opts = boot.RedisOptions(r, config.Redis{Host: "redis.internal", Port: 6380, Username: "app", Password: "pw", DB: 3})
	require.Equal(t, "redis.internal:6380", opts.Single.Addr)
	require.Equal(t, 3, opts.Single.DB)
	require.Nil(t, opts.Cluster)
	opts = boot.RedisOptions(r, config.Redis{ClusterAddrs: []string{"10.0.0.1:6379"}, Username: "app", Password: "pw"})
	require.Nil(t, opts.Single)
	require.Equal(t, &redis.ClusterOptions{Addrs: []string{"10.0.0.1:6379"}, Username: "app", Password: "pw"}, opts.Cluster)
	require.IsType(t, &redis.ClusterClient{}, opts.NewClient(), "one seed node is still a cluster")
	require.Nil(t, boot.Sealer(r, config.Encryption{}), "no keys: encryption off")
	require.Nil(t, boot.Attachments(r, ""), "no directory: no store")
	require.NotNil(t, boot.Attachments(r, filepath.Join(t.TempDir(), "attachments")))
	require.Nil(t, boot.Tracing(config.Tracing{}), "no endpoint: tracing off")
	require.NoError(t, r.Err())
}

func TestLoggerFollowsTheFormat(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	boot.Logger(&b, config.Log{Format: "text"}).Info("hello")
	require.Contains(t, b.String(), "msg=hello")
	b.Reset()
	boot.Logger(&b, config.Log{Format: "json"}).Debug("quiet")
	require.Empty(t, b.String(), "info by default")
	boot.Logger(&b, config.Log{Format: "json"}).Info("hello")
	require.Contains(t, b.String(), `"msg":"hello"`)
}

func TestStartRefusesAnUnmigratedDatabaseAndClosesWhatItOpened(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger := boot.Logger(&bytes.Buffer{}, config.Log{})
	_, err := boot.Start(ctx, boot.Config{Name: "test", Logger: logger, Database: config.Database{URL: dbtest.EmptyURL(t)}})
	require.ErrorIs(t, err, db.ErrSchemaBehind)

	_, err = boot.Start(ctx, boot.Config{Name: "test", Logger: logger, Database: config.Database{URL: dbtest.URL(t), MaxConns: 2},
		SearchLanguage: "klingon"})
	require.ErrorContains(t, err, "klingon")

	rdb, _ := dbtest.Redis(t)
	p, err := boot.Start(ctx, boot.Config{Name: "test", Logger: logger, Database: config.Database{URL: dbtest.URL(t), MaxConns: 2},
		SearchLanguage: "simple", Redis: &boot.RedisConfig{Single: rdb.Options()}})
	require.NoError(t, err)
	require.NoError(t, p.Pool.Ping(ctx))
	require.NoError(t, p.Redis.Ping(ctx).Err())
	require.NotNil(t, p.Registry)
	require.Nil(t, p.Tracer, "tracing off")
	p.Close()
	require.Error(t, p.Redis.Ping(ctx).Err(), "closed")
}

func TestStartOnARedisClusterGivesTheClusterClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster, prefix := dbtest.RedisCluster(t)
	addrs := cluster.(*redis.ClusterClient).Options().Addrs
	r := config.NewReader(func(v string) string {
		return map[string]string{"REDIS_CLUSTER_ADDRS": strings.Join(addrs, ",")}[v]
	})
	opts := boot.RedisOptions(r, r.Runner().Redis)
	require.NoError(t, r.Err())
	p, err := boot.Start(ctx, boot.Config{Name: "test", Logger: boot.Logger(&bytes.Buffer{}, config.Log{}),
		Database: config.Database{URL: dbtest.URL(t), MaxConns: 2}, Redis: opts})
	require.NoError(t, err)
	defer p.Close()
	require.IsType(t, &redis.ClusterClient{}, p.Redis)
	for i := range 12 {
		key := prefix + "k:{" + strconv.Itoa(i) + "}"
		require.NoError(t, p.Redis.Set(ctx, key, i, time.Minute).Err(), "every shard answers")
	}
}

func TestAtLeastDropsWhatIsBelowItsLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	river := boot.AtLeast(base, slog.LevelWarn).With("component", "river")

	river.Info("producer: job counts")
	river.Debug("debug line")
	river.Warn("job failed")
	base.Info("the process's own info line")
	boot.AtLeast(base, slog.LevelDebug).Debug("still below the process's own level")

	out := buf.String()
	require.NotContains(t, out, "job counts")
	require.NotContains(t, out, "debug line")
	require.NotContains(t, out, "still below")
	require.Contains(t, out, `msg="job failed" component=river`)
	require.Contains(t, out, "the process's own info line")
}
