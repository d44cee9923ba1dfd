package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
	"github.com/msgrunner/msgrunner/internal/runner"
	"github.com/msgrunner/msgrunner/jobs"
	"github.com/msgrunner/msgrunner/outbox"
	"github.com/msgrunner/msgrunner/workers"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaultsFollowTheDesign(t *testing.T) {
	t.Parallel()
	s, err := loadSettings(env(nil))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:6379", s.Redis.Single.Addr)
	require.Nil(t, s.Redis.Cluster, "one server")
	require.Equal(t, ":9090", s.Runner.Addr)
	require.Equal(t, jobs.DefaultQueues(), s.Runner.Queues)
	require.Equal(t, 7*24*time.Hour, s.Runner.DiscardedRetention)
	require.True(t, s.AsyncCommit)
	require.Len(t, s.Cleanup, 2, "old_messages and deleted_conversations; no attachment store, so no expired_attachments")
	require.Equal(t, 90, s.Cleanup[0].RetentionDays)
	next := s.CleanupSchedule.Next(time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local))
	require.Equal(t, time.Date(2026, 1, 2, 2, 0, 0, 0, time.Local), next, "daily at 02:00 local time")
}

func TestQueueSettingsComeFromTheEnvironment(t *testing.T) {
	t.Parallel()
	s, err := loadSettings(env(map[string]string{
		"QUEUE_MESSAGE_DELIVERY_WORKERS":      "40",
		"QUEUE_MESSAGE_CLEANUP_RETRY_BASE":    "1m",
		"QUEUE_BATCH_MESSAGE_SENDING_TIMEOUT": "15m",
		"RIVER_FETCH_COOLDOWN":                "5ms",
	}))
	require.NoError(t, err)
	byName := map[string]jobs.QueueSpec{}
	for _, q := range s.Runner.Queues {
		byName[q.Name] = q
	}
	require.Equal(t, 40, byName[jobs.QueueMessageDelivery].Workers)
	require.Equal(t, time.Minute, byName[jobs.QueueMessageCleanup].RetryBase)
	require.Equal(t, 15*time.Minute, byName[jobs.QueueBatchMessageSending].Timeout)
	require.Equal(t, 5*time.Millisecond, s.Runner.FetchCooldown)
}

func TestLegacyRedisVariables(t *testing.T) {
	t.Parallel()
	s, err := loadSettings(env(map[string]string{
		"REDIS_HOST": "redis.internal", "REDIS_PORT": "6380",
		"REDIS_USERNAME": "app", "REDIS_PASSWORD": "pw", "REDIS_QUEUE_DB": "3",
	}))
	require.NoError(t, err)
	require.Equal(t, "redis.internal:6380", s.Redis.Single.Addr)
	require.Equal(t, "app", s.Redis.Single.Username)
	require.Equal(t, "pw", s.Redis.Single.Password)
	require.Equal(t, 3, s.Redis.Single.DB)

	// REDIS_URL wins over the legacy variables.
	s, err = loadSettings(env(map[string]string{"REDIS_URL": "redis://127.0.0.1:6390/2", "REDIS_HOST": "ignored"}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:6390", s.Redis.Single.Addr)
	require.Equal(t, 2, s.Redis.Single.DB)
}

func TestRedisClusterAddrsSelectTheClusterClient(t *testing.T) {
	t.Parallel()
	s, err := loadSettings(env(map[string]string{
		"REDIS_CLUSTER_ADDRS": "10.0.0.1:6379,10.0.0.2:6379", "REDIS_USERNAME": "app", "REDIS_PASSWORD": "pw",
	}))
	require.NoError(t, err)
	require.Nil(t, s.Redis.Single)
	require.Equal(t, []string{"10.0.0.1:6379", "10.0.0.2:6379"}, s.Redis.Cluster.Addrs)
	require.Equal(t, "app", s.Redis.Cluster.Username)
	require.Equal(t, "pw", s.Redis.Cluster.Password)
	require.Equal(t, "10.0.0.1:6379,10.0.0.2:6379", s.Redis.Addr())

	_, err = loadSettings(env(map[string]string{"REDIS_CLUSTER_ADDRS": "10.0.0.1:6379", "REDIS_HOST": "redis.internal"}))
	require.ErrorContains(t, err, "REDIS_CLUSTER_ADDRS: cannot be set together with REDIS_HOST")
}

func TestInvalidConfigNamesEveryVariable(t *testing.T) {
	t.Parallel()
	_, err := loadSettings(env(map[string]string{
		"QUEUE_MESSAGE_DELIVERY_WORKERS": "many",
		"RIVER_FETCH_COOLDOWN":           "fast",
		"REDIS_PORT":                     "70000",
		"RUNNER_ADDR":                    "nowhere",
		"LOG_LEVEL":                      "loud",
		"CLEANUP_SCHEDULE":               "every tuesday",
		"CLEANUP_TYPES":                  "old_messages,everything",
		"DATABASE_URL":                   "mysql://x",
		"REDIS_PASSWORD":                 "hunter2",
	}))
	require.Error(t, err)
	for _, name := range []string{"QUEUE_MESSAGE_DELIVERY_WORKERS", "RIVER_FETCH_COOLDOWN", "REDIS_PORT", "RUNNER_ADDR", "LOG_LEVEL", "DATABASE_URL", "CLEANUP_SCHEDULE", "CLEANUP_TYPES"} {
		require.ErrorContains(t, err, name)
	}
	require.NotContains(t, err.Error(), "hunter2")

	_, err = loadSettings(env(map[string]string{"REDIS_URL": "redis://:s3cret@[bad"}))
	require.ErrorContains(t, err, "REDIS_URL")
	require.NotContains(t, err.Error(), "s3cret", "secrets never appear in errors")
}

func TestABadNotificationTemplateStopsTheStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "new_message.email.html.tmpl"), []byte("<p>{{.Preview</p>"), 0o600))
	_, err := loadSettings(env(map[string]string{"NOTIFY_TEMPLATES_DIR": dir, "SMTP_HOST": "127.0.0.1", "SMTP_FROM": "n@example.com",
		"SMTP_USERNAME": "u", "SMTP_PASSWORD": "smtp-hunter2"}))
	require.ErrorContains(t, err, "NOTIFY_TEMPLATES_DIR")
	require.ErrorContains(t, err, "new_message.email.html.tmpl")
	require.NotContains(t, err.Error(), "smtp-hunter2")

	s, err := loadSettings(env(map[string]string{"SMTP_HOST": "127.0.0.1", "SMTP_FROM": "n@example.com"}))
	require.NoError(t, err)
	require.NotNil(t, s.Notify.Email)
	require.Nil(t, s.Notify.Push)
	require.True(t, s.Notify.Templates.Has("new_message"))
}

func TestRunRefusesAnUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	url := dbtest.EmptyURL(t)
	err := run(context.Background(), func() {}, env(map[string]string{"DATABASE_URL": url, "RUNNER_ADDR": "127.0.0.1:0"}), nil)
	require.ErrorContains(t, err, "admin migrate up")
}

func TestRunStartsAndStopsOnCancel(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		done <- run(ctx, func() { close(stopped) }, env(map[string]string{
			"DATABASE_URL": url, "RUNNER_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error",
		}), func(addr string) { ready <- addr })
	}()
	select {
	case addr := <-ready:
		resp, err := http.Get("http://" + addr + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	case err := <-done:
		t.Fatalf("run returned before it was ready: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(40 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	<-stopped
}

func TestPeriodicJobsAreNotMultipliedByRunners(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	const every = time.Second
	var runners []*runner.Runner
	for range 2 {
		ws := river.NewWorkers()
		require.NoError(t, workers.Register(ws, workers.Deps{Pool: pool, Logger: logger}, jobs.DefaultQueues()))
		r, err := runner.New(pool, runner.Config{Queues: jobs.DefaultQueues(), Workers: ws, Logger: logger,
			PeriodicJobs: []*river.PeriodicJob{historyJob(every, jobs.JobHistoryArgs{Hours: 1, ArchiveRetentionDays: 30})}})
		require.NoError(t, err)
		require.NoError(t, r.Start(ctx))
		runners = append(runners, r)
	}
	start := time.Now()
	count := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'job-history'`).Scan(&n))
		return n
	}
	// Wait for a few periods' jobs rather than a fixed time.
	require.Eventually(t, func() bool { return count() >= 3 }, 30*time.Second, 50*time.Millisecond)
	for _, r := range runners {
		require.NoError(t, r.Shutdown(ctx))
	}
	elapsed := time.Since(start)
	n := count()
	require.LessOrEqual(t, n, int(elapsed/every)+1, "one job per period, not one per runner")
}

// TestRunDeliversThroughARedisCluster runs the runner on a real Redis
// Cluster (REDIS_CLUSTER_ADDRS): messages written through the outbox for
// recipients whose channels lie on different shards reach a hub subscribed
// on the cluster, and their conversations' caches are filled.
func TestRunDeliversThroughARedisCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	rdb, prefix := dbtest.RedisCluster(t)
	keys := fanout.Keys{Prefix: prefix}
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys})
	t.Cleanup(func() { _ = hub.Close() })

	// Three recipients per shard, chosen by their channel's slot.
	cluster := rdb.(*redis.ClusterClient)
	slots, err := cluster.ClusterSlots(ctx).Result()
	require.NoError(t, err)
	perShard := map[string]int{}
	for _, s := range slots {
		perShard[s.Nodes[0].Addr] = 0
	}
	require.Len(t, perShard, 3)
	var users []uuid.UUID
	for len(users) < 3*len(perShard) {
		u := uuid.New()
		slot, err := cluster.ClusterKeySlot(ctx, keys.UserChannel(u)).Result()
		require.NoError(t, err)
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) && perShard[s.Nodes[0].Addr] < 3 {
				perShard[s.Nodes[0].Addr]++
				users = append(users, u)
			}
		}
	}
	convs, subs := make([]uuid.UUID, len(users)), make([]*fanout.Subscription, len(users))
	for i := range users {
		convs[i] = uuid.New()
		s, err := hub.Subscribe(ctx, users[i], 8, nil)
		require.NoError(t, err)
		subs[i] = s
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- run(runCtx, func() {}, env(map[string]string{
			"DATABASE_URL": url, "RUNNER_ADDR": "127.0.0.1:0", "LOG_LEVEL": "error", "REDIS_PREFIX": prefix,
			"REDIS_CLUSTER_ADDRS": strings.Join(cluster.Options().Addrs, ","),
		}), func(addr string) { ready <- addr })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run returned before it was ready: %v", err)
	}

	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	ob, err := outbox.New(client, outbox.Config{})
	require.NoError(t, err)
	sender := uuid.New()
	for i := range users {
		_, err := ob.Send(ctx, pool, outbox.Message{ConversationID: convs[i], SenderID: sender, RecipientID: users[i], Content: "hello"})
		require.NoError(t, err)
	}

	f := fanout.New(rdb, fanout.Config{Keys: keys})
	for i := range users {
		// The message frame, among the others (an in-app notification).
		var fr fanout.MessageFrame
		require.Eventually(t, func() bool {
			raw, ok := subs[i].Next()
			return ok && json.Unmarshal(raw, &fr) == nil && fr.Type == fanout.FrameMessage
		}, 30*time.Second, 20*time.Millisecond, "recipient %d", i)
		require.Equal(t, convs[i], fr.ConversationID)
		require.Equal(t, "hello", fr.Content)
		cached, _, hit := f.Recent(ctx, convs[i], 0, 10)
		require.True(t, hit, "conversation %d is cached", i)
		require.Len(t, cached, 1)
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(40 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
}
