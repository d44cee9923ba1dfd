// Package ratelimit is a per-key rate limiter whose state lives in Redis,
// so every gateway node draws on one budget per user.
//
// It implements GCRA (the generic cell rate algorithm, as in
// github.com/go-redis/redis_rate) in one Lua script that reads Redis's own
// clock, so nodes with skewed clocks still agree. It does not use
// redis_rate itself because that library puts every key under a fixed
// "rate:" prefix, outside the deployment's REDIS_PREFIX: keys here are
// <prefix>ratelimit:{<key>}, one string per key that expires once its
// budget is full again.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config configures a Limiter.
type Config struct {
	// Prefix is put before every key (REDIS_PREFIX).
	Prefix string
	// PerSecond is the sustained rate allowed per key. Required (> 0).
	PerSecond int
	// Burst is how many requests a key may make at once after being idle;
	// PerSecond when zero.
	Burst int
	// Now, when set, is the clock the limiter reads instead of Redis's
	// own (TIME), so a test can refill a budget by moving it rather than
	// by waiting. Leave it nil in production: every node then reads one
	// clock, Redis's, whatever the skew between the nodes' clocks. Every
	// Limiter sharing keys must use the same clock; it must be safe for
	// concurrent use.
	Now func() time.Time
}

// Limiter decides whether a key may make one more request. It is safe for
// concurrent use.
type Limiter struct {
	rdb      redis.Scripter
	cfg      Config
	interval int64 // microseconds between two requests at the sustained rate
}

// New returns a Limiter on rdb.
func New(rdb redis.Scripter, cfg Config) (*Limiter, error) {
	switch {
	case rdb == nil:
		return nil, errors.New("ratelimit: a Redis client is required")
	case cfg.PerSecond <= 0 || cfg.PerSecond > 1_000_000:
		return nil, errors.New("ratelimit: Config.PerSecond must be between 1 and 1000000")
	case cfg.Burst < 0:
		return nil, errors.New("ratelimit: Config.Burst must not be negative")
	}
	if cfg.Burst == 0 {
		cfg.Burst = cfg.PerSecond
	}
	return &Limiter{rdb: rdb, cfg: cfg, interval: int64(time.Second/time.Microsecond) / int64(cfg.PerSecond)}, nil
}

// PerSecond and Burst return the limit, for messages to clients.
func (l *Limiter) PerSecond() int { return l.cfg.PerSecond }

// Burst returns how many requests may come at once.
func (l *Limiter) Burst() int { return l.cfg.Burst }

// Key returns the Redis key that holds key's state.
func (l *Limiter) Key(key string) string { return l.cfg.Prefix + "ratelimit:{" + key + "}" }

// Result is the outcome of Allow.
type Result struct {
	// Allowed is whether the request may go ahead (and was counted).
	Allowed bool
	// RetryAfter, when not allowed, is how long until one more request
	// would be.
	RetryAfter time.Duration
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1:
// the value of an HTTP Retry-After header.
func (r Result) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(r.RetryAfter.Seconds())))
}

// gcra: KEYS[1] holds the theoretical arrival time (TAT) in microseconds
// of Redis time; ARGV[1] is the burst, ARGV[2] the emission interval in
// microseconds, and ARGV[3], when given, the time now in microseconds
// (Config.Now) instead of Redis's. Returns {1, 0} when allowed (and records
// it), {0, wait} when not, wait in microseconds.
var gcra = redis.NewScript(`
local burst = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local now = ARGV[3] and tonumber(ARGV[3])
if not now then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tat = tonumber(redis.call("GET", KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, allow_at - now}
end
redis.call("SET", KEYS[1], string.format("%d", new_tat), "PX", math.ceil((new_tat - now) / 1000))
return {1, 0}
`)

// Allow counts one request of key if the limit allows it. It returns when
// ctx is done even if Redis has not answered; any error means the limiter
// could not decide (Redis unreachable or too slow), and the caller chooses
// whether to fail open or closed.
func (l *Limiter) Allow(ctx context.Context, key string) (Result, error) {
	type answer struct {
		res []int64
		err error
	}
	done := make(chan answer, 1)
	go func() {
		args := []any{l.cfg.Burst, l.interval}
		if l.cfg.Now != nil {
			args = append(args, l.cfg.Now().UnixMicro())
		}
		res, err := gcra.Run(ctx, l.rdb, []string{l.Key(key)}, args...).Int64Slice()
		done <- answer{res, err}
	}()
	select {
	case a := <-done:
		if a.err != nil {
			return Result{}, fmt.Errorf("ratelimit: %w", a.err)
		}
		if len(a.res) != 2 {
			return Result{}, errors.New("ratelimit: unexpected script answer")
		}
		if a.res[0] == 1 {
			return Result{Allowed: true}, nil
		}
		return Result{RetryAfter: time.Duration(a.res[1]) * time.Microsecond}, nil
	case <-ctx.Done():
		return Result{}, fmt.Errorf("ratelimit: %w", ctx.Err())
	}
}
