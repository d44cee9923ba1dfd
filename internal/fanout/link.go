package fanout

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// link is one of a hub's pub/sub connections: to the single server, or to
// one master of a cluster. The hub, not go-redis, decides where a lost
// link's channels go: go-redis would resubscribe them on the same node in
// one SSUBSCRIBE, which a cluster refuses when they lie in several slots
// and which reaches the wrong node after a failover.
type link struct {
	addr    string // the server's address; "" for a single server
	sharded bool   // SSUBSCRIBE rather than SUBSCRIBE
	client  redis.UniversalClient
	ps      *redis.PubSub
	up      atomic.Bool // something arrived: the connection was made

	// Guarded by Hub.mu.
	channels map[string]struct{} // subscribed here
	unsubs   map[string]int      // unsubscribes sent and not yet confirmed
	lost     bool
}

func (l *link) subscribe(ctx context.Context, channel string) error {
	if l.sharded {
		return l.ps.SSubscribe(ctx, channel)
	}
	return l.ps.Subscribe(ctx, channel)
}

func (l *link) unsubscribe(ctx context.Context, channel string) error {
	if l.sharded {
		return l.ps.SUnsubscribe(ctx, channel)
	}
	return l.ps.Unsubscribe(ctx, channel)
}

// errLinkLost is attach's error when the connection it chose was lost
// before the channel was subscribed on it.
var errLinkLost = errors.New("fanout: the Redis connection was lost")

// route returns the client and address of the server that serves
// channel: on a cluster, the master of the channel's hash slot as the
// cluster client last saw it.
func (h *Hub) route(ctx context.Context, channel string) (redis.UniversalClient, string, error) {
	if h.cluster == nil {
		return h.rdb, "", nil
	}
	node, err := h.cluster.MasterForKey(ctx, channel)
	if err != nil {
		return nil, "", err
	}
	return node, node.Options().Addr, nil
}

// linkTo returns the live link to addr, opening one (and its reader) if
// there is none.
func (h *Hub) linkTo(client redis.UniversalClient, addr string) (*link, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	if l := h.links[addr]; l != nil {
		return l, nil
	}
	l := &link{addr: addr, sharded: h.cluster != nil, client: client, channels: map[string]struct{}{}, unsubs: map[string]int{}}
	// No I/O yet: the connection is dialled by the first subscribe or
	// read.
	if l.sharded {
		l.ps = client.SSubscribe(h.ctx)
	} else {
		l.ps = client.Subscribe(h.ctx)
	}
	h.links[addr] = l
	h.wg.Add(1)
	go h.read(l)
	return l, nil
}

// attach subscribes channel on the link to the server that serves it. The
// caller holds the channel's lock. On failure the channel has no link, and
// resubscribe tries again.
func (h *Hub) attach(channel string) error {
	client, addr, err := h.route(h.ctx, channel)
	if err != nil {
		return err
	}
	return h.attachTo(client, addr, channel)
}

func (h *Hub) attachTo(client redis.UniversalClient, addr, channel string) error {
	l, err := h.linkTo(client, addr)
	if err != nil {
		return err
	}
	h.mu.Lock()
	if l.lost {
		h.mu.Unlock()
		return errLinkLost
	}
	// Recorded before the command goes out, so that a loss of the link
	// from now on sends the channel to resubscribe.
	h.home[channel] = l
	l.channels[channel] = struct{}{}
	h.mu.Unlock()
	if err := l.subscribe(h.ctx, channel); err != nil {
		h.lose(l, err)
		return err
	}
	return nil
}

// read takes what arrives on l until l is lost or the hub closes: frames,
// confirmations, and the unsubscribes a cluster node sends when a slot it
// served moved to another node.
func (h *Hub) read(l *link) {
	defer h.wg.Done()
	pinged := false
	for {
		msg, err := l.ps.ReceiveTimeout(h.ctx, h.ping)
		if err != nil {
			if h.ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				// Quiet for an interval: ask, and give the answer one more.
				pinged = true
				if l.ps.Ping(h.ctx) == nil {
					continue
				}
			}
			h.lose(l, err)
			return
		}
		pinged = false
		l.up.Store(true)
		switch m := msg.(type) {
		case *redis.Message:
			h.dispatch(m.Channel, []byte(m.Payload))
		case *redis.Subscription:
			switch m.Kind {
			case "subscribe", "ssubscribe":
				h.confirmed(l, m.Channel)
			case "unsubscribe", "sunsubscribe":
				h.unsubscribed(l, m.Channel)
			}
		}
	}
}

// confirmed wakes the Subscribe calls waiting for channel and, when the
// channel was subscribed again after a loss, tells its Subscriptions to
// resume.
func (h *Hub) confirmed(l *link, channel string) {
	h.mu.Lock()
	for _, w := range h.waiters[channel] {
		close(w)
	}
	delete(h.waiters, channel)
	_, resync := h.resync[channel]
	resync = resync && h.home[channel] == l
	if resync {
		delete(h.resync, channel)
	}
	h.mu.Unlock()
	if resync {
		h.dispatch(channel, ResyncFrame)
	}
}

// unsubscribed handles an unsubscribe confirmation: the answer to one of
// the hub's own, or the server dropping the channel because its slot now
// belongs to another node; that channel is subscribed again where it is
// now served.
func (h *Hub) unsubscribed(l *link, channel string) {
	h.mu.Lock()
	if n := l.unsubs[channel]; n > 0 {
		if n == 1 {
			delete(l.unsubs, channel)
		} else {
			l.unsubs[channel] = n - 1
		}
		h.mu.Unlock()
		return
	}
	moved := h.home[channel] == l
	if moved {
		delete(h.home, channel)
		delete(l.channels, channel)
		h.resync[channel] = struct{}{}
	}
	h.mu.Unlock()
	if moved {
		h.wake()
	}
}

// lose closes l after a failure and sends its channels to resubscribe.
func (h *Hub) lose(l *link, cause error) {
	h.mu.Lock()
	if l.lost {
		h.mu.Unlock()
		return
	}
	l.lost = true
	if h.links[l.addr] == l {
		delete(h.links, l.addr)
	}
	for channel := range l.channels {
		if h.home[channel] == l {
			delete(h.home, channel)
			h.resync[channel] = struct{}{}
		}
	}
	n := len(l.channels)
	l.channels = nil
	closed := h.closed
	h.mu.Unlock()
	_ = l.ps.Close()
	if closed {
		return
	}
	if l.up.Load() { // not each failed retry
		h.logger.Warn("live delivery connection to redis lost; resubscribing its channels",
			slog.String("node", l.addr), slog.Int("channels", n), slog.String("error", cause.Error()))
	}
	h.wake()
}

// serves reports whether client's server may take a channel that moved:
// a single server, or a cluster node that is a master. A master that was
// just demoted drops its channels (and the hub resubscribes them) before
// the cluster client's view of the slots catches up; subscribed there, as
// a replica accepts, a channel would miss the frames its new master
// publishes until the master counts it among its replicas.
func (h *Hub) serves(client redis.UniversalClient) bool {
	if h.cluster == nil {
		return true
	}
	role, err := client.Do(h.ctx, "ROLE").Slice()
	return err == nil && len(role) > 0 && role[0] == "master"
}

// wake asks resubscribeLoop for a round.
func (h *Hub) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// resubscribeLoop runs resubscribe when woken, and again with a growing
// pause (up to a second) until every channel is subscribed.
func (h *Hub) resubscribeLoop() {
	defer h.wg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.kick:
		}
		start, total, rounds := time.Now(), 0, 0
		pause := 50 * time.Millisecond
		for {
			done, waiting := h.resubscribe()
			total, rounds = total+done, rounds+1
			if waiting == 0 {
				break
			}
			if rounds == 1 || rounds%30 == 0 {
				h.logger.Warn("live delivery waits for redis; retrying", slog.Int("channels", waiting))
			}
			select {
			case <-h.ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, time.Second)
		}
		if total > 0 {
			h.resubscribed.Add(uint64(total))
			h.logger.Info("live delivery resubscribed; their sockets are told to resync",
				slog.Int("channels", total), slog.Duration("after", time.Since(start)))
		}
		h.prune()
	}
}

// prune closes the idle links to cluster nodes that are no longer masters,
// such as a master that handed its slots to its replica: the hub keeps one
// connection per master.
func (h *Hub) prune() {
	if h.cluster == nil {
		return
	}
	h.mu.Lock()
	var idle []*link
	for _, l := range h.links {
		if len(l.channels) == 0 && len(l.unsubs) == 0 {
			idle = append(idle, l)
		}
	}
	h.mu.Unlock()
	for _, l := range idle {
		if h.serves(l.client) {
			continue
		}
		h.mu.Lock()
		retire := len(l.channels) == 0 && len(l.unsubs) == 0 && !l.lost
		if retire {
			l.lost = true
			if h.links[l.addr] == l {
				delete(h.links, l.addr)
			}
		}
		h.mu.Unlock()
		if retire {
			_ = l.ps.Close()
		}
	}
}

// resubscribe subscribes every channel that has Subscriptions but no link,
// where the cluster now serves it, and returns how many it subscribed and
// how many are still waiting. A server that fails once is not tried again
// in the same round.
func (h *Hub) resubscribe() (done, waiting int) {
	if h.cluster != nil {
		h.cluster.ReloadState(h.ctx) // in the background; the next round sees it
	}
	h.mu.Lock()
	var orphans []string
	for channel := range h.subs {
		if h.home[channel] == nil {
			orphans = append(orphans, channel)
		}
	}
	h.mu.Unlock()
	down, checked := map[string]bool{}, map[string]bool{}
	for _, channel := range orphans {
		if h.ctx.Err() != nil {
			return done, 0
		}
		unlock := h.lockChannel(channel)
		h.mu.Lock()
		still := len(h.subs[channel]) > 0 && h.home[channel] == nil
		if still {
			h.resync[channel] = struct{}{}
		}
		h.mu.Unlock()
		if still {
			client, addr, err := h.route(h.ctx, channel)
			if err == nil && !down[addr] && !checked[addr] {
				checked[addr] = true
				down[addr] = !h.serves(client)
			}
			switch {
			case err != nil, down[addr]:
				waiting++
			default:
				if err := h.attachTo(client, addr, channel); err != nil {
					down[addr] = true
					waiting++
				} else {
					done++
				}
			}
		}
		unlock()
	}
	return done, waiting
}
