package fanout_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/msgrunner/msgrunner/internal/dbtest"
	"github.com/msgrunner/msgrunner/internal/fanout"
)

func TestHubRoutesFramesOnlyToTheirUser(t *testing.T) {
	t.Parallel()
	rdb, prefix := dbtest.Redis(t)
	keys := fanout.Keys{Prefix: prefix}
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys})
	defer hub.Close()
	ctx := context.Background()
	alice, bob := uuid.New(), uuid.New()

	a1, err := hub.Subscribe(ctx, alice, 8)
	require.NoError(t, err)
	a2, err := hub.Subscribe(ctx, alice, 8) // a second device
	require.NoError(t, err)
	b1, err := hub.Subscribe(ctx, bob, 8)
	require.NoError(t, err)

	require.NoError(t, rdb.Publish(ctx, keys.UserChannel(alice), "for alice").Err())
	for _, s := range []*fanout.Subscription{a1, a2} {
		select {
		case got := <-s.C:
			require.Equal(t, "for alice", string(got))
		case <-time.After(5 * time.Second):
			t.Fatal("frame not delivered")
		}
	}
	select {
	case got := <-b1.C:
		t.Fatalf("bob received alice's frame %q", got)
	case <-time.After(200 * time.Millisecond):
	}

	// A channel of another deployment (another prefix) is never seen.
	other := fanout.Keys{Prefix: prefix + "other:"}
	require.NoError(t, rdb.Publish(ctx, other.UserChannel(alice), "elsewhere").Err())
	select {
	case got := <-a1.C:
		t.Fatalf("received %q from another prefix", got)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestHubDropsOnlyTheSlowSubscriber(t *testing.T) {
	t.Parallel()
	rdb, prefix := dbtest.Redis(t)
	keys := fanout.Keys{Prefix: prefix}
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys})
	defer hub.Close()
	ctx := context.Background()
	user := uuid.New()

	slow, err := hub.Subscribe(ctx, user, 2)
	require.NoError(t, err)
	fast, err := hub.Subscribe(ctx, user, 64)
	require.NoError(t, err)

	for i := range 10 {
		require.NoError(t, rdb.Publish(ctx, keys.UserChannel(user), []byte{byte('0' + i)}).Err())
	}
	select {
	case <-slow.Dropped():
	case <-time.After(5 * time.Second):
		t.Fatal("slow subscriber not dropped")
	}
	for i := range 10 {
		select {
		case got := <-fast.C:
			require.Equal(t, []byte{byte('0' + i)}, got)
		case <-time.After(5 * time.Second):
			t.Fatalf("fast subscriber missed frame %d", i)
		}
	}
	select {
	case <-fast.Dropped():
		t.Fatal("fast subscriber dropped")
	default:
	}
}

func TestUnsubscribeWhenTheLastLocalSubscriberLeaves(t *testing.T) {
	t.Parallel()
	rdb, prefix := dbtest.Redis(t)
	keys := fanout.Keys{Prefix: prefix}
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys})
	defer hub.Close()
	ctx := context.Background()
	user := uuid.New()
	numsub := func() int64 {
		n, err := rdb.PubSubNumSub(ctx, keys.UserChannel(user)).Result()
		require.NoError(t, err)
		return n[keys.UserChannel(user)]
	}

	s1, err := hub.Subscribe(ctx, user, 1)
	require.NoError(t, err)
	s2, err := hub.Subscribe(ctx, user, 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, numsub(), "one Redis subscription per node, however many sockets")
	s1.Close()
	time.Sleep(100 * time.Millisecond)
	require.EqualValues(t, 1, numsub())
	s2.Close()
	require.Eventually(t, func() bool { return numsub() == 0 }, 5*time.Second, 20*time.Millisecond)
}
