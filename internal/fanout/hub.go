package fanout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// ResyncFrame is sent to a user's subscriptions when the hub's Redis
// subscription was re-established after a disconnect: frames published in
// between were lost, and the client should send resume.
var ResyncFrame = []byte(`{"type":"resync","reason":"live delivery was interrupted; send resume to catch up"}`)

// ErrHubClosed is returned by Subscribe after Close.
var ErrHubClosed = errors.New("fanout: hub closed")

// Hub is a gateway node's subscriptions to the channels of the users
// connected to it: it subscribes to a user's channel while the user has at
// least one local Subscription, unsubscribes when the last one closes, and
// hands every frame on the channel to that user's Subscriptions. It is safe
// for concurrent use.
//
// On a single Redis server the hub holds one connection (SUBSCRIBE). On a
// Redis Cluster it uses sharded pub/sub: one connection to each master
// that owns a connected user's channel (SSUBSCRIBE), so a frame travels
// only to the shard of its channel and on to the gateways subscribed there,
// never through the whole cluster.
//
// When a connection is lost (the server died, the network broke, a shard
// failed over or its slots moved), the hub subscribes the channels again
// where the cluster now has them, retrying until it can, and then sends
// ResyncFrame to those channels' Subscriptions, since frames published in
// between were lost; their clients catch up with resume.
//
// A Subscription that does not keep up (its buffer is full) is dropped and
// its Dropped channel closed; its owner closes the connection and the
// client resumes from Postgres. Others are not slowed down.
type Hub struct {
	rdb     redis.UniversalClient
	cluster *redis.ClusterClient // rdb, when it is a cluster client: sharded pub/sub
	keys    Keys
	logger  *slog.Logger
	wait    time.Duration
	ping    time.Duration

	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	kick   chan struct{} // wakes resubscribe
	wg     sync.WaitGroup

	// changeMu serialises subscribing and unsubscribing one channel (so
	// Redis sees them in the order the subscriber set changed), striped by
	// channel so that users connecting at once do not queue behind each
	// other's Redis round trips.
	changeMu [changeStripes]sync.Mutex
	mu       sync.Mutex // guards the maps below and every link's maps
	subs     map[string]map[*Subscription]struct{}
	waiters  map[string][]chan struct{}
	links    map[string]*link    // live connections, by server address
	home     map[string]*link    // the link each channel is subscribed on; none while it waits to be subscribed again
	resync   map[string]struct{} // channels whose Subscriptions get ResyncFrame once subscribed again
	closed   bool

	resubscribed atomic.Uint64 // channels subscribed again after a lost connection
}

// Resubscribed returns how many channels the hub has subscribed again
// after losing their connection (a Redis restart or failover, a network
// cut), since it started: each such channel's sockets were told to
// resync.
func (h *Hub) Resubscribed() uint64 { return h.resubscribed.Load() }

// HubConfig configures a Hub.
type HubConfig struct {
	Keys   Keys
	Logger *slog.Logger
	// ConfirmTimeout bounds how long Subscribe waits for Redis to confirm a
	// new channel subscription. Default 2s.
	ConfirmTimeout time.Duration
	// PingInterval is how long a connection may stay silent before the hub
	// pings it; one more interval without an answer and the hub treats it
	// as lost. Default 5s.
	PingInterval time.Duration
}

// NewHub returns a hub on rdb; its connections are opened as users
// subscribe. A *redis.ClusterClient makes it use sharded pub/sub, as
// Fanout then publishes with SPUBLISH.
func NewHub(rdb redis.UniversalClient, cfg HubConfig) *Hub {
	if cfg.Keys.Prefix == "" {
		cfg.Keys.Prefix = DefaultPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.ConfirmTimeout = cmp.Or(cfg.ConfirmTimeout, 2*time.Second)
	cfg.PingInterval = cmp.Or(cfg.PingInterval, 5*time.Second)
	cluster, _ := rdb.(*redis.ClusterClient)
	h := &Hub{
		rdb:     rdb,
		cluster: cluster,
		keys:    cfg.Keys,
		logger:  cfg.Logger,
		wait:    cfg.ConfirmTimeout,
		ping:    cfg.PingInterval,
		kick:    make(chan struct{}, 1),
		subs:    map[string]map[*Subscription]struct{}{},
		waiters: map[string][]chan struct{}{},
		links:   map[string]*link{},
		home:    map[string]*link{},
		resync:  map[string]struct{}{},
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.wg.Add(1)
	go h.resubscribeLoop()
	return h
}

// Subscription holds one user's frames (raw JSON, one frame per element)
// until its owner takes them with Next. Its queue is allocated as frames
// arrive and released when it empties, so an idle subscription holds no
// buffer; it holds at most the buffer given to Subscribe.
type Subscription struct {
	hub     *Hub
	channel string
	notify  func()
	limit   int
	dropped chan struct{}
	once    sync.Once

	mu     sync.Mutex // guards the fields below
	queue  [][]byte   // frames not yet taken, oldest first; nil when empty
	closed bool       // closed or dropped: frames are no longer queued
}

// Dropped is closed when the hub dropped this subscription because its
// buffer was full. Frames still queued may be taken, but no more arrive.
func (s *Subscription) Dropped() <-chan struct{} { return s.dropped }

// Next takes the oldest queued frame; ok is false when none is queued. It
// is safe for concurrent use, though frames keep their order only for a
// single taker.
func (s *Subscription) Next() (frame []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return nil, false
	}
	frame = s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	if len(s.queue) == 0 {
		s.queue = nil // an idle subscription keeps no buffer
	}
	return frame, true
}

// Len reports how many frames are queued.
func (s *Subscription) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// push queues frame and reports whether the queue was empty before; it
// reports full, queueing nothing, when the subscription already holds its
// limit, and then queues no more. After Close it queues nothing and
// reports neither.
func (s *Subscription) push(frame []byte) (wasEmpty, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, false
	}
	if len(s.queue) >= s.limit {
		s.closed = true
		return false, true
	}
	wasEmpty = len(s.queue) == 0
	s.queue = append(s.queue, frame)
	return wasEmpty, false
}

// Close stops delivery to s and releases the frames it holds. It is safe
// to call more than once.
func (s *Subscription) Close() {
	s.mu.Lock()
	s.closed, s.queue = true, nil
	s.mu.Unlock()
	s.hub.remove(s, false)
}

// Subscribe registers a subscription for user that queues up to buffer
// frames not yet taken with Next; one more drops it (see Dropped). notify
// (nil for none) is called when a frame arrives at an empty queue and when
// the subscription is dropped, from the hub's goroutine with the hub
// locked: it must return at once and must not call the hub. A frame being
// dispatched while Close runs may still call it once after Close returns.
//
// Subscribe waits (up to the confirm timeout) for Redis to confirm a
// channel this node was not yet subscribed to, so frames published after
// Subscribe returns reach it. If Redis is unreachable it still returns the
// subscription with an error: the hub resubscribes when Redis returns, and
// the caller decides whether to go on without live frames. After Close of
// the hub it returns nil and ErrHubClosed.
func (h *Hub) Subscribe(ctx context.Context, user uuid.UUID, buffer int, notify func()) (*Subscription, error) {
	if buffer < 1 {
		buffer = 1
	}
	if notify == nil {
		notify = func() {}
	}
	s := &Subscription{hub: h, channel: h.keys.UserChannel(user), notify: notify, limit: buffer, dropped: make(chan struct{})}

	unlock := h.lockChannel(s.channel)
	defer unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	set := h.subs[s.channel]
	first := set == nil
	if first {
		set = map[*Subscription]struct{}{}
		h.subs[s.channel] = set
	}
	set[s] = struct{}{}
	var confirmed chan struct{}
	if first {
		confirmed = make(chan struct{})
		h.waiters[s.channel] = append(h.waiters[s.channel], confirmed)
	}
	h.mu.Unlock()
	if !first {
		return s, nil
	}

	if err := h.attach(s.channel); err != nil {
		h.wake()
		return s, fmt.Errorf("fanout: subscribing: %w", err)
	}
	timer := time.NewTimer(h.wait)
	defer timer.Stop()
	select {
	case <-confirmed:
		return s, nil
	case <-timer.C:
		return s, errors.New("fanout: Redis did not confirm the subscription in time")
	case <-ctx.Done():
		return s, ctx.Err()
	}
}

// changeStripes is how many channel locks the hub keeps.
const changeStripes = 64

// lockChannel locks the stripe of channel and returns its unlock.
func (h *Hub) lockChannel(channel string) func() {
	f := fnv.New32a()
	_, _ = f.Write([]byte(channel))
	mu := &h.changeMu[f.Sum32()%changeStripes]
	mu.Lock()
	return mu.Unlock
}

func (h *Hub) remove(s *Subscription, dropped bool) {
	s.once.Do(func() {
		if dropped {
			h.logger.Warn("dropping slow subscriber", slog.String("channel_user", userOf(s.channel)))
			close(s.dropped)
			s.notify()
		}
		go h.unsubscribe(s)
	})
}

func (h *Hub) unsubscribe(s *Subscription) {
	unlock := h.lockChannel(s.channel)
	defer unlock()
	h.mu.Lock()
	set := h.subs[s.channel]
	delete(set, s)
	var l *link
	if set != nil && len(set) == 0 {
		delete(h.subs, s.channel)
		delete(h.resync, s.channel)
		if l = h.home[s.channel]; l != nil {
			delete(h.home, s.channel)
			delete(l.channels, s.channel)
			l.unsubs[s.channel]++ // its confirmation is ours, not the server's
		}
	}
	closed := h.closed
	h.mu.Unlock()
	if l != nil && !closed {
		if err := l.unsubscribe(h.ctx, s.channel); err != nil {
			h.lose(l, err)
		}
	}
}

func (h *Hub) dispatch(channel string, payload []byte) {
	if !strings.HasPrefix(channel, h.keys.Prefix) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[channel] {
		switch wasEmpty, full := s.push(payload); {
		case full: // logged once, by remove
			h.remove(s, true)
		case wasEmpty:
			s.notify()
		}
	}
}

// userOf extracts the user id from a channel name, for logs.
func userOf(channel string) string {
	i := strings.Index(channel, "{")
	j := strings.LastIndex(channel, "}")
	if i < 0 || j <= i {
		return ""
	}
	return channel[i+1 : j]
}

// Close closes the hub's Redis connections; subscriptions stop receiving.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	links := make([]*link, 0, len(h.links))
	for _, l := range h.links {
		links = append(links, l)
	}
	h.mu.Unlock()
	h.cancel()
	var err error
	for _, l := range links {
		if cerr := l.ps.Close(); cerr != nil && !errors.Is(cerr, redis.ErrClosed) {
			err = cmp.Or(err, cerr)
		}
	}
	h.wg.Wait()
	return err
}
