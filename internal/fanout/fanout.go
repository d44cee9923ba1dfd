package fanout

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Config configures a Fanout. Zero fields take the documented defaults.
type Config struct {
	// Keys names keys and channels; Prefix defaults to DefaultPrefix.
	Keys Keys
	// RecentMax bounds each conversation's cached recent messages. Default 50.
	RecentMax int
	// RecentTTL expires a quiet conversation's cache. Default 24h.
	RecentTTL time.Duration
	// UnreadTTL expires a user's cached unread counts. Default 10m.
	UnreadTTL time.Duration
}

// ErrUnavailable wraps every failure to talk to Redis, so callers can tell
// "Redis is down, try later" from other errors.
var ErrUnavailable = errors.New("fanout: redis unavailable")

// Fanout publishes frames and maintains the caches. It is safe for
// concurrent use.
type Fanout struct {
	rdb     redis.UniversalClient
	cfg     Config
	sharded bool // rdb is a cluster client: sharded pub/sub
}

// New returns a Fanout on rdb.
func New(rdb redis.UniversalClient, cfg Config) *Fanout {
	if cfg.Keys.Prefix == "" {
		cfg.Keys.Prefix = DefaultPrefix
	}
	cfg.RecentMax = cmp.Or(cfg.RecentMax, 50)
	cfg.RecentTTL = cmp.Or(cfg.RecentTTL, 24*time.Hour)
	cfg.UnreadTTL = cmp.Or(cfg.UnreadTTL, 10*time.Minute)
	_, sharded := rdb.(*redis.ClusterClient)
	return &Fanout{rdb: rdb, cfg: cfg, sharded: sharded}
}

// Keys returns the key namer in use.
func (f *Fanout) Keys() Keys { return f.cfg.Keys }

// PublishMessage publishes fr on its recipient's channel (on each of
// its audience's, for a group message), adds it to the
// conversation's recent-messages cache and invalidates the recipient's
// cached unread counts, in one round trip. Publishing the same frame twice
// is harmless: clients dedupe by id and the cache by seq.
func (f *Fanout) PublishMessage(ctx context.Context, fr MessageFrame) error {
	return f.PublishMessages(ctx, []MessageFrame{fr})
}

// PublishMessages is PublishMessage for many frames in one round trip; an
// error means at least one frame did not get through.
func (f *Fanout) PublishMessages(ctx context.Context, frs []MessageFrame) error {
	ok, err := f.PublishEach(ctx, frs)
	if ok == nil || err == nil {
		return err // nil, or a frame that could not be encoded
	}
	return fmt.Errorf("publishing message: %w: %w", ErrUnavailable, err)
}

// PublishEach publishes frs in one pipeline and tells, frame by frame,
// whether every command of that frame (its publish and cache updates)
// succeeded, so callers can keep what got through when Redis refuses one
// frame; err is the pipeline's first failure, nil when all succeeded. A
// frame that cannot be encoded returns ok nil and sends nothing. It is
// the publishing half of package delivery's publish-and-mark.
func (f *Fanout) PublishEach(ctx context.Context, frs []MessageFrame) (ok []bool, err error) {
	pipe := f.rdb.Pipeline()
	ends := make([]int, len(frs)) // frame i's commands end at ends[i]
	for i, fr := range frs {
		if err := f.queueMessage(ctx, pipe, fr); err != nil {
			return nil, err
		}
		ends[i] = pipe.Len()
	}
	// Exec returns every queued command, each with its own error.
	cmds, err := pipe.Exec(ctx)
	ok = make([]bool, len(frs))
	start := 0
	for i, end := range ends {
		ok[i] = true
		for _, c := range cmds[start:end] {
			ok[i] = ok[i] && c.Err() == nil
		}
		start = end
	}
	return ok, err
}

// publish returns the command that publishes payload on channel. On a
// Redis Cluster it is SPUBLISH, which the cluster client sends to the
// master of the channel's hash slot and which reaches only the shard that
// owns it, where the gateways' Hubs hold their sharded subscriptions;
// frames for one user go through one node and so keep the order they were
// published in. On a single server it is PUBLISH.
func (f *Fanout) publish(ctx context.Context, channel string, payload []byte) *redis.IntCmd {
	name := "publish"
	if f.sharded {
		name = "spublish"
	}
	cmd := redis.NewIntCmd(ctx, name, channel, payload)
	cmd.SetFirstKeyPos(1)
	return cmd
}

// Reachable reports whether Redis answers a PING.
func (f *Fanout) Reachable(ctx context.Context) bool {
	return f.rdb.Ping(ctx).Err() == nil
}

// queueMessage adds fr's publish and cache updates to pipe.
func (f *Fanout) queueMessage(ctx context.Context, pipe redis.Pipeliner, fr MessageFrame) error {
	fr.Type = FrameMessage
	if fr.Encrypted {
		fr.Content = "" // never through Redis
	}
	b, err := json.Marshal(fr)
	if err != nil {
		return fmt.Errorf("encoding message frame: %w", err)
	}
	k := f.cfg.Keys
	recent := k.recent(fr.ConversationID)
	to := fr.Audience
	if fr.RecipientID != uuid.Nil {
		to = []uuid.UUID{fr.RecipientID}
	}
	for _, u := range to {
		if err := pipe.Process(ctx, f.publish(ctx, k.UserChannel(u), b)); err != nil {
			return fmt.Errorf("queueing message frame: %w", err)
		}
	}
	// Replace whatever the cache holds at this seq, then trim to the newest.
	// An encrypted message is cached as its marker frame (no content), so
	// the run stays whole; readers decrypt it from Postgres.
	pipe.ZRemRangeByScore(ctx, recent, strconv.FormatInt(fr.Seq, 10), strconv.FormatInt(fr.Seq, 10))
	pipe.ZAdd(ctx, recent, redis.Z{Score: float64(fr.Seq), Member: b})
	pipe.ZRemRangeByRank(ctx, recent, 0, int64(-f.cfg.RecentMax-1))
	pipe.Expire(ctx, recent, f.cfg.RecentTTL)
	if fr.Event != nil {
		return nil // a system message counts as unread for nobody
	}
	for _, u := range to {
		f.bumpUnread(ctx, pipe, u)
	}
	return nil
}

// PublishReceipt publishes fr on the channel of the message's sender.
func (f *Fanout) PublishReceipt(ctx context.Context, sender uuid.UUID, fr ReceiptFrame) error {
	fr.Type = FrameReceipt
	b, err := json.Marshal(fr)
	if err != nil {
		return fmt.Errorf("encoding receipt frame: %w", err)
	}
	if err := f.rdb.Process(ctx, f.publish(ctx, f.cfg.Keys.UserChannel(sender), b)); err != nil {
		return fmt.Errorf("publishing receipt: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// InvalidateUnread marks user's cached unread counts stale.
func (f *Fanout) InvalidateUnread(ctx context.Context, user uuid.UUID) error {
	pipe := f.rdb.Pipeline()
	f.bumpUnread(ctx, pipe, user)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("invalidating unread counts: %w: %w", ErrUnavailable, err)
	}
	return nil
}

func (f *Fanout) bumpUnread(ctx context.Context, pipe redis.Pipeliner, user uuid.UUID) {
	v := f.cfg.Keys.unreadVersion(user)
	pipe.Incr(ctx, v)
	// Outlives the cached hash it guards, so an expired version never
	// meets a hash stamped with the number it restarts at.
	pipe.Expire(ctx, v, 24*f.cfg.UnreadTTL)
}

// Recent returns the cached message frames of a conversation with seq
// greater than after, at most limit, in seq order. ok is false, and the
// caller must ask Postgres, when the cache cannot answer: the key is
// missing, Redis fails, or the cached run does not start right after after
// or has a gap. version is the conversation's cache version, read in the
// same round trip and so before any Postgres read that follows: FillRecent
// stores that read's page only if no message changed since. It is empty
// when Redis failed, and then nothing should be filled.
func (f *Fanout) Recent(ctx context.Context, conv uuid.UUID, after int64, limit int) (frames []MessageFrame, version string, ok bool) {
	key := f.cfg.Keys.recent(conv)
	pipe := f.rdb.Pipeline()
	ver := pipe.Get(ctx, f.cfg.Keys.recentVersion(conv))
	exists := pipe.Exists(ctx, key)
	below := pipe.ZCount(ctx, key, "-inf", strconv.FormatInt(after, 10))
	rng := pipe.ZRangeByScore(ctx, key, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(after, 10), Max: "+inf", Count: int64(limit),
	})
	// Exec reports a missing version key as an error too; each command's
	// own error is checked below.
	_, _ = pipe.Exec(ctx)
	version, err := ver.Result()
	if errors.Is(err, redis.Nil) {
		version, err = "0", nil
	}
	if err != nil {
		return nil, "", false
	}
	if exists.Err() != nil || below.Err() != nil || rng.Err() != nil || exists.Val() == 0 {
		return nil, version, false
	}
	// The cache must hold the message at after (or start at seq 1) to prove
	// nothing between after and its first entry was evicted.
	if after > 0 && below.Val() == 0 {
		return nil, version, false
	}
	out := make([]MessageFrame, 0, len(rng.Val()))
	next := after + 1
	for _, raw := range rng.Val() {
		var fr MessageFrame
		if err := json.Unmarshal([]byte(raw), &fr); err != nil || fr.Seq != next {
			return nil, version, false
		}
		out = append(out, fr)
		next++
	}
	return out, version, true
}

// Forget drops a message from its conversation's recent cache (after an
// edit or delete) and bumps the conversation's cache version, so a refill
// from a read that predates the change is refused; readers fall back to
// Postgres until the cache refills.
func (f *Fanout) Forget(ctx context.Context, conv uuid.UUID, seq int64) error {
	s := strconv.FormatInt(seq, 10)
	pipe := f.rdb.TxPipeline()
	pipe.Incr(ctx, f.cfg.Keys.recentVersion(conv))
	pipe.Expire(ctx, f.cfg.Keys.recentVersion(conv), 2*f.cfg.RecentTTL)
	pipe.ZRemRangeByScore(ctx, f.cfg.Keys.recent(conv), s, s)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("forgetting cached message: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// ForgetConversation drops a conversation's whole recent cache and bumps
// its version (after its history was sealed, say), so no refill read
// before the change is stored; readers fall back to Postgres until the
// cache refills.
func (f *Fanout) ForgetConversation(ctx context.Context, conv uuid.UUID) error {
	pipe := f.rdb.TxPipeline()
	pipe.Incr(ctx, f.cfg.Keys.recentVersion(conv))
	pipe.Expire(ctx, f.cfg.Keys.recentVersion(conv), 2*f.cfg.RecentTTL)
	pipe.Del(ctx, f.cfg.Keys.recent(conv))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("forgetting cached conversation: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// fillRecent stores members unless the version moved since the caller
// read it (a message of the page changed meanwhile).
var fillRecent = redis.NewScript(`
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[3])
for i = 6, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i+1]) end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[4]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

// FillRecent stores frames (a contiguous run in seq order, such as a page
// read from Postgres after Recent returned version) in the
// recent-messages cache, unless a message changed since (then nothing is
// stored). Encrypted messages go in as their marker frames: never with
// content, whatever the caller set.
func (f *Fanout) FillRecent(ctx context.Context, conv uuid.UUID, version string, frames []MessageFrame) error {
	if len(frames) == 0 {
		return nil
	}
	args := []any{version, frames[0].Seq, frames[len(frames)-1].Seq, f.cfg.RecentMax, f.cfg.RecentTTL.Milliseconds()}
	for _, fr := range frames {
		if fr.Encrypted {
			fr.Content, fr.Unreadable = "", ""
		}
		fr.Type = FrameMessage
		b, err := json.Marshal(fr)
		if err != nil {
			return err
		}
		args = append(args, fr.Seq, b)
	}
	return fillRecent.Run(ctx, f.rdb, []string{f.cfg.Keys.recent(conv), f.cfg.Keys.recentVersion(conv)}, args...).Err()
}

// storeUnread writes counts only if the version is still the one read
// before the counts were loaded, so a change that raced the load is never
// hidden behind a stale cache entry.
var storeUnread = redis.NewScript(`
local current = redis.call('GET', KEYS[2]) or '0'
if current ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_v', ARGV[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// Unread returns user's unread message counts per conversation from the
// cache, or from load (Postgres) when the cache is missing or stale, and
// then caches them. When Redis fails, load's answer is returned.
func (f *Fanout) Unread(ctx context.Context, user uuid.UUID, load func(context.Context) (map[uuid.UUID]int64, error)) (map[uuid.UUID]int64, error) {
	k := f.cfg.Keys
	pipe := f.rdb.Pipeline()
	ver := pipe.Get(ctx, k.unreadVersion(user))
	hash := pipe.HGetAll(ctx, k.unread(user))
	_, err := pipe.Exec(ctx)
	version := ver.Val()
	if errors.Is(ver.Err(), redis.Nil) {
		version, err = "0", hash.Err()
	}
	if err == nil && len(hash.Val()) > 0 && hash.Val()["_v"] == version {
		out := make(map[uuid.UUID]int64, len(hash.Val())-1)
		for field, val := range hash.Val() {
			id, perr := uuid.Parse(field)
			n, nerr := strconv.ParseInt(val, 10, 64)
			if perr == nil && nerr == nil {
				out[id] = n
			}
		}
		return out, nil
	}
	counts, lerr := load(ctx)
	if lerr != nil {
		return nil, lerr
	}
	if err == nil {
		args := []any{version, f.cfg.UnreadTTL.Milliseconds()}
		for id, n := range counts {
			args = append(args, id.String(), n)
		}
		// Best effort: a failure only means the next read loads again.
		_ = storeUnread.Run(ctx, f.rdb, []string{k.unread(user), k.unreadVersion(user)}, args...).Err()
	}
	return counts, nil
}

// SetPresence marks user online for ttl (gateways refresh it while a
// socket is open).
func (f *Fanout) SetPresence(ctx context.Context, user uuid.UUID, ttl time.Duration) error {
	if err := f.rdb.Set(ctx, f.cfg.Keys.presence(user), "1", ttl).Err(); err != nil {
		return fmt.Errorf("setting presence: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// Online reports whether user has had an open socket within the presence
// TTL.
func (f *Fanout) Online(ctx context.Context, user uuid.UUID) (bool, error) {
	n, err := f.rdb.Exists(ctx, f.cfg.Keys.presence(user)).Result()
	if err != nil {
		return false, fmt.Errorf("reading presence: %w: %w", ErrUnavailable, err)
	}
	return n == 1, nil
}

// PublishNotification publishes an in-app notification to user and
// returns how many subscribers received it: the gateways subscribed for
// user, which they are while user has a socket open on them. On a Redis
// Cluster too, since gateways subscribe on the master that takes the
// publish.
func (f *Fanout) PublishNotification(ctx context.Context, user uuid.UUID, fr NotificationFrame) (int64, error) {
	fr.Type = FrameNotification
	b, err := json.Marshal(fr)
	if err != nil {
		return 0, err
	}
	cmd := f.publish(ctx, f.cfg.Keys.UserChannel(user), b)
	_ = f.rdb.Process(ctx, cmd)
	n, err := cmd.Result()
	if err != nil {
		return 0, fmt.Errorf("publishing notification: %w: %w", ErrUnavailable, err)
	}
	return n, nil
}
