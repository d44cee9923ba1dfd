package fanout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

// clusterUsers is how many users (and conversations) the cluster tests
// use: enough that their keys and channels hash to every shard.
const clusterUsers = 24

// TestFanoutOnARedisCluster publishes frames for many users and
// conversations in one pipeline on a real 3-master cluster, whose keys lie
// on different shards, and checks the caches, the unread counters and
// their Lua scripts, presence and live delivery through a Hub on the same
// cluster client.
func TestFanoutOnARedisCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := dbtest.RedisCluster(t)
	keys := fanout.Keys{Prefix: prefix}
	f := fanout.New(rdb, fanout.Config{Keys: keys})
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys})
	t.Cleanup(func() { require.NoError(t, hub.Close()) })

	users, convs := make([]uuid.UUID, clusterUsers), make([]uuid.UUID, clusterUsers)
	subs := make([]*sub, clusterUsers)
	for i := range users {
		users[i], convs[i] = uuid.New(), uuid.New()
		subs[i] = subscribe(t, hub, users[i], 16)
	}
	requireOnEveryShard(t, rdb, func(i int) string { return keys.UserChannel(users[i]) })

	// Three messages per conversation, all in one pipeline that spans
	// every shard.
	var frames []fanout.MessageFrame
	for seq := int64(1); seq <= 3; seq++ {
		for i := range users {
			frames = append(frames, fanout.MessageFrame{
				ID: uuid.New(), ConversationID: convs[i], Seq: seq, SenderID: uuid.New(), RecipientID: users[i],
				Content: fmt.Sprintf("m%d", seq), CreatedAt: time.Now().UTC(),
			})
		}
	}
	ok, err := f.PublishEach(ctx, frames)
	require.NoError(t, err, "no CROSSSLOT or other error from a pipeline across shards")
	require.Len(t, ok, len(frames))
	for i, good := range ok {
		require.True(t, good, "frame %d", i)
	}

	for i := range users {
		for seq := int64(1); seq <= 3; seq++ {
			var got fanout.MessageFrame
			require.NoError(t, json.Unmarshal(subs[i].next(t), &got))
			require.Equal(t, convs[i], got.ConversationID, "user %d's frames reach only user %d", i, i)
			require.Equal(t, seq, got.Seq, "in publish order")
		}
		cached, _, hit := f.Recent(ctx, convs[i], 0, 10)
		require.True(t, hit, "conversation %d is cached", i)
		require.Len(t, cached, 3)
		require.Equal(t, "m3", cached[2].Content)
	}
	requireOnEveryShard(t, rdb, func(i int) string { return prefix + "recent:{" + convs[i].String() + "}" })

	// Forget (a transaction of the version and the cache of one
	// conversation) and a refill through the fill script.
	require.NoError(t, f.Forget(ctx, convs[0], 2))
	_, v, hit := f.Recent(ctx, convs[0], 0, 10)
	require.False(t, hit, "a gap at seq 2")
	require.NoError(t, f.FillRecent(ctx, convs[0], v, frames[:1]))
	require.NoError(t, f.ForgetConversation(ctx, convs[1]))
	_, _, hit = f.Recent(ctx, convs[1], 0, 10)
	require.False(t, hit)

	// Unread counts: loaded once and stored by the script, served from
	// the cache, loaded again after a new message or an invalidation.
	for i := range users {
		loads := 0
		load := func(context.Context) (map[uuid.UUID]int64, error) {
			loads++
			return map[uuid.UUID]int64{convs[i]: int64(loads)}, nil
		}
		counts, err := f.Unread(ctx, users[i], load)
		require.NoError(t, err)
		require.Equal(t, map[uuid.UUID]int64{convs[i]: 1}, counts)
		counts, err = f.Unread(ctx, users[i], load)
		require.NoError(t, err)
		require.Equal(t, map[uuid.UUID]int64{convs[i]: 1}, counts, "from the cache")
		require.Equal(t, 1, loads)
		if i%2 == 0 {
			require.NoError(t, f.InvalidateUnread(ctx, users[i]))
		} else {
			require.NoError(t, f.PublishMessage(ctx, fanout.MessageFrame{
				ID: uuid.New(), ConversationID: convs[i], Seq: 4, RecipientID: users[i], CreatedAt: time.Now().UTC(),
			}))
		}
		counts, err = f.Unread(ctx, users[i], load)
		require.NoError(t, err)
		require.Equal(t, map[uuid.UUID]int64{convs[i]: 2}, counts, "loaded again")
	}

	// Presence.
	for i, u := range users {
		if i%2 == 0 {
			require.NoError(t, f.SetPresence(ctx, u, time.Minute))
		}
	}
	for i, u := range users {
		online, err := f.Online(ctx, u)
		require.NoError(t, err)
		require.Equal(t, i%2 == 0, online, "user %d", i)
	}
	requireOnEveryShard(t, rdb, func(i int) string { return prefix + "presence:{" + users[i*2%clusterUsers].String() + "}" })
}

// TestHubOnARedisClusterDeliversReceiptsAndNotifications checks that the
// frames published outside the message pipeline reach a Hub's sharded
// subscriptions, and that SPUBLISH counts the subscribed gateway.
func TestHubOnARedisClusterDeliversReceiptsAndNotifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := dbtest.RedisCluster(t)
	keys := fanout.Keys{Prefix: prefix}
	f := fanout.New(rdb, fanout.Config{Keys: keys})
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys})
	t.Cleanup(func() { require.NoError(t, hub.Close()) })

	users := make([]uuid.UUID, clusterUsers)
	subs := make([]*sub, clusterUsers)
	for i := range users {
		users[i] = uuid.New()
		subs[i] = subscribe(t, hub, users[i], 4)
	}
	for i, u := range users {
		require.NoError(t, f.PublishReceipt(ctx, u, fanout.ReceiptFrame{MessageID: uuid.New(), Status: "read", At: time.Now()}))
		// Sharded: the node that takes the publish is the one the hub
		// subscribed on, so the count is exact.
		n, err := f.PublishNotification(ctx, u, fanout.NotificationFrame{ID: uuid.New(), Title: fmt.Sprint(i)})
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "user %d's gateway counted", i)
	}
	for i := range users {
		var receipt fanout.ReceiptFrame
		require.NoError(t, json.Unmarshal(subs[i].next(t), &receipt))
		require.Equal(t, fanout.FrameReceipt, receipt.Type)
		var note fanout.NotificationFrame
		require.NoError(t, json.Unmarshal(subs[i].next(t), &note))
		require.Equal(t, fmt.Sprint(i), note.Title)
	}

	// The last local subscription's close unsubscribes; a frame published
	// after that is not delivered, and the others still are.
	subs[0].Close()
	require.Eventually(t, func() bool { return hub.LocalSubscribers(keys.UserChannel(users[0])) == 0 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, f.PublishReceipt(ctx, users[1], fanout.ReceiptFrame{MessageID: uuid.New(), Status: "delivered", At: time.Now()}))
	var receipt fanout.ReceiptFrame
	require.NoError(t, json.Unmarshal(subs[1].next(t), &receipt))
	require.Equal(t, "delivered", receipt.Status)
}

// requireOnEveryShard checks that the keys (or channels) key(0) ...
// key(clusterUsers-1) hash to slots of every master of the cluster.
func requireOnEveryShard(t *testing.T, rdb redis.UniversalClient, key func(i int) string) {
	t.Helper()
	ctx := context.Background()
	cluster := rdb.(*redis.ClusterClient)
	var mu sync.Mutex
	masters := map[string]bool{}
	require.NoError(t, cluster.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters[m.Options().Addr] = true
		return nil
	}))
	slots, err := cluster.ClusterSlots(ctx).Result()
	require.NoError(t, err)
	hit := map[string]bool{}
	for i := range clusterUsers {
		slot, err := cluster.ClusterKeySlot(ctx, key(i)).Result()
		require.NoError(t, err)
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) {
				hit[s.Nodes[0].Addr] = true
			}
		}
	}
	require.Equal(t, masters, hit, "the keys lie on every shard")
}

// TestFramesForOneUserKeepTheirOrderOnARedisCluster publishes many frames
// per user, one by one and in one pipeline, and checks each user receives
// them in the order they were published, as on a single server, though
// the cluster client would spread commands without keys over the masters.
func TestFramesForOneUserKeepTheirOrderOnARedisCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := dbtest.RedisCluster(t)
	keys := fanout.Keys{Prefix: prefix}
	f := fanout.New(rdb, fanout.Config{Keys: keys})
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys})
	t.Cleanup(func() { require.NoError(t, hub.Close()) })

	const perUser = 30
	// Seven users: a count prime to the three masters, so a user's
	// consecutive publishes would not keep going through one node by
	// chance of the round robin.
	users := make([]uuid.UUID, 7)
	subs := make([]*sub, len(users))
	for i := range users {
		users[i] = uuid.New()
		subs[i] = subscribe(t, hub, users[i], 2*perUser)
	}
	want := make([][]uuid.UUID, len(users))
	var frames []fanout.MessageFrame
	for n := range perUser {
		for i, u := range users {
			id := uuid.New()
			want[i] = append(want[i], id)
			require.NoError(t, f.PublishReceipt(ctx, u, fanout.ReceiptFrame{MessageID: id, Status: "read", At: time.Now()}))
			frames = append(frames, fanout.MessageFrame{ID: uuid.New(), ConversationID: u, Seq: int64(n + 1), RecipientID: u, CreatedAt: time.Now()})
		}
	}
	require.NoError(t, f.PublishMessages(ctx, frames))
	for i := range users {
		for n := range perUser {
			var got fanout.ReceiptFrame
			require.NoError(t, json.Unmarshal(subs[i].next(t), &got))
			require.Equal(t, want[i][n], got.MessageID, "user %d's receipt %d", i, n)
		}
		for n := range perUser {
			var got fanout.MessageFrame
			require.NoError(t, json.Unmarshal(subs[i].next(t), &got))
			require.Equal(t, int64(n+1), got.Seq, "user %d's message %d", i, n)
		}
	}
}
