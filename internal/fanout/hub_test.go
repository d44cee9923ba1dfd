package fanout_test

import (
	"context"
	"sync/atomic"
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

	a1 := subscribe(t, hub, alice, 8)
	a2 := subscribe(t, hub, alice, 8) // a second device
	b1 := subscribe(t, hub, bob, 8)

	require.NoError(t, rdb.Publish(ctx, keys.UserChannel(alice), "for alice").Err())
	for _, s := range []*sub{a1, a2} {
		require.Equal(t, "for alice", string(s.next(t)))
	}
	// Redis delivers in publish order, so bob's next frame being one
	// published later shows alice's never reached him.
	require.NoError(t, rdb.Publish(ctx, keys.UserChannel(bob), "for bob").Err())
	require.Equal(t, "for bob", string(b1.next(t)))

	// A channel of another deployment (another prefix) is never seen.
	other := fanout.Keys{Prefix: prefix + "other:"}
	require.NoError(t, rdb.Publish(ctx, other.UserChannel(alice), "elsewhere").Err())
	require.NoError(t, rdb.Publish(ctx, keys.UserChannel(alice), "here").Err())
	require.Equal(t, "here", string(a1.next(t)))
}

// sub is a Subscription with its notifications.
type sub struct {
	*fanout.Subscription
	notified chan struct{}
}

func subscribe(t *testing.T, hub *fanout.Hub, user uuid.UUID, buffer int) *sub {
	t.Helper()
	notified := make(chan struct{}, 1)
	s, err := hub.Subscribe(context.Background(), user, buffer, func() {
		select {
		case notified <- struct{}{}:
		default:
		}
	})
	require.NoError(t, err)
	return &sub{Subscription: s, notified: notified}
}

// next waits for the subscription's next frame.
func (s *sub) next(t *testing.T) []byte {
	t.Helper()
	for {
		if f, ok := s.Next(); ok {
			return f
		}
		select {
		case <-s.notified:
		case <-time.After(5 * time.Second):
			t.Fatal("frame not delivered")
		}
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

	slow := subscribe(t, hub, user, 2)
	fast := subscribe(t, hub, user, 64)

	for i := range 10 {
		require.NoError(t, rdb.Publish(ctx, keys.UserChannel(user), []byte{byte('0' + i)}).Err())
	}
	select {
	case <-slow.Dropped():
	case <-time.After(5 * time.Second):
		t.Fatal("slow subscriber not dropped")
	}
	for i := range 10 {
		require.Equal(t, []byte{byte('0' + i)}, fast.next(t), "frame %d", i)
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

	s1 := subscribe(t, hub, user, 1)
	s2 := subscribe(t, hub, user, 1)
	require.EqualValues(t, 1, numsub(), "one Redis subscription per node, however many sockets")
	s1.Close()
	// Once the hub has taken s1 out (and finished any unsubscribe that
	// implied), the node is still subscribed for s2.
	require.Eventually(t, func() bool { return hub.LocalSubscribers(keys.UserChannel(user)) == 1 }, 5*time.Second, 5*time.Millisecond)
	require.EqualValues(t, 1, numsub())
	s2.Close()
	require.Eventually(t, func() bool { return numsub() == 0 }, 5*time.Second, 20*time.Millisecond)
}

func TestSubscriptionNotifiesWhenFramesArriveAtAnEmptyQueue(t *testing.T) {
	t.Parallel()
	rdb, prefix := dbtest.Redis(t)
	keys := fanout.Keys{Prefix: prefix}
	hub := fanout.NewHub(rdb, fanout.HubConfig{Keys: keys})
	defer hub.Close()
	ctx := context.Background()
	user := uuid.New()
	var notified atomic.Int64
	s, err := hub.Subscribe(ctx, user, 3, func() { notified.Add(1) })
	require.NoError(t, err)
	defer s.Close()
	publish := func(frame string) {
		require.NoError(t, rdb.Publish(ctx, keys.UserChannel(user), frame).Err())
	}

	publish("1")
	publish("2")
	require.Eventually(t, func() bool { return s.Len() == 2 }, 5*time.Second, 5*time.Millisecond)
	require.EqualValues(t, 1, notified.Load(), "once for the queue becoming non-empty")
	for _, want := range []string{"1", "2"} {
		got, ok := s.Next()
		require.True(t, ok)
		require.Equal(t, want, string(got))
	}
	_, ok := s.Next()
	require.False(t, ok)

	publish("3")
	require.Eventually(t, func() bool { return notified.Load() == 2 }, 5*time.Second, 5*time.Millisecond, "again once drained")

	// Past the buffer the subscription is dropped, and its owner told.
	for _, f := range []string{"4", "5", "6"} {
		publish(f)
	}
	select {
	case <-s.Dropped():
	case <-time.After(5 * time.Second):
		t.Fatal("not dropped")
	}
	require.EqualValues(t, 3, notified.Load())
	require.Equal(t, 3, s.Len(), "frames queued before the drop stay to be taken")
}
